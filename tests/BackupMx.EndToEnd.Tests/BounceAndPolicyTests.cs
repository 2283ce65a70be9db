using System.Text;
using BackupMx.Server;
using BackupMx.Testing;
using Microsoft.Extensions.Time.Testing;
using MimeKit;

namespace BackupMx.EndToEnd.Tests;

[Collection(EndToEndCollection.Name)]
public sealed class BounceAndPolicyTests
{
    [Fact]
    public async Task Expiry_ThroughFakeTime_SendsOneRfc3464DsnFromNullSenderToTheSender()
    {
        using var spool = new TempFolder();
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        await primary.StopAsync();
        await using var senderMx = new FakePrimary { ServerName = "mx.sender.test" };
        await senderMx.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var relay = await RelayHost.StartAsync(spool.Path, primary.Port, time, bounceSmartHostPort: senderMx.Port);

        var original = Messages.Make(7);
        var result = await SmtpSender.SendAsync(relay.SmtpPort, "alice@sender.test", ["bob@example.test"], original, "ENVID=env7 RET=HDRS");
        Assert.True(result.Accepted);

        // Step through 114 of the 120 hours of retention: every retry fails, nothing bounces early.
        for (var step = 0; step < 19; step++)
        {
            time.Advance(TimeSpan.FromHours(6));
            await Task.Delay(20);
        }

        Assert.Empty(senderMx.Messages);
        time.Advance(TimeSpan.FromHours(7));

        var dsn = Assert.Single(await senderMx.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal(string.Empty, dsn.MailFrom);
        Assert.Equal(["alice@sender.test"], dsn.AcceptedRecipients);

        var message = MimeMessage.Load(new MemoryStream(dsn.Data));
        var report = Assert.IsType<MultipartReport>(message.Body);
        Assert.Equal("delivery-status", report.ReportType);
        var status = Assert.Single(report.OfType<MessageDeliveryStatus>());
        var perMessage = status.StatusGroups[0];
        Assert.Equal("dns; backup.test", perMessage["Reporting-MTA"]);
        Assert.NotNull(perMessage["Arrival-Date"]);
        Assert.Equal("env7", perMessage["Original-Envelope-Id"]);
        var perRecipient = status.StatusGroups[1];
        Assert.Equal("rfc822; bob@example.test", perRecipient["Final-Recipient"]);
        Assert.Equal("failed", perRecipient["Action"]);
        Assert.Equal("4.4.7", perRecipient["Status"]);

        var headers = report.OfType<TextRfc822Headers>().Single();
        Assert.Equal("<msg7@sender.test>", "<" + headers.Message!.MessageId + ">");
        Assert.Equal("backlog message 7", headers.Message.Subject);
        Assert.DoesNotContain("Body of message 7", Encoding.Latin1.GetString(dsn.Data));
        Assert.Empty(primary.Messages);
    }

    [Fact]
    public async Task ForeignDomain_IsRefusedWith550AndNothingIsSpooled()
    {
        using var spool = new TempFolder();
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var relay = await RelayHost.StartAsync(spool.Path, primary.Port, time);

        var result = await SmtpSender.SendAsync(relay.SmtpPort, "spammer@bad.test", ["victim@elsewhere.test"], Messages.Make(1, to: "victim@elsewhere.test"));

        var reply = Assert.Single(result.RecipientReplies);
        Assert.StartsWith("550 5.7.1", reply);
        Assert.Null(result.DataReply);
        await Task.Delay(200);
        Assert.Empty(primary.Messages);
    }

    [Fact]
    public async Task NullSender_IsAcceptedAndRelayed()
    {
        using var spool = new TempFolder();
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var relay = await RelayHost.StartAsync(spool.Path, primary.Port, time);

        var result = await SmtpSender.SendAsync(relay.SmtpPort, "", ["bob@example.test"], Messages.Make(2));

        Assert.True(result.Accepted);
        var received = Assert.Single(await primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal(string.Empty, received.MailFrom);
    }

    [Fact]
    public async Task InvalidConfiguration_StopsStartUpWithTheKeyName()
    {
        var error = new StringWriter();
        var previous = Console.Error;
        Console.SetError(error);
        int code;
        try
        {
            code = await EmbeddedHost.RunAsync(["--BackupMx:HostName=backup.test", "--BackupMx:Domains:0:Primary=bad host:x", "--BackupMx:Delivery:Retention=00:00:00"]);
        }
        finally
        {
            Console.SetError(previous);
        }

        Assert.Equal(2, code);
        Assert.Contains("BackupMx:Domains:0:Primary", error.ToString());
        Assert.Contains("BackupMx:Delivery:Retention", error.ToString());
    }
}
