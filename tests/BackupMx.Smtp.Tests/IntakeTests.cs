using System.Text;
using MailKit.Net.Smtp;
using MimeKit;

namespace BackupMx.Smtp.Tests;

public sealed class IntakeTests
{
    [Fact]
    public async Task MailKit_SendsMessage_SpooledWithSessionDetails()
    {
        await using var host = await ReceiverHost.StartAsync();
        var message = new MimeMessage();
        message.From.Add(new MailboxAddress("Sender", "sender@remote.test"));
        message.To.Add(new MailboxAddress("User", "user@example.test"));
        message.Subject = "hello";
        message.Body = new TextPart("plain") { Text = "Line one\r\n.leading dot\r\n" };

        using (var smtp = new MailKit.Net.Smtp.SmtpClient { LocalDomain = "client.test" })
        {
            await smtp.ConnectAsync("127.0.0.1", host.Port, MailKit.Security.SecureSocketOptions.None);
            var reply = await smtp.SendAsync(message);
            Assert.Contains("2.0.0 Ok: queued as ", reply);
            await smtp.DisconnectAsync(true);
        }

        var record = Assert.Single(await host.RecordsAsync());
        Assert.Equal("sender@remote.test", record.Sender);
        Assert.Equal("user@example.test", Assert.Single(record.Recipients).Address);
        Assert.Equal("127.0.0.1", record.ClientAddress);
        Assert.Equal("client.test", record.HeloName);
        Assert.True(host.Bodies.Contains(record.QueueId));
        var body = host.BodyAfterReceived(record.QueueId);
        Assert.Contains("\r\n.leading dot\r\n", body);
        Assert.EndsWith("\r\n", body);
        Assert.Equal(host.Bodies.Get(record.QueueId).Length, record.BodyLength);
    }

    [Fact]
    public async Task Data_Accepted_ReplyCarriesQueueId()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        var reply = await client.DataAsync("Subject: x\r\n\r\nbody\r\n.\r\n");

