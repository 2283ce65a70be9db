using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Spool;
using BackupMx.Testing;

namespace BackupMx.Core.Tests;

/// <summary>The operator's message operations: waiting out a delivery in progress, and the removal notice.</summary>
public sealed class MessageOperationsTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task DeleteAsync_LeaseEndsWhileWaiting_DeletesOnlyAfterTheLease()
    {
        using var h = new CoreHarness();
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);
        var record = (await h.Spool.GetAsync("example.test", id, None))!;
        var leaseEnds = h.Time.GetUtcNow() + TimeSpan.FromSeconds(10);
        Assert.Equal(ClaimStatus.Claimed, (await h.Get<SpoolLedger>().ClaimAsync(record, "worker-1", h.Time.GetUtcNow(), TimeSpan.FromSeconds(10), _ => true, None)).Status);

        var delete = h.Get<MessageOperations>().DeleteAsync(record, notify: false, TimeSpan.FromSeconds(30), None);
        while (!delete.IsCompleted && h.Time.GetUtcNow() < leaseEnds + TimeSpan.FromSeconds(5))
        {
            Assert.NotNull(await h.Spool.GetAsync("example.test", id, None));
            h.Time.Advance(TimeSpan.FromMilliseconds(250));

            // Lets the command's loop run its next look at the record; no schedule depends on it.
            await Task.WhenAny(delete, Task.Delay(20));
        }

        Assert.True(delete.IsCompleted, "still waiting after the lease ended");
        Assert.Equal(LedgerChange.Done, (await delete).Change);
        Assert.True(h.Time.GetUtcNow() >= leaseEnds);
        Assert.Null(await h.Spool.GetAsync("example.test", id, None));
    }

    [Fact]
    public async Task DeleteAsync_LeaseOutlastsTheWait_IsBusyAndChangesNothing()
    {
        using var h = new CoreHarness();
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);
        var record = (await h.Spool.GetAsync("example.test", id, None))!;
        await h.Get<SpoolLedger>().ClaimAsync(record, "worker-1", h.Time.GetUtcNow(), TimeSpan.FromMinutes(15), _ => true, None);

        var outcome = await h.Get<MessageOperations>().DeleteAsync(record, notify: true, TimeSpan.Zero, None);

        Assert.Equal(new CommandOutcome(LedgerChange.Busy, null), outcome);
        var kept = (await h.Spool.GetAsync("example.test", id, None))!;
        Assert.False(kept.IsHeld);
        Assert.Single(await MessageForwarderTests.ListAsync(h.Spool.ListAllAsync(None)));
    }

    [Fact]
    public async Task DeleteAsync_BounceForNotifyNever_QueuesNoDsn()
    {
        using var h = new CoreHarness();
        var message = TestMessages.Make() with { Recipients = [new IncomingRecipient("bob@example.test", "NEVER")] };
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(message, None)).QueueIds);
        var record = (await h.Spool.GetAsync("example.test", id, None))!;

        var outcome = await h.Get<MessageOperations>().DeleteAsync(record, notify: true, TimeSpan.Zero, None);

        Assert.Equal(new CommandOutcome(LedgerChange.Done, null), outcome);
        Assert.Empty(await MessageForwarderTests.ListAsync(h.Spool.ListAllAsync(None)));
    }

    [Fact]
    public async Task DeleteAsync_Bounce_DsnSaysAnAdministratorRemovedIt()
    {
        using var h = new CoreHarness();
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);
        var record = (await h.Spool.GetAsync("example.test", id, None))!;

        var outcome = await h.Get<MessageOperations>().DeleteAsync(record, notify: true, TimeSpan.Zero, None);

        Assert.Equal(LedgerChange.Done, outcome.Change);
        var dsn = Assert.Single(await MessageForwarderTests.ListAsync(h.Spool.ListAllAsync(None)));
        Assert.Equal((outcome.DsnId, MessageKind.Dsn, "alice@sender.test"), (dsn.QueueId, dsn.Kind, dsn.Recipients[0].Address));
        await using var body = await h.Bodies.OpenReadAsync(dsn.QueueId, None);
        var text = await new StreamReader(body).ReadToEndAsync();
        Assert.Contains(MessageOperations.RemovedText, text, StringComparison.Ordinal);
    }
}
