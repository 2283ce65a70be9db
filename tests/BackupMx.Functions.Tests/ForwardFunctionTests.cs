using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Functions.Tests.Fakes;
using BackupMx.Testing.Fakes;
using Microsoft.Azure.Functions.Worker;
using BackupMx.Testing;

namespace BackupMx.Functions.Tests;

public sealed class ForwardFunctionTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Run_DueWakeUp_DeliversAndCompletesOnlyAfterTheRecordIsGone()
    {
        var spool = new InMemorySpoolStore();
        ObservingWakeUpSource? source = null;
        using var h = new FunctionsHarness(source: new LateBound(() => source!), spool: spool);
        source = new ObservingWakeUpSource(h.Core.WakeUps, spool);
        var id = await h.AcceptAsync();

        await h.Forward.Run(new TimerInfo(), None);

        var attempt = Assert.Single(h.Core.Transport.Attempts);
        Assert.Equal(id, attempt.Request.QueueId);
        var settled = Assert.Single(source.Settlements);
        Assert.Equal("complete", settled.Action);
        Assert.Null(settled.RecordAtThatMoment);
        Assert.Equal(0, h.Core.WakeUps.PendingCount);
    }

    [Fact]
    public async Task ForwardDue_PrimaryDown_CompletesAfterTheNextAttemptIsWritten()
    {
        var spool = new InMemorySpoolStore();
        ObservingWakeUpSource? source = null;
        using var h = new FunctionsHarness(source: new LateBound(() => source!), spool: spool);
        source = new ObservingWakeUpSource(h.Core.WakeUps, spool);
        h.Core.Transport.Reachable = false;
        var id = await h.AcceptAsync();

        var report = await h.Forward.ForwardDueAsync(None);

        Assert.Equal(new ForwardRunReport(1, 1, 0, false), report);
        var settled = Assert.Single(source.Settlements);
        Assert.Equal("complete", settled.Action);
        var record = Assert.IsType<SpoolRecord>(settled.RecordAtThatMoment);
        Assert.Equal(1, record.Attempts);
        Assert.Null(record.LeaseOwner);
        Assert.True(record.NextAttemptAt > h.Core.Time.GetUtcNow());

        // The next wake-up is scheduled for the retry, not due yet.
        Assert.Equal(1, h.Core.WakeUps.PendingCount);
        Assert.Equal(record.NextAttemptAt, h.Core.WakeUps.History.Last().DueAt);
        Assert.Equal(id, h.Core.WakeUps.History.Last().WakeUp.QueueId);
    }

    [Fact]
    public async Task ForwardDue_SpoolFails_AbandonsTheWakeUpSoItComesBack()
    {
        var spool = new InMemorySpoolStore();
        ObservingWakeUpSource? source = null;
        // One at a time, so the count of failures before the run gives up is exact.
        using var h = new FunctionsHarness(new FunctionsOptions { MaxFailuresPerRun = 3, MaxConcurrentForwards = 1 }, source: new LateBound(() => source!), spool: spool);
        source = new ObservingWakeUpSource(h.Core.WakeUps, spool);
        await h.AcceptAsync();

        spool.FailWith = new InvalidOperationException("table storage is down");
        var failed = await h.Forward.ForwardDueAsync(None);

        Assert.Equal(0, failed.Completed);
        Assert.Equal(3, failed.Abandoned);
        Assert.True(failed.StoppedEarly);
        Assert.All(source.Settlements, s => Assert.Equal("abandon", s.Action));
        Assert.Empty(h.Core.Transport.Attempts);
        Assert.Equal(1, h.Core.WakeUps.PendingCount);

        spool.FailWith = null;
        var healed = await h.Forward.ForwardDueAsync(None);

        Assert.Equal(new ForwardRunReport(1, 1, 0, false), healed);
        Assert.Single(h.Core.Transport.Attempts);
        Assert.Equal(0, h.Core.WakeUps.PendingCount);
    }

    [Fact]
    public async Task ForwardDue_DuplicateWakeUps_DeliverOnce()
    {
        using var h = new FunctionsHarness();
        var id = await h.AcceptAsync();
        var now = h.Core.Time.GetUtcNow();
        await h.Core.WakeUps.ScheduleAsync(new WakeUp("example.test", id), now, None);
        await h.Core.WakeUps.ScheduleAsync(new WakeUp("example.test", id), now, None);

        var report = await h.Forward.ForwardDueAsync(None);

        Assert.Equal(3, report.Received);
        Assert.Equal(3, report.Completed);
        var attempt = Assert.Single(h.Core.Transport.Attempts);
        Assert.Equal(id, attempt.Request.QueueId);
        Assert.Empty(await h.AllRecordsAsync());
    }

    [Fact]
    public async Task ForwardDue_ManyMessages_NeverExceedsTheConcurrencyLimit()
    {
        using var h = new FunctionsHarness(new FunctionsOptions { MaxConcurrentForwards = 2 });

        // The primary is already known to be up, so the first delivery does not flush the domain and add
        // wake-ups of its own; their number would depend on how far the run had got.
        await h.Core.Get<IPrimaryStatusStore>().OverwriteAsync(new PrimaryStatus("example.test", PrimaryState.Up, null, null, null, null), None);
        var current = 0;
        var highest = 0;
        h.Core.Transport.Reply = (_, _) =>
        {
            var now = Interlocked.Increment(ref current);
            InterlockedMax(ref highest, now);
            Thread.Sleep(20);
            Interlocked.Decrement(ref current);
            return new SmtpReply(250, "2.0.0", "ok");
        };
        for (var i = 0; i < 6; i++)
        {
            await h.AcceptAsync();
        }

        var report = await h.Forward.ForwardDueAsync(None);

        Assert.Equal(6, report.Completed);
        Assert.Equal(6, h.Core.Transport.Attempts.Count);
        Assert.InRange(highest, 1, 2);
        Assert.Empty(await h.AllRecordsAsync());
    }

    [Fact]
    public async Task ForwardDue_TimeBudgetSpent_StopsReceivingAndLeavesTheRestForTheNextRun()
    {
        using var h = new FunctionsHarness(new FunctionsOptions { MaxConcurrentForwards = 1, ForwardTimeBudget = TimeSpan.FromMinutes(4) });
        h.Core.Transport.Reply = (_, _) =>
        {
            h.Core.Time.Advance(TimeSpan.FromMinutes(5));
            return new SmtpReply(250, "2.0.0", "ok");
        };
        for (var i = 0; i < 3; i++)
        {
            await h.AcceptAsync();
        }

        var report = await h.Forward.ForwardDueAsync(None);

        Assert.Equal(new ForwardRunReport(1, 1, 0, true), report);
        Assert.Equal(2, h.Core.WakeUps.PendingCount);

        var next = await h.Forward.ForwardDueAsync(None);
        Assert.Equal(1, next.Completed);
    }

    [Fact]
    public async Task ForwardDue_NothingDue_ReturnsAtOnce()
    {
        using var h = new FunctionsHarness();

        var report = await h.Forward.ForwardDueAsync(None);

        Assert.Equal(new ForwardRunReport(0, 0, 0, false), report);
    }

    [Fact]
    public async Task ForwardDue_FailedRecipient_QueuesTheDsnAndSendsItInTheSameRun()
    {
        using var h = new FunctionsHarness();
        h.Core.Transport.Reply = (r, _) => r.Kind == MessageKind.Relay ? new SmtpReply(550, "5.1.1", "no such user") : new SmtpReply(250, "2.0.0", "ok");
        await h.AcceptAsync();

        var report = await h.Forward.ForwardDueAsync(None);

        Assert.Equal(2, report.Completed);
        Assert.Collection(
            h.Core.Transport.Attempts,
            a => Assert.Equal(MessageKind.Relay, a.Request.Kind),
            a =>
            {
                Assert.Equal(MessageKind.Dsn, a.Request.Kind);
                Assert.Equal(string.Empty, a.Request.Sender);
                Assert.Equal("alice@sender.test", Assert.Single(a.Recipients));
            });
        Assert.Empty(await h.AllRecordsAsync());
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    /// <summary>Lets a test build the observing source after the harness that owns the spool and queue.</summary>
    private sealed class LateBound(Func<IWakeUpSource> get) : IWakeUpSource
    {
        public Task<IReadOnlyList<ReceivedWakeUp>> ReceiveDueAsync(int maxCount, TimeSpan maxWait, CancellationToken cancellationToken) => get().ReceiveDueAsync(maxCount, maxWait, cancellationToken);

        public Task CompleteAsync(ReceivedWakeUp wakeUp, CancellationToken cancellationToken) => get().CompleteAsync(wakeUp, cancellationToken);

        public Task AbandonAsync(ReceivedWakeUp wakeUp, CancellationToken cancellationToken) => get().AbandonAsync(wakeUp, cancellationToken);
    }
}