        var record = Assert.Single(await host.RecordsAsync());
        Assert.Equal($"250 2.0.0 Ok: queued as {record.QueueId}", reply);
        Assert.Equal("Subject: x\r\n\r\nbody\r\n", host.BodyAfterReceived(record.QueueId));
    }

    [Fact]
    public async Task MailParameters_AllKinds_PassedToIntake()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync(mailParameters: " BODY=8BITMIME RET=HDRS ENVID=QQ+2B1+3Dx SIZE=100");

        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nbody\r\n.\r\n"));

        var parameters = Assert.Single(await host.RecordsAsync()).Parameters;
        Assert.Equal("8BITMIME", parameters.Body);
        Assert.Equal("HDRS", parameters.Ret);
        Assert.Equal("QQ+1=x", parameters.EnvelopeId);
        Assert.Equal(100, parameters.DeclaredSize);
    }

    [Theory]
    [InlineData(" RET=SOME")]
    [InlineData(" ENVID=bad+zz")]
    [InlineData(" BODY=BINARYMIME")]
    public async Task MailParameters_Invalid_Refused501(string parameters)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("501 5.5.4", await client.CommandAsync("MAIL FROM:<a@remote.test>" + parameters));
    }

    [Fact]
    public async Task RcptParameters_NotifyAndOrcpt_KeptPerRecipient()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync(rcptParameters: " NOTIFY=success,FAILURE ORCPT=rfc822;orig+2Bx@example.test");
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<second@example.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<\"quoted >name\"@example.test> NOTIFY=NEVER"));

        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nbody\r\n.\r\n"));

        var recipients = Assert.Single(await host.RecordsAsync()).Recipients;
        Assert.Equal(3, recipients.Count);
        Assert.Equal("SUCCESS,FAILURE", recipients[0].Notify);
        Assert.Equal("rfc822;orig+2Bx@example.test", recipients[0].OriginalRecipient);
        Assert.Null(recipients[1].Notify);
        Assert.Null(recipients[1].OriginalRecipient);
        Assert.Equal("NEVER", recipients[2].Notify);
    }

    [Theory]
    [InlineData(" NOTIFY=NEVER,SUCCESS")]
    [InlineData(" NOTIFY=SOMETIMES")]
    [InlineData(" ORCPT=no-semicolon")]
    public async Task RcptParameters_Invalid_Refused501(string parameters)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");
        await client.CommandAsync("MAIL FROM:<a@remote.test>");

        Assert.StartsWith("501 5.5.4", await client.CommandAsync("RCPT TO:<user@example.test>" + parameters));
    }

    [Fact]
    public async Task SpoolFailure_Answers451_AndKeepsNothing()
    {
        await using var host = await ReceiverHost.StartAsync();
        host.Spool.FailWith = new IOException("disk full");
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        Assert.StartsWith("451 4.3.0", await client.DataAsync("Subject: x\r\n\r\nbody\r\n.\r\n"));

        // The failing store could not say whether the record was stored, so the body is kept
        // (an orphan costs space; a record without its body would be lost mail).
        Assert.Equal(1, host.Bodies.Count);
        host.Spool.FailWith = null;
        Assert.Empty(await host.RecordsAsync());

        // The session goes on and the retry succeeds.
        await client.CommandAsync("MAIL FROM:<a@remote.test>");
        await client.CommandAsync("RCPT TO:<user@example.test>");
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nbody\r\n.\r\n"));
        Assert.Single(await host.RecordsAsync());
    }

    [Fact]
    public async Task BodyStoreFailure_Answers451()
    {
        await using var host = await ReceiverHost.StartAsync();
        host.Bodies.FailWritesWith = new IOException("read-only");
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        Assert.StartsWith("451 4.3.0", await client.DataAsync("Subject: x\r\n\r\nbody\r\n.\r\n"));
        Assert.Empty(await host.RecordsAsync());
    }

    [Fact]
    public async Task Size_DeclaredOverLimit_552()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxMessageBytes"] = "2048" });
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("552 5.3.4", await client.CommandAsync("MAIL FROM:<a@remote.test> SIZE=2049"));
        Assert.StartsWith("552 5.3.4", await client.CommandAsync("MAIL FROM:<a@remote.test> SIZE=99999999999999"));
        Assert.StartsWith("552 5.3.4", await client.CommandAsync("MAIL FROM:<a@remote.test> SIZE=99999999999999999999999"));
        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test> SIZE=2048"));
    }

    [Fact]
    public async Task Size_DataOverLimit_552AfterDot_SessionContinues()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxMessageBytes"] = "2048" });
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();
        var line = new string('a', 98) + "\r\n";

        Assert.StartsWith("552 5.3.4", await client.DataAsync("Subject: big\r\n\r\n" + string.Concat(Enumerable.Repeat(line, 300)) + ".\r\n"));
        Assert.Empty(await host.RecordsAsync());

        await client.CommandAsync("MAIL FROM:<a@remote.test>");
        await client.CommandAsync("RCPT TO:<user@example.test>");
        Assert.StartsWith("250", await client.DataAsync("Subject: small\r\n\r\nok\r\n.\r\n"));
    }

    [Fact]
    public async Task Size_DataExactlyAtLimit_Accepted()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxMessageBytes"] = "2048" });
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();
        var line = new string('b', 998) + "\r\n";
        var content = "Subject: x\r\n\r\n" + line + line + new string('b', 2048 - 14 - 2000 - 2) + "\r\n";
        Assert.Equal(2048, content.Length);

        Assert.StartsWith("250", await client.DataAsync(content + ".\r\n"));
        Assert.Equal(content, host.BodyAfterReceived(Assert.Single(await host.RecordsAsync()).QueueId));

        await client.CommandAsync("MAIL FROM:<a@remote.test>");
        await client.CommandAsync("RCPT TO:<user@example.test>");
        Assert.StartsWith("552 5.3.4", await client.DataAsync("Subject: x\r\n\r\n" + line + line + new string('b', 2048 - 14 - 2000 - 1) + "\r\n.\r\n"));
    }

    public static TheoryData<string> SmugglingVectors => new()
    {
        "\n.\n",
        "\r.\r",
        "\n.\r\n",
        "\r\n.\n",
        "\r\n.\r",
        "\r.\r\n",
        "\r\n\0.\r\n",
        "\n..\n",
        "\n.\n.\r\n",
    };

    [Theory]
    [MemberData(nameof(SmugglingVectors))]
    public async Task Smuggling_BareEndingVectorsNotNormalised_RefusedAndNoSecondMessage(string vector)
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:NormalizeBareLineFeeds"] = "false" });
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        var reply = await client.DataAsync(Smuggled(vector));

        Assert.StartsWith("550 5.6.0", reply);
        Assert.Empty(await host.RecordsAsync());
        Assert.Equal(0, host.Bodies.Count);
        Assert.StartsWith("250", await client.CommandAsync("NOOP"));
    }

    [Theory]
    [MemberData(nameof(SmugglingVectors))]
    public async Task Smuggling_BareEndingVectorsByDefault_OneMessageWithoutBareEndingsOrRefused(string vector)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        var reply = await client.DataAsync(Smuggled(vector));
        Assert.StartsWith("250", await client.CommandAsync("NOOP"));
        var records = await host.RecordsAsync();
        if (vector.Replace("\r\n", string.Empty, StringComparison.Ordinal).Contains('\r') || vector.Contains('\0'))
        {
            // A bare CR or a NUL is never normalised.
            Assert.StartsWith("550 5.6.0", reply);
            Assert.Empty(records);
            return;
        }

        // A bare LF became CRLF; the "smuggled" commands are text of the one message, and the stored
        // bytes hold no line ending a primary could read differently.
        Assert.StartsWith("250", reply);
        var record = Assert.Single(records);
        Assert.Equal("user@example.test", Assert.Single(record.Recipients).Address);
        var body = host.BodyAfterReceived(record.QueueId);
        Assert.Contains("\r\nMAIL FROM:<evil@remote.test>\r\n", body);
        Assert.DoesNotContain('\n', body.Replace("\r\n", string.Empty, StringComparison.Ordinal));
        Assert.DoesNotContain('\r', body.Replace("\r\n", string.Empty, StringComparison.Ordinal));
    }

    [Fact]
    public async Task BareLf_ByDefault_StoredAsCrLfDotsAfterItKept()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        Assert.StartsWith("250", await client.DataAsync("Subject: lf\n\nline one\n.\n..two\nthree\r\n.\r\n"));
        Assert.Equal("Subject: lf\r\n\r\nline one\r\n.\r\n..two\r\nthree\r\n", host.BodyAfterReceived(Assert.Single(await host.RecordsAsync()).QueueId));
    }

    [Theory]
    [MemberData(nameof(SmugglingVectors))]
    public async Task Smuggling_BareEndingsAllowed_StillOneMessage(string vector)
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:AllowBareLineEndings"] = "true" });
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        Assert.StartsWith("250", await client.DataAsync(Smuggled(vector)));

        var record = Assert.Single(await host.RecordsAsync());
        Assert.Equal("user@example.test", Assert.Single(record.Recipients).Address);
        Assert.Contains("smuggled@example.test", host.BodyAfterReceived(record.QueueId));
    }

    private static string Smuggled(string vector) =>
        "Subject: first\r\n\r\nfirst body" + vector +
        "MAIL FROM:<evil@remote.test>\r\nRCPT TO:<smuggled@example.test>\r\nDATA\r\nSubject: second\r\n\r\nsecond body\r\n.\r\n";

    [Fact]
    public async Task Loop_TooManyReceivedHeaders_554()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();
        var received = string.Concat(Enumerable.Range(0, 101).Select(i => $"Received: from h{i} by h{i + 1}; Fri, 27 Nov 2026 18:00:00 +0000\r\n"));

        Assert.StartsWith("554 5.4.6", await client.DataAsync(received + "Subject: loop\r\n\r\nx\r\n.\r\n"));
        Assert.Empty(await host.RecordsAsync());
    }

    [Fact]
    public async Task Loop_ReceivedHeadersAtLimitOrInBody_Accepted()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxReceivedHeaders"] = "3" });
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();
        var three = "Received: a\r\nreceived : b\r\nRECEIVED:c\r\n";

        Assert.StartsWith("250", await client.DataAsync(three + "Subject: ok\r\n\r\nReceived: in body\r\n.\r\n"));

        await client.CommandAsync("MAIL FROM:<a@remote.test>");
        await client.CommandAsync("RCPT TO:<user@example.test>");
        Assert.StartsWith("554 5.4.6", await client.DataAsync(three + "Received: d\r\n\r\nx\r\n.\r\n"));
    }

    [Fact]
    public async Task EmptyMessage_DotRightAfter354_AnsweredNotHung()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        Assert.StartsWith("250", await client.DataAsync(".\r\n"));

        var record = Assert.Single(await host.RecordsAsync());
        Assert.Equal(string.Empty, host.BodyAfterReceived(record.QueueId));
        Assert.StartsWith("250", await client.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task EmptyMessage_BodyIsOneEmptyLine_Kept()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        Assert.StartsWith("250", await client.DataAsync("\r\n.\r\n"));
        Assert.Equal("\r\n", host.BodyAfterReceived(Assert.Single(await host.RecordsAsync()).QueueId));
    }

    [Fact]
    public async Task DotStuffing_FirstAndLaterLines_Unstuffed()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        Assert.StartsWith("250", await client.DataAsync("..first: line\r\nSubject: x\r\n\r\n..later\r\n...\r\n.\r\n"));

        Assert.Equal(".first: line\r\nSubject: x\r\n\r\n.later\r\n..\r\n", host.BodyAfterReceived(Assert.Single(await host.RecordsAsync()).QueueId));
    }

    [Fact]
    public async Task BodyBytes_EightBitAndLongLinesAllowed_StoredUnchanged()
    {
        // Lines over RFC 5321's 1000 octets are refused by default; where allowed they pass untouched.
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxDataLineLength"] = "4000" });
        await using var client = await host.ConnectAsync();
        await client.BeginAsync(mailParameters: " BODY=8BITMIME");
        var bytes = new List<byte>();
        bytes.AddRange("Subject: =?utf-8?q?x?=\r\n\r\n"u8.ToArray());
        bytes.AddRange(Encoding.UTF8.GetBytes("Grüße \u00e9\u00e8 " + new string('z', 3000) + "\r\n"));
        var content = bytes.ToArray();

        Assert.StartsWith("354", await client.CommandAsync("DATA"));
        await client.SendRawAsync(content);
        await client.SendRawAsync(".\r\n");
        Assert.StartsWith("250", await client.ReadReplyAsync());

        var stored = host.Bodies.Get(Assert.Single(await host.RecordsAsync()).QueueId);
        Assert.Equal(content, stored[^content.Length..]);
    }
}
