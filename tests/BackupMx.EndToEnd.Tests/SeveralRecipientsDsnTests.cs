using BackupMx.Testing;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace BackupMx.EndToEnd.Tests;

/// <summary>
/// One DSN about several recipients of one message, through the embedded server over loopback
/// SMTP: its id names a body file and a SQLite row like any other message's, so it is sent, once,
/// and the spool empties.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class SeveralRecipientsDsnTests
{
    private static readonly string[] BobAndCarol = ["bob@example.test", "carol@example.test"];

    [Fact]
    public async Task Expiry_TwoRecipientsWhilePrimaryIsDown_OneDsnNamingBothAndTheSpoolEmpties()
    {
        // Nothing listens on the primary's port; retention is 15 s.
        var closed = FreePort.Next();
        await using var rig = await FaultRig.StartAsync(primaryPortFor: _ => closed, extraArgs: "--BackupMx:Delivery:Retention=00:00:15");

        var sent = await SmtpSender.SendAsync(rig.Relay.SmtpPort, "alice@sender.test", BobAndCarol, Messages.Make(31), "RET=HDRS");
        Assert.True(sent.Accepted);

        await AdvanceUntilAsync(rig, () => rig.SenderMx.Messages.Count > 0);

        var groups = await rig.SingleDsnAsync();
        Assert.Equal(["rfc822; bob@example.test", "rfc822; carol@example.test"], groups.Select(g => g["Final-Recipient"]));
        Assert.All(groups, g => Assert.Equal("failed", g["Action"]));
        Assert.All(groups, g => Assert.Equal("4.4.7", g["Status"]));

        await rig.WaitForEmptySpoolAsync();
        await AssertNoSecondDsnAsync(rig);
        Assert.Empty(Directory.GetFiles(Path.Combine(rig.Spool.Path, "bodies"), "*", SearchOption.AllDirectories));
        Assert.Empty(rig.Logs.AtLeast(LogLevel.Error));
    }

    [Fact]
    public async Task Refusal_TwoRecipientsRefusedInOneTransaction_OneDsnNamingBothAndTheSpoolEmpties()
    {
        await using var rig = await FaultRig.StartAsync(p => p.DefaultRecipientReply = new FakeReply(550, "5.1.1 No such user"));

        var sent = await SmtpSender.SendAsync(rig.Relay.SmtpPort, "alice@sender.test", BobAndCarol, Messages.Make(32), "RET=HDRS");
        Assert.True(sent.Accepted);

        var groups = await rig.SingleDsnAsync();
        Assert.Equal(["rfc822; bob@example.test", "rfc822; carol@example.test"], groups.Select(g => g["Final-Recipient"]));
        Assert.All(groups, g => Assert.Equal("failed", g["Action"]));
        Assert.All(groups, g => Assert.Equal("5.1.1", g["Status"]));

        await rig.WaitForEmptySpoolAsync();
        await AssertNoSecondDsnAsync(rig);
        Assert.Empty(rig.Primary.Messages);
        Assert.Empty(rig.Logs.AtLeast(LogLevel.Error));
    }

    [Fact]
    public async Task NotifySuccess_TwoRecipientsAndAPrimaryWithoutDsn_OneRelayedDsnNamingBothAndTheSpoolEmpties()
    {
        await using var rig = await FaultRig.StartAsync(p => p.AdvertiseDsn = false);
        var notify = BobAndCarol.ToDictionary(r => r, _ => "NOTIFY=SUCCESS");

        var sent = await SmtpSender.SendAsync(rig.Relay.SmtpPort, "alice@sender.test", BobAndCarol, Messages.Make(33), "RET=HDRS", notify);
        Assert.True(sent.Accepted);

        var delivered = Assert.Single(await rig.Primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal(BobAndCarol, delivered.AcceptedRecipients);
        var dsn = Assert.Single(await rig.SenderMx.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal("Delivery Status Notification (Relayed)", MimeMessage.Load(new MemoryStream(dsn.Data)).Subject);
        var groups = await rig.SingleDsnAsync();
        Assert.Equal(["rfc822; bob@example.test", "rfc822; carol@example.test"], groups.Select(g => g["Final-Recipient"]));
        Assert.All(groups, g => Assert.Equal("relayed", g["Action"]));

        await rig.WaitForEmptySpoolAsync();
        await AssertNoSecondDsnAsync(rig);
        Assert.Single(rig.Primary.Messages);
        Assert.Empty(rig.Logs.AtLeast(LogLevel.Error));
    }

    [Fact]
    public async Task BodyFileGone_NextAttempt_RecipientsFailForGoodWithOneDsnWithoutTheOriginal()
    {
        await using var rig = await FaultRig.StartAsync(p => p.DefaultRecipientReply = new FakeReply(451, "4.2.0 Mailbox busy"));
        // Past the size the spool keeps in its database, so the body is a file.
        var sent = await SmtpSender.SendAsync(rig.Relay.SmtpPort, "alice@sender.test", BobAndCarol, Messages.MakeLarge(34, BackupMx.Local.SqliteSpoolStore.InlineBodyLimit + 4096), "RET=FULL");
        Assert.True(sent.Accepted);
        var (view, _) = await rig.WaitForFirstAttemptAsync(TimeSpan.FromMinutes(5));

        // The body file disappears under its record (an operator's clean-up, a restored backup).
        var file = Assert.Single(Directory.GetFiles(Path.Combine(rig.Spool.Path, "bodies"), view.QueueId, SearchOption.AllDirectories));
        File.Delete(file);
        rig.Primary.DefaultRecipientReply = FakeReply.Ok;
        await AdvanceUntilAsync(rig, () => rig.SenderMx.Messages.Count > 0);

        var groups = await rig.SingleDsnAsync();
        Assert.Equal(["rfc822; bob@example.test", "rfc822; carol@example.test"], groups.Select(g => g["Final-Recipient"]));
        Assert.All(groups, g => Assert.Equal("5.3.0", g["Status"]));
        var report = Assert.IsType<MultipartReport>(MimeMessage.Load(new MemoryStream(rig.SenderMx.Messages[0].Data)).Body);
        Assert.Equal(2, report.Count);
        Assert.Contains("could not be included", Assert.IsType<TextPart>(report[0]).Text, StringComparison.Ordinal);

        await rig.WaitForEmptySpoolAsync();
        Assert.Empty(rig.Primary.Messages);
        Assert.Contains(rig.Logs.Entries, e => e.Level == LogLevel.Error && e.Message.Contains(view.QueueId, StringComparison.Ordinal) && e.Message.Contains("missing", StringComparison.Ordinal));
    }

    /// <summary>Steps fake time (5 s at a time) until <paramref name="done"/>, giving the relay's loops real time to run.</summary>
    private static async Task AdvanceUntilAsync(FaultRig rig, Func<bool> done, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!done())
        {
            Assert.True(DateTime.UtcNow < deadline, "the relay did not get there within " + seconds + " s");
            rig.Time.Advance(TimeSpan.FromSeconds(5));
            await Task.Delay(100);
        }
    }

    /// <summary>An hour of fake time later (every retry and sweep), still exactly one DSN.</summary>
    private static async Task AssertNoSecondDsnAsync(FaultRig rig)
    {
        for (var i = 0; i < 12; i++)
        {
            rig.Time.Advance(TimeSpan.FromMinutes(5));
            await Task.Delay(50);
        }

        Assert.Single(rig.SenderMx.Messages);
        Assert.Empty(await rig.QueueAsync("sender.test"));
    }
}
