// What each failure of the primary leaves behind, seen through the spool and at the senders' MX.
//
// The documented outcomes (DESIGN rule 4, MailKitTransport's header):
//   421 greeting or 421 to MAIL, 451 or 452 to RCPT, a connection dropped after the
//   body before the primary's reply -> pending, next attempt after the first retry
//   interval (5 min), then the second (10 min); no DSN.
//   550 and 552 to RCPT -> that recipient failed, one DSN to the sender, other
//   recipients unaffected. 552 is permanent: RFC 5321 §4.2.2 defines it as "exceeded
//   storage allocation" in the 5yz class, and a mailbox that stays full for five days
//   would bounce anyway, only later and after hiding the problem from the sender. The
//   one exception is RFC 821's "too many recipients" 552 (5.5.3), treated as 452 (§4.5.3.1.10).
using BackupMx.Testing;

namespace BackupMx.EndToEnd.Tests;

[Collection(EndToEndCollection.Name)]
public sealed class PrimaryFaultTests
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan SecondRetry = TimeSpan.FromMinutes(10);

    public static TheoryData<string> TransientFaults => ["greeting 421", "MAIL 421", "RCPT 451", "RCPT 452", "drop after DATA"];

    private static void Script(FakePrimary primary, string fault)
    {
        switch (fault)
        {
            case "greeting 421":
                primary.Greeting = new FakeReply(421, "4.3.2 primary.test Service not available");
                break;
            case "MAIL 421":
                primary.MailFromReply = new FakeReply(421, "4.3.2 Shutting down");
                break;
            case "RCPT 451":
                primary.DefaultRecipientReply = new FakeReply(451, "4.3.0 Local error in processing");
                break;
            case "RCPT 452":
                primary.DefaultRecipientReply = new FakeReply(452, "4.2.2 Mailbox over quota, try later");
                break;
            case "drop after DATA":
                primary.DropAfterData = true;
                break;
        }
    }

    private static void Heal(FakePrimary primary)
    {
        primary.Greeting = new FakeReply(220, "primary.test ESMTP fake");
        primary.MailFromReply = FakeReply.Ok;
        primary.DefaultRecipientReply = FakeReply.Ok;
        primary.DropAfterData = false;
    }

    [Theory]
    [MemberData(nameof(TransientFaults))]
    public async Task TransientFault_StaysPendingOnTheRetrySchedule_NoDsn_DeliveredWhenHealed(string fault)
    {
        await using var rig = await FaultRig.StartAsync(p => Script(p, fault));

        Assert.True((await rig.SendAsync(1)).Accepted);

        var (first, attemptedAt) = await rig.WaitForFirstAttemptAsync(FirstRetry);
        Assert.Equal(["bob@example.test"], first.PendingRecipients);
        Assert.Equal(attemptedAt + FirstRetry, first.NextAttemptAt);
        Assert.StartsWith("4", first.LastError, StringComparison.Ordinal);

        // Still failing at the first retry: the second interval follows.
        rig.Time.Advance(FirstRetry);
        var second = await rig.WaitForAttemptsAsync(2);
        Assert.Equal(attemptedAt + FirstRetry + SecondRetry, second.NextAttemptAt);

        Heal(rig.Primary);
        rig.Time.Advance(SecondRetry);
        await rig.WaitForEmptySpoolAsync();

        var accepted = rig.Primary.Messages.Count(m => m.AcceptedRecipients.Contains("bob@example.test"));
        if (fault == "drop after DATA")
        {
            // Two bodies were taken and dropped before the reply: the primary may have kept them.
            // SMTP prefers such a duplicate to a loss (RFC 5321 §6.1); the third copy is the confirmed one.
            Assert.Equal(3, accepted);
        }
        else
        {
            Assert.Equal(1, accepted);
        }

        await Task.Delay(100);
        Assert.Empty(rig.SenderMx.Messages);
    }

    [Theory]
    [InlineData(550, "5.1.1 No such user")]
    [InlineData(552, "5.2.2 Mailbox full")]
    public async Task PermanentRcptReply_ThatRecipientFailsWithOneDsn_OthersDelivered(int code, string text)
    {
        await using var rig = await FaultRig.StartAsync(p => p.Reply("carol@example.test", code, text));

        Assert.True((await rig.SendAsync(2, "bob@example.test", "carol@example.test")).Accepted);

        var groups = await rig.SingleDsnAsync();
        var group = Assert.Single(groups);
        Assert.Equal("rfc822; carol@example.test", group["Final-Recipient"]);
        Assert.Equal("failed", group["Action"]);
        Assert.Equal(text[..5], group["Status"]);
        Assert.Contains(code.ToString(System.Globalization.CultureInfo.InvariantCulture), group["Diagnostic-Code"], StringComparison.Ordinal);

        var message = Assert.Single(rig.Primary.Messages);
        Assert.Equal(["bob@example.test"], message.AcceptedRecipients);
        await rig.WaitForEmptySpoolAsync();
    }

    [Fact]
    public async Task TooManyRecipients552_TreatedAs452_RemainderDeliveredNextAttemptWithoutDsn()
    {
        await using var rig = await FaultRig.StartAsync(p => p.Reply("carol@example.test", 552, "5.5.3 Too many recipients"));

        Assert.True((await rig.SendAsync(3, "bob@example.test", "carol@example.test")).Accepted);

        var view = await rig.WaitForAttemptsAsync(1);
        Assert.Equal(["carol@example.test"], view.PendingRecipients);
        rig.Primary.ClearRecipientReplies();
        rig.Time.Advance(FirstRetry);
        await rig.WaitForEmptySpoolAsync();

        Assert.Equal(["bob@example.test", "carol@example.test"], rig.Primary.Messages.SelectMany(m => m.AcceptedRecipients).Order());
        Assert.Empty(rig.SenderMx.Messages);
    }

    [Fact]
    public async Task PrimaryIsOurselves_NothingDelivered_Transient446InTheQueue_NoBounce()
    {
        // The domain's Primary names our own listener: a configuration error, not a reason to bounce.
        await using var rig = await FaultRig.StartAsync(primaryPortFor: smtpPort => smtpPort);

        Assert.True((await rig.SendAsync(4)).Accepted);

        var (view, _) = await rig.WaitForFirstAttemptAsync(FirstRetry);
        Assert.Contains("4.4.6", view.LastError, StringComparison.Ordinal);
        Assert.Contains("mail loops back to myself", view.LastError, StringComparison.Ordinal);
        var summary = Assert.Single(await rig.Inspector.SummarizeAsync(CancellationToken.None));
        Assert.Contains("mail loops back to myself", summary.LastError, StringComparison.Ordinal);
        Assert.Contains(rig.Logs.AtLeast(Microsoft.Extensions.Logging.LogLevel.Error), e => e.Contains("is this server", StringComparison.Ordinal));

        // Retries keep failing the same way; the message stays until the operator fixes the setting.
        rig.Time.Advance(FirstRetry);
        var second = await rig.WaitForAttemptsAsync(2);
        Assert.Contains("4.4.6", second.LastError, StringComparison.Ordinal);
        Assert.Single(await rig.QueueAsync());
        Assert.Empty(rig.SenderMx.Messages);
    }
}
