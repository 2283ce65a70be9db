using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Spool;
using BackupMx.Testing;

namespace BackupMx.Core.Tests;

/// <summary>A held message through the services that would otherwise move it: wake-ups, flushes and the sweep.</summary>
public sealed class HeldMessageTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Hold_WakeUpFlushAndSweepPastExpiry_NothingDeliversOrExpiresIt()
    {
        using var h = new CoreHarness();
        h.Transport.Reachable = false;
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);
        await h.RunDueWakeUpsAsync();
        h.Transport.Reachable = true;
        var attempts = h.Transport.Attempts.Count;

        Assert.Equal(LedgerChange.Done, await h.Get<SpoolLedger>().HoldAsync("example.test", id, None));
        Assert.Equal(0, await h.Flusher.FlushAsync("example.test", "operator request", None));
        h.Time.Advance(TimeSpan.FromDays(6));
        await h.RunDueWakeUpsAsync();
        var report = await h.Sweeper.SweepAsync(None);
        await h.RunDueWakeUpsAsync();

        Assert.Equal(0, report.Expired);
        Assert.Equal(0, report.Rescheduled);
        Assert.Equal(attempts, h.Transport.Attempts.Count);
        var held = Assert.Single(await MessageForwarderTests.ListAsync(h.Spool.ListAllAsync(None)));
        Assert.Equal(id, held.QueueId);
        Assert.True(held.IsHeld);
        Assert.Equal(RecipientStatus.Pending, held.Recipients[0].Status);
    }

    [Fact]
    public async Task ReleaseHeld_AfterItsExpiry_IsDeliveredWithinItsExtraDay()
    {
        using var h = new CoreHarness();
        h.Transport.Reachable = false;
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);
        await h.RunDueWakeUpsAsync();
        await h.Get<SpoolLedger>().HoldAsync("example.test", id, None);
        h.Time.Advance(TimeSpan.FromDays(6));
        h.Transport.Reachable = true;

        Assert.Equal(LedgerChange.Done, await h.Get<SpoolLedger>().ReleaseHeldAsync("example.test", id, null, None));
        Assert.Equal(h.Time.GetUtcNow() + SpoolLedger.ReleaseGrace, (await h.Spool.GetAsync("example.test", id, None))!.ExpiresAt);
        await h.RunDueWakeUpsAsync();

        Assert.Null(await h.Spool.GetAsync("example.test", id, None));
        Assert.Contains(h.Transport.Attempts, a => a.Recipients.Contains("bob@example.test"));
    }
}
