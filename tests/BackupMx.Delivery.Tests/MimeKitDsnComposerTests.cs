using System.Text;
using BackupMx.Core.Model;
using BackupMx.Delivery.Dsn;
using Microsoft.Extensions.Time.Testing;
using MimeKit;

namespace BackupMx.Delivery.Tests;

public sealed class MimeKitDsnComposerTests
{
    private static readonly DateTimeOffset Arrived = new(2024, 3, 1, 8, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Now = Arrived.AddDays(5);
    private static readonly byte[] Original = Encoding.Latin1.GetBytes(
        "Received: from client.sender.org\r\n\tby backup.example.net; Fri, 1 Mar 2024 08:00:00 +0000\r\nFrom: Alice <alice@sender.org>\r\nTo: bob@example.com\r\nSubject: caf\u00e9 plans\r\nMessage-Id: <m1@sender.org>\r\n\r\nSecret body text\r\n.dot line\r\n");

    private static SpoolRecord Record(string? ret = null, string? envid = "env-42") => new()
    {
        QueueId = "01HQUEUEID0000000001",
        Domain = "example.com",
        Sender = "alice@sender.org",
        Parameters = new MailParameters { Ret = ret, EnvelopeId = envid },
        Recipients = [],
        ReceivedAt = Arrived,
        ExpiresAt = Arrived.AddDays(5),
        LastAttemptAt = Now.AddMinutes(-30),
        HeloName = "client.sender.org",
    };

    private static RecipientState Bounced() => new()
    {
        Address = "gone@example.com",
        OriginalRecipient = "rfc822;Gone+2BAlias@example.com",
        Status = RecipientStatus.Failed,
        FailureStatus = "5.1.1",
        LastReply = new SmtpReply(550, "5.1.1", "No such user"),
        RemoteHost = "mx.example.com",
        CompletedAt = Now.AddMinutes(-30),
    };

    private static RecipientState Expired() => new()
    {
        Address = "slow@example.com",
        Status = RecipientStatus.Failed,
        FailureStatus = "4.4.7",
        LastReply = SmtpReply.LocalTransient("4.4.1", "mx.example.com: connection refused"),
        CompletedAt = Now,
    };

    private static RecipientState Delivered() => new()
    {
        Address = "happy@example.com",
        OriginalRecipient = "rfc822;Happy+2BTag@example.com",
        Notify = "SUCCESS,FAILURE",
        Status = RecipientStatus.Delivered,
        LastReply = new SmtpReply(250, "2.0.0", "Ok: queued as 4XYZ"),
        RemoteHost = "mx.example.com",
        CompletedAt = Now.AddMinutes(-10),
    };

    private static Task<MimeMessage> ComposeAsync(SpoolRecord record, params RecipientState[] failed) =>
        ComposeAsync(record, failed.Select(r => new DsnRecipient(r, DsnAction.Failed)).ToArray());

    private static async Task<MimeMessage> ComposeAsync(SpoolRecord record, params DsnRecipient[] recipients)
    {
        var options = Microsoft.Extensions.Options.Options.Create(TestDelivery.Config());
        var composer = new MimeKitDsnComposer(options, new FakeTimeProvider(Now));
        using var output = new MemoryStream();
        await composer.ComposeAsync(record, recipients, new MemoryStream(Original), output, CancellationToken.None);
        output.Position = 0;
        return await MimeMessage.LoadAsync(output);
    }

    [Fact]
    public async Task ComposeAsync_Headers_FromMailerDaemonToSenderAutoReplied()
    {
        using var dsn = await ComposeAsync(Record(), Bounced());

        var from = Assert.Single(dsn.From.Mailboxes);
        Assert.Equal("Mail Delivery System", from.Name);
        Assert.Equal("MAILER-DAEMON@backup.example.net", from.Address);
        Assert.Equal("alice@sender.org", Assert.Single(dsn.To.Mailboxes).Address);
        Assert.Equal("Undelivered Mail Returned to Sender", dsn.Subject);
        Assert.Equal("auto-replied", dsn.Headers["Auto-Submitted"]);
        Assert.Equal(Now, dsn.Date);
        Assert.EndsWith("@backup.example.net", dsn.MessageId, StringComparison.Ordinal);
        var report = Assert.IsType<MultipartReport>(dsn.Body);
        Assert.Equal("delivery-status", report.ReportType);
        Assert.Equal(3, report.Count);
        Assert.IsType<TextPart>(report[0]);
        Assert.IsType<MessageDeliveryStatus>(report[1]);
    }

    [Fact]
    public async Task ComposeAsync_DeliveryStatus_EveryFieldOfAFiveHundredBounce()
    {
        using var dsn = await ComposeAsync(Record(), Bounced());

        var status = (MessageDeliveryStatus)((MultipartReport)dsn.Body!)[1];
        // MimeKit ends the part with a blank line, which its parser reads back as an empty group.
        var groups = status.StatusGroups.Where(g => g.Count > 0).ToList();
        Assert.Equal(2, groups.Count);
        var perMessage = groups[0];
        Assert.Equal("dns; backup.example.net", perMessage["Reporting-MTA"]);
        Assert.Equal("dns; client.sender.org", perMessage["Received-From-MTA"]);
        Assert.Equal("env-42", perMessage["Original-Envelope-Id"]);
        Assert.Equal(Arrived, ParseDate(perMessage["Arrival-Date"]));

        var recipient = groups[1];
        Assert.Equal("rfc822; Gone+Alias@example.com", recipient["Original-Recipient"]);
        Assert.Equal("rfc822; gone@example.com", recipient["Final-Recipient"]);
        Assert.Equal("failed", recipient["Action"]);
        Assert.Equal("5.1.1", recipient["Status"]);
        Assert.Equal("dns; mx.example.com", recipient["Remote-MTA"]);
        Assert.Equal("smtp; 550 5.1.1 No such user", recipient["Diagnostic-Code"]);
        Assert.Equal(Now.AddMinutes(-30), ParseDate(recipient["Last-Attempt-Date"]));
    }

    [Theory]
    [InlineData("a\r\nX-Injected: yes")]
    [InlineData("a\nX-Injected: yes")]
    [InlineData("a\rX-Injected: yes")]
    public async Task ComposeAsync_EnvelopeIdWithLineBreak_NoFieldInjected(string envid)
    {
        // The receiver refuses such an ENVID (501); a record that holds one anyway must not let it
        // start a field of its own in the report.
        var options = Microsoft.Extensions.Options.Options.Create(TestDelivery.Config());
        var composer = new MimeKitDsnComposer(options, new FakeTimeProvider(Now));
        using var output = new MemoryStream();
        await composer.ComposeAsync(Record(envid: envid), [new DsnRecipient(Bounced(), DsnAction.Failed)], new MemoryStream(Original), output, CancellationToken.None);

        var text = Encoding.Latin1.GetString(output.ToArray());
        Assert.DoesNotContain("\nX-Injected:", text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("\rX-Injected:", text, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task ComposeAsync_Expiry_Status447TheConnectionErrorAsDiagnosticAndSaysHowLongWeTried()
    {
        using var dsn = await ComposeAsync(Record(envid: null), Expired());

        var report = (MultipartReport)dsn.Body!;
        var status = (MessageDeliveryStatus)report[1];
        Assert.False(status.StatusGroups[0].Contains("Original-Envelope-Id"));
        var recipient = status.StatusGroups[1];
        Assert.Equal("4.4.7", recipient["Status"]);
        Assert.Equal("failed", recipient["Action"]);
        Assert.Equal("X-BackupMx; mx.example.com: connection refused", recipient["Diagnostic-Code"]);
        Assert.False(recipient.Contains("Remote-MTA"));
        Assert.False(recipient.Contains("Original-Recipient"));

        var text = ((TextPart)report[0]).Text;
        Assert.Contains("slow@example.com", text, StringComparison.Ordinal);
        Assert.Contains("5 days", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ComposeAsync_OurOwnRefusal_NoRemoteMtaNoDiagnosticAndTheTextSaysItWasUs()
    {
        var refused = new RecipientState
        {
            Address = "a..b@example.com",
            Status = RecipientStatus.Failed,
            FailureStatus = "5.1.3",
            LastReply = new SmtpReply(553, "5.1.3", "Bad recipient address syntax", FromRemote: false),
            CompletedAt = Now,
        };

        using var dsn = await ComposeAsync(Record(), refused);

        var report = (MultipartReport)dsn.Body!;
        var recipient = ((MessageDeliveryStatus)report[1]).StatusGroups[1];
        Assert.Equal("5.1.3", recipient["Status"]);
        Assert.Equal("rfc822; a..b@example.com", recipient["Final-Recipient"]);
        Assert.False(recipient.Contains("Remote-MTA"));
        Assert.False(recipient.Contains("Diagnostic-Code"));
        Assert.Contains("<a..b@example.com>: this mail system could not send it on: 553 5.1.3 Bad recipient address syntax", ((TextPart)report[0]).Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ComposeAsync_SenderMimeKitCannotRead_ComposedWithoutTo()
    {
        var record = Record();
        record = new SpoolRecord
        {
            QueueId = record.QueueId,
            Domain = record.Domain,
            Sender = "alice smith@sender.org",
            Recipients = [],
            ReceivedAt = record.ReceivedAt,
            ExpiresAt = record.ExpiresAt,
        };

        using var dsn = await ComposeAsync(record, Expired());

        Assert.Empty(dsn.To);
        Assert.Equal(MimeKitDsnComposer.Subject, dsn.Subject);
    }

    [Fact]
    public async Task ComposeAsync_SeveralRecipients_OneGroupEachAndAllNamedInTheText()
    {
        using var dsn = await ComposeAsync(Record(), Bounced(), Expired());

        var report = (MultipartReport)dsn.Body!;
        var status = (MessageDeliveryStatus)report[1];
        Assert.Equal(["rfc822; gone@example.com", "rfc822; slow@example.com"], status.StatusGroups.Skip(1).Where(g => g.Count > 0).Select(g => g["Final-Recipient"]));
        var text = ((TextPart)report[0]).Text;
        Assert.Contains("gone@example.com", text, StringComparison.Ordinal);
        Assert.Contains("No such user", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ComposeAsync_Relayed_EveryFieldOfARelayedNotice()
    {
        using var dsn = await ComposeAsync(Record(), new DsnRecipient(Delivered(), DsnAction.Relayed));

        Assert.Equal(MimeKitDsnComposer.RelayedSubject, dsn.Subject);
        Assert.Equal("alice@sender.org", Assert.Single(dsn.To.Mailboxes).Address);
        Assert.Equal("auto-replied", dsn.Headers["Auto-Submitted"]);
        var report = Assert.IsType<MultipartReport>(dsn.Body);
        Assert.Equal("delivery-status", report.ReportType);
        Assert.Equal(3, report.Count);
        var status = Assert.IsType<MessageDeliveryStatus>(report[1]);
        var groups = status.StatusGroups.Where(g => g.Count > 0).ToList();
        Assert.Equal(2, groups.Count);
        var perMessage = groups[0];
        Assert.Equal("dns; backup.example.net", perMessage["Reporting-MTA"]);
        Assert.Equal("env-42", perMessage["Original-Envelope-Id"]);
        Assert.Equal(Arrived, ParseDate(perMessage["Arrival-Date"]));

        var recipient = groups[1];
        Assert.Equal("rfc822; Happy+Tag@example.com", recipient["Original-Recipient"]);
        Assert.Equal("rfc822; happy@example.com", recipient["Final-Recipient"]);
        Assert.Equal("relayed", recipient["Action"]);
        Assert.Equal("2.0.0", recipient["Status"]);
        Assert.Equal("dns; mx.example.com", recipient["Remote-MTA"]);
        Assert.Equal("smtp; 250 2.0.0 Ok: queued as 4XYZ", recipient["Diagnostic-Code"]);
        Assert.Equal(Now.AddMinutes(-10), ParseDate(recipient["Last-Attempt-Date"]));

        var text = ((TextPart)report[0]).Text;
        Assert.Contains("delivered to the mail server of example.com", text, StringComparison.Ordinal);
        Assert.Contains("does not confirm delivery", text, StringComparison.Ordinal);
        Assert.Contains("<happy@example.com>: delivered to mx.example.com, which said: 250 2.0.0 Ok: queued as 4XYZ", text, StringComparison.Ordinal);
        Assert.DoesNotContain("could not be delivered", text, StringComparison.Ordinal);
        Assert.Equal("text/rfc822-headers", report[2].ContentType.MimeType);
    }

    [Fact]
    public async Task ComposeAsync_RelayedWithoutEnvidOrOrcpt_ThoseFieldsLeftOut()
    {
        var delivered = Delivered();
        delivered = new RecipientState
        {
            Address = delivered.Address,
            Notify = "SUCCESS",
            Status = RecipientStatus.Delivered,
            LastReply = new SmtpReply(250, null, "OK"),
            RemoteHost = delivered.RemoteHost,
            CompletedAt = delivered.CompletedAt,
        };

        using var dsn = await ComposeAsync(Record(envid: null), new DsnRecipient(delivered, DsnAction.Relayed));

        var status = (MessageDeliveryStatus)((MultipartReport)dsn.Body!)[1];
        Assert.False(status.StatusGroups[0].Contains("Original-Envelope-Id"));
        var recipient = status.StatusGroups[1];
        Assert.False(recipient.Contains("Original-Recipient"));
        Assert.Equal("relayed", recipient["Action"]);
        Assert.Equal("2.0.0", recipient["Status"]);
        Assert.Equal("smtp; 250 OK", recipient["Diagnostic-Code"]);
    }

    [Fact]
    public async Task ComposeAsync_FailedAndRelayed_OneReportWithEachRecipientsOwnAction()
    {
        using var dsn = await ComposeAsync(Record(), new DsnRecipient(Bounced(), DsnAction.Failed), new DsnRecipient(Delivered(), DsnAction.Relayed));

        // A failure is what the sender must not miss, so it names the subject.
        Assert.Equal(MimeKitDsnComposer.Subject, dsn.Subject);
        var report = (MultipartReport)dsn.Body!;
        var groups = ((MessageDeliveryStatus)report[1]).StatusGroups.Skip(1).Where(g => g.Count > 0).ToList();
        Assert.Equal(["rfc822; gone@example.com", "rfc822; happy@example.com"], groups.Select(g => g["Final-Recipient"]));
        Assert.Equal(["failed", "relayed"], groups.Select(g => g["Action"]));
        Assert.Equal(["5.1.1", "2.0.0"], groups.Select(g => g["Status"]));

        var text = ((TextPart)report[0]).Text;
        Assert.Contains("could not be delivered", text, StringComparison.Ordinal);
        Assert.Contains("<gone@example.com>: the server mx.example.com refused it", text, StringComparison.Ordinal);
        Assert.Contains("<happy@example.com>: delivered to mx.example.com", text, StringComparison.Ordinal);
        Assert.True(
            text.IndexOf("<gone@example.com>", StringComparison.Ordinal) < text.IndexOf("delivered to the mail server", StringComparison.Ordinal),
            "the relayed recipients come in a section of their own, after the failures");
    }

    [Theory]
    [InlineData(null)]
    [InlineData("HDRS")]
    [InlineData("FULL")]
    public async Task ComposeAsync_RelayedOnly_ReturnsTheHeadersWhateverRet(string? ret)
    {
        // RET concerns "failed" DSNs (RFC 3461 §4.3). Otherwise anyone could forge a sender with
        // NOTIFY=SUCCESS RET=FULL and have a copy of the message mailed to it.
        using var dsn = await ComposeAsync(Record(ret), new DsnRecipient(Delivered(), DsnAction.Relayed));

        var part = ((MultipartReport)dsn.Body!)[2];
        Assert.Equal("text/rfc822-headers", part.ContentType.MimeType);
        Assert.DoesNotContain("Secret body text", Encoding.Latin1.GetString(await RawContentAsync(part)), StringComparison.Ordinal);
        Assert.Contains("Its headers are attached below.", ((TextPart)((MultipartReport)dsn.Body!)[0]).Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ComposeAsync_FailedAndRelayedWithRetFull_ReturnsTheWholeMessage()
    {
        using var dsn = await ComposeAsync(Record("FULL"), new DsnRecipient(Bounced(), DsnAction.Failed), new DsnRecipient(Delivered(), DsnAction.Relayed));

        var part = ((MultipartReport)dsn.Body!)[2];
        Assert.Equal("message/rfc822", part.ContentType.MimeType);
        Assert.Equal(Original, await RawContentAsync(part));
        Assert.Contains("It is attached below.", ((TextPart)((MultipartReport)dsn.Body!)[0]).Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("HDRS")]
    public async Task ComposeAsync_RetHdrsOrUnspecified_OnlyTheOriginalHeaders(string? ret)
    {
        using var dsn = await ComposeAsync(Record(ret), Bounced());

        var part = ((MultipartReport)dsn.Body!)[2];
        Assert.Equal("text/rfc822-headers", part.ContentType.MimeType);
        var bytes = await RawContentAsync(part);
        // Read back through MimeKit, which writes a header-only message with its closing empty line.
        Assert.Equal([.. MimeKitDsnComposer.HeaderSection(Original), (byte)'\r', (byte)'\n'], bytes);
        Assert.DoesNotContain("Secret body text", Encoding.Latin1.GetString(bytes), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ComposeAsync_RetFull_WholeOriginalByteForByte()
    {
        using var dsn = await ComposeAsync(Record("FULL"), Bounced());

        var part = Assert.IsType<MessagePart>(((MultipartReport)dsn.Body!)[2]);
        Assert.Equal("message/rfc822", part.ContentType.MimeType);
        using var copy = new MemoryStream();
        await part.Message!.WriteToAsync(Dos, copy);
        Assert.Equal(Original, copy.ToArray());
        Assert.Equal("<m1@sender.org>", "<" + part.Message!.MessageId + ">");
    }

    [Fact]
    public void HeaderSection_StopsAtTheFirstEmptyLine()
    {
        Assert.Equal("A: 1\r\nB: 2\r\n"u8.ToArray(), MimeKitDsnComposer.HeaderSection("A: 1\r\nB: 2\r\n\r\nbody\r\n\r\n"u8.ToArray()));
        Assert.Equal("A: 1\n"u8.ToArray(), MimeKitDsnComposer.HeaderSection("A: 1\n\nbody"u8.ToArray()));
        Assert.Equal("A: 1\r\n"u8.ToArray(), MimeKitDsnComposer.HeaderSection("A: 1\r\n"u8.ToArray()));
    }

    private static readonly FormatOptions Dos = new() { NewLineFormat = NewLineFormat.Dos };

    private static DateTimeOffset ParseDate(string? value)
    {
        Assert.NotNull(value);
        Assert.True(MimeKit.Utils.DateUtils.TryParse(value, out var date), value);
        return date;
    }

    private static async Task<byte[]> RawContentAsync(MimeEntity part)
    {
        using var content = new MemoryStream();
        switch (part)
        {
            case MessagePart message:
                await message.Message!.WriteToAsync(Dos, content);
                break;
            case MimePart mime:
                await mime.Content!.DecodeToAsync(content);
                break;
        }

        return content.ToArray();
    }

    [Theory]
    [InlineData("rfc822;Gone+2BAlias@example.com", "rfc822; Gone+Alias@example.com")]
    [InlineData("RFC822; plain@example.com", "RFC822; plain@example.com")]
    [InlineData("no-type@example.com", "rfc822; no-type@example.com")]
    [InlineData("rfc822;not+zzxtext@example.com", "rfc822; not+zzxtext@example.com")]
    [InlineData(" ", null)]
    [InlineData(null, null)]
    public void OriginalRecipient_Orcpt_DecodedForDsnField(string? orcpt, string? expected)
    {
        Assert.Equal(expected, MimeKitDsnComposer.OriginalRecipient(orcpt));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("FULL")]
    public async Task ComposeAsync_OriginalBodyGone_ReportWithoutTheOriginalSaysItCouldNotBeIncluded(string? ret)
    {
        var options = Microsoft.Extensions.Options.Options.Create(TestDelivery.Config());
        var composer = new MimeKitDsnComposer(options, new FakeTimeProvider(Now));
        using var output = new MemoryStream();

        await composer.ComposeAsync(Record(ret), [new DsnRecipient(Bounced(), DsnAction.Failed), new DsnRecipient(Expired(), DsnAction.Failed)], null, output, CancellationToken.None);

        output.Position = 0;
        using var dsn = await MimeMessage.LoadAsync(output);
        var report = Assert.IsType<MultipartReport>(dsn.Body);
        Assert.Equal(2, report.Count);
        var words = Assert.IsType<TextPart>(report[0]).Text;
        Assert.Contains("could not be included", words, StringComparison.Ordinal);
        Assert.DoesNotContain("attached below", words, StringComparison.Ordinal);
        var status = Assert.IsType<MessageDeliveryStatus>(report[1]);
        var recipients = status.StatusGroups.Skip(1).Where(g => g.Count > 0).ToList();
        Assert.Equal(["rfc822; gone@example.com", "rfc822; slow@example.com"], recipients.Select(g => g["Final-Recipient"]));
        Assert.All(recipients, g => Assert.Equal("failed", g["Action"]));
    }

    [Theory]
    [InlineData(0, "less than a minute")]
    [InlineData(20, "less than a minute")]
    [InlineData(60, "1 minute")]
    [InlineData(119, "1 minute")]
    [InlineData(3 * 3600 + 5 * 60 + 59, "3 hours 5 minutes")]
    [InlineData(86400 + 3600 + 60, "1 day 1 hour 1 minute")]
    [InlineData(5 * 86400, "5 days")]
    public void Describe_Duration_ExactToTheMinute(int seconds, string expected)
    {
        Assert.Equal(expected, MimeKitDsnComposer.Describe(TimeSpan.FromSeconds(seconds)));
    }

    [Fact]
    public async Task ComposeAsync_ExpiryAfterTwentySeconds_SaysLessThanAMinuteAndTheLastError()
    {
        var record = Record();
        var expired = Expired() with { CompletedAt = record.ReceivedAt.AddSeconds(20) };

        using var dsn = await ComposeAsync(record, expired);

        var text = ((TextPart)((MultipartReport)dsn.Body!)[0]).Text;
        Assert.Contains("<slow@example.com>: we tried to deliver it for less than a minute without success and gave up. The last attempt failed: mx.example.com: connection refused", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ComposeAsync_ExpiryAfterARemoteDeferral_TextNamesTheServerAndItsReply()
    {
        var expired = Expired() with { LastReply = new SmtpReply(452, "4.2.2", "Mailbox full"), RemoteHost = "mx.example.com" };

        using var dsn = await ComposeAsync(Record(), expired);

        var report = (MultipartReport)dsn.Body!;
        Assert.Equal("smtp; 452 4.2.2 Mailbox full", ((MessageDeliveryStatus)report[1]).StatusGroups[1]["Diagnostic-Code"]);
        Assert.Contains("The last attempt, at mx.example.com, was answered: 452 4.2.2 Mailbox full", ((TextPart)report[0]).Text, StringComparison.Ordinal);
    }
}
