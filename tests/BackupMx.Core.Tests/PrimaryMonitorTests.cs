using BackupMx.Core.Intake;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Contracts;

namespace BackupMx.Core.Tests;

public sealed class PrimaryMonitorTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static async Task<List<string>> SpoolFailedMessagesAsync(CoreHarness h, int count)
    {
        h.Transport.Reachable = false;
        var ids = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var result = await h.Intake.AcceptAsync(TestMessages.Make(), None);
            ids.Add(Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds));
        }

        await h.RunDueWakeUpsAsync();
        h.Time.Advance(TimeSpan.FromMinutes(1));
        return ids;
    }

    [Fact]
    public async Task ProbeAll_PrimaryComesBack_EveryMessageDueNowWithRetriesReset()
    {
        using var h = new CoreHarness();
        var ids = await SpoolFailedMessagesAsync(h, 3);
        h.Prober.IsUp = _ => false;
        await h.Monitor.ProbeAllAsync(None);
        var cancelledBefore = h.WakeUps.Cancelled.Count;

        h.Prober.IsUp = _ => true;
        await h.Monitor.ProbeAllAsync(None);

        foreach (var id in ids)
        {
            var record = await h.Spool.GetAsync("example.test", id, None);
            Assert.Equal(0, record!.Attempts);
            Assert.Equal(h.Time.GetUtcNow(), record.NextAttemptAt);
        }

        // The old scheduled wake-ups are cancelled, replaced by ones due now.
        Assert.Equal(cancelledBefore + 3, h.WakeUps.Cancelled.Count);
        h.Transport.Reachable = true;
        Assert.Equal(3, await h.RunDueWakeUpsAsync());
        Assert.Equal(3, h.Transport.Attempts.Count(a => a.Body.Length > 0));
    }

    [Fact]
    public async Task ProbeAll_FirstAnswerAfterStartUp_FlushesSpooledMail()
    {
        using var h = new CoreHarness();
        var ids = await SpoolFailedMessagesAsync(h, 1);

        // A fresh monitor state (as after a restart): Unknown → Up flushes.
        await h.Get<IPrimaryStatusStore>().OverwriteAsync(new PrimaryStatus("example.test", PrimaryState.Unknown, null, null, null, null), None);
        await h.Monitor.ProbeAllAsync(None);

        var record = await h.Spool.GetAsync("example.test", ids[0], None);
        Assert.Equal(h.Time.GetUtcNow(), record!.NextAttemptAt);
    }

    [Fact]
    public async Task ProbeAll_PrimaryStaysUp_DoesNotFlushAgain()
    {
        using var h = new CoreHarness();
        await h.Monitor.ProbeAllAsync(None);
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);
        var record = await h.Spool.GetAsync("example.test", id, None);
        record = await h.Spool.UpdateAsync(record! with { Attempts = 2, NextAttemptAt = h.Time.GetUtcNow().AddMinutes(10) }, None);

        await h.Monitor.ProbeAllAsync(None);
        await h.Monitor.ReportReachableAsync("example.test", "primary.test", None);

        var after = await h.Spool.GetAsync("example.test", id, None);
        Assert.Equal(2, after!.Attempts);
        Assert.Equal(h.Time.GetUtcNow().AddMinutes(10), after.NextAttemptAt);
    }

    [Fact]
    public async Task ReportUnreachable_AttemptStartedBeforePrimarySeenUp_StateStaysUp()
    {
        using var h = new CoreHarness();
        var attemptStartedAt = h.Time.GetUtcNow();
        h.Time.Advance(TimeSpan.FromSeconds(5));
        await h.Monitor.ProbeAllAsync(None);

        await h.Monitor.ReportUnreachableAsync("example.test", "connection timed out", attemptStartedAt, None);

        var status = (await h.Get<IPrimaryStatusStore>().GetAsync("example.test", None))?.Status;
        Assert.Equal(PrimaryState.Up, status!.State);
        Assert.Null(status.LastError);
    }

    [Fact]
    public async Task ReportUnreachable_AttemptStartedAfterPrimarySeenUp_MarksDown()
    {
        using var h = new CoreHarness();
        await h.Monitor.ProbeAllAsync(None);
        h.Time.Advance(TimeSpan.FromSeconds(5));

        await h.Monitor.ReportUnreachableAsync("example.test", "connection refused", h.Time.GetUtcNow(), None);

        var status = (await h.Get<IPrimaryStatusStore>().GetAsync("example.test", None))?.Status;
        Assert.Equal(PrimaryState.Down, status!.State);
        Assert.Equal("connection refused", status.LastError);
    }

    [Fact]
    public async Task ProbeAll_RecordsStatusForOperators()
    {
        using var h = new CoreHarness();
        h.Prober.IsUp = d => d == "example.test";

        await h.Monitor.ProbeAllAsync(None);

        var summary = await h.Inspector.SummarizeAsync(None);
        Assert.Equal(PrimaryState.Up, summary.Single(s => s.Domain == "example.test").PrimaryState);
        var other = summary.Single(s => s.Domain == "other.test");
        Assert.Equal(PrimaryState.Down, other.PrimaryState);
        Assert.Equal("connection refused", other.LastError);
    }

    [Fact]
    public async Task Flush_ByOperator_SkipsMessagesBeingDelivered()
    {
        using var h = new CoreHarness();
        var ids = await SpoolFailedMessagesAsync(h, 2);
        var leased = await h.Spool.GetAsync("example.test", ids[0], None);
        leased = await h.Spool.UpdateAsync(leased! with { LeaseOwner = "other", LeaseExpiresAt = h.Time.GetUtcNow().AddMinutes(10) }, None);

        var flushed = await h.Flusher.FlushAsync("example.test", "operator", None);

        Assert.Equal(1, flushed);
    }

    [Fact]
    public async Task ProbeAll_PrimaryFlapsWithinAProbeInterval_DomainFlushedOnce()
    {
        using var h = new CoreHarness();
        var ids = await SpoolFailedMessagesAsync(h, 1);
        h.Prober.IsUp = _ => false;
        await h.Monitor.ProbeAllAsync(None);
        h.Prober.IsUp = _ => true;
        await h.Monitor.ProbeAllAsync(None);
        var record = await h.Spool.GetAsync("example.test", ids[0], None);
        record = await h.Spool.UpdateAsync(record! with { NextAttemptAt = h.Time.GetUtcNow().AddMinutes(5) }, None);

        h.Time.Advance(TimeSpan.FromSeconds(5));
        h.Prober.IsUp = _ => false;
        await h.Monitor.ProbeAllAsync(None);
        h.Prober.IsUp = _ => true;
        await h.Monitor.ProbeAllAsync(None);

        var after = await h.Spool.GetAsync("example.test", ids[0], None);
        Assert.Equal(record.NextAttemptAt, after!.NextAttemptAt);

        h.Time.Advance(h.Options.Delivery.ProbeInterval);
        h.Prober.IsUp = _ => false;
        await h.Monitor.ProbeAllAsync(None);
        h.Prober.IsUp = _ => true;
        await h.Monitor.ProbeAllAsync(None);

        var flushed = await h.Spool.GetAsync("example.test", ids[0], None);
        Assert.Equal(h.Time.GetUtcNow(), flushed!.NextAttemptAt);
    }
}
