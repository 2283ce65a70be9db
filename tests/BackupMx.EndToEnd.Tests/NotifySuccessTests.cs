using System.Text;
using BackupMx.Testing;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace BackupMx.EndToEnd.Tests;

/// <summary>
/// NOTIFY=SUCCESS over real SMTP (RFC 3461 §5.2.2): a primary without DSN gets the message and the
/// sender gets our "relayed" DSN; a primary with DSN gets the request passed on and we send nothing.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class NotifySuccessTests
{
    private static readonly Dictionary<string, string> NotifySuccessForBob = new()
    {
        ["bob@example.test"] = "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2Bnews@example.test",
    };

    [Fact]
    public async Task NotifySuccess_PrimaryWithoutDsn_RelayedDsnDeliveredToTheSendersDomain()
    {
        await using var rig = await FaultRig.StartAsync(p => p.AdvertiseDsn = false);

        var sent = await SmtpSender.SendAsync(
            rig.Relay.SmtpPort, "alice@sender.test", ["bob@example.test", "carol@example.test"], Messages.Make(11), "ENVID=env11 RET=HDRS", NotifySuccessForBob);
        Assert.True(sent.Accepted);

        // The primary got the message without any DSN parameter: it did not offer the extension.
        var delivered = Assert.Single(await rig.Primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal(["bob@example.test", "carol@example.test"], delivered.AcceptedRecipients);
        Assert.All(delivered.Recipients, r => Assert.Empty(r.Parameters));
        Assert.False(delivered.MailParameters.ContainsKey("ENVID"));

        // One DSN from <> to the sender, through the sender domain's MX, about Bob only.
        var dsn = Assert.Single(await rig.SenderMx.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal(string.Empty, dsn.MailFrom);
        Assert.Equal(["alice@sender.test"], dsn.AcceptedRecipients);
        var message = MimeMessage.Load(new MemoryStream(dsn.Data));
        Assert.Equal("Delivery Status Notification (Relayed)", message.Subject);
        var report = Assert.IsType<MultipartReport>(message.Body);
        Assert.Equal("delivery-status", report.ReportType);
        var groups = Assert.Single(report.OfType<MessageDeliveryStatus>()).StatusGroups.Where(g => g.Count > 0).ToList();
        Assert.Equal(2, groups.Count);
        Assert.Equal("dns; backup.test", groups[0]["Reporting-MTA"]);
        Assert.Equal("env11", groups[0]["Original-Envelope-Id"]);
        var bob = groups[1];
        Assert.Equal("rfc822; bob@example.test", bob["Final-Recipient"]);
        Assert.Equal("rfc822; Bob+news@example.test", bob["Original-Recipient"]);
        Assert.Equal("relayed", bob["Action"]);
        Assert.Equal("2.0.0", bob["Status"]);
        Assert.Equal("dns; 127.0.0.1", bob["Remote-MTA"]);
        Assert.Equal("smtp; 250 2.0.0 queued", bob["Diagnostic-Code"]);

        var words = report.OfType<TextPart>().First().Text;
        Assert.Contains("delivered to the mail server of example.test", words, StringComparison.Ordinal);
        Assert.DoesNotContain("carol@example.test", words, StringComparison.Ordinal);

        // RET=HDRS: the original's header section only.
        var headers = Assert.Single(report.OfType<TextRfc822Headers>());
        Assert.Equal("msg11@sender.test", headers.Message!.MessageId);
        Assert.DoesNotContain("Body of message 11", Encoding.Latin1.GetString(dsn.Data), StringComparison.Ordinal);

        // Both the message and its DSN are done with; nothing went wrong on the way.
        await rig.WaitForEmptySpoolAsync();
        Assert.Single(rig.Primary.Messages);
        Assert.Single(rig.SenderMx.Messages);
        Assert.Empty(rig.Logs.AtLeast(LogLevel.Error));
    }

    [Fact]
    public async Task NotifySuccess_PrimaryWithDsn_ParametersPassedOnAndNoDsnFromUs()
    {
        await using var rig = await FaultRig.StartAsync(p => p.AdvertiseDsn = true);

        var sent = await SmtpSender.SendAsync(
            rig.Relay.SmtpPort, "alice@sender.test", ["bob@example.test"], Messages.Make(12), "ENVID=env12 RET=HDRS", NotifySuccessForBob);
        Assert.True(sent.Accepted);

        var delivered = Assert.Single(await rig.Primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal("SUCCESS,FAILURE", Assert.Single(delivered.Recipients).Parameters["NOTIFY"]);
        Assert.Equal("env12", delivered.MailParameters["ENVID"]);
        Assert.Equal("HDRS", delivered.MailParameters["RET"]);

        // The record goes only after any DSN it owes is queued, so an empty spool with nothing at
        // the sender's MX means none was.
        await rig.WaitForEmptySpoolAsync();
        Assert.Empty(rig.SenderMx.Messages);
        Assert.Empty(rig.Logs.AtLeast(LogLevel.Error));
    }
}
