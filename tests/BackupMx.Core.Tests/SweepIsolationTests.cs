using BackupMx.Core.Expiry;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupMx.Core.Tests;

/// <summary>One record that cannot be read, scheduled or expired never stops the sweep over the others.</summary>
public sealed class SweepIsolationTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Sweep_WakeUpOfOneRecordCannotBeScheduled_ReschedulesTheOthers()
    {
        using var h = new CoreHarness();
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds));
        }

        await LoseWakeUpsAsync(h);
        h.Time.Advance(TimeSpan.FromMinutes(3));
        var failing = new FailingWakeUps(h.WakeUps, ids.Order(StringComparer.Ordinal).First());
        var sweeper = new SpoolSweeper(new BackupMx.Core.Spool.SpoolLedger(h.Spool, h.Bodies, failing, h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<BackupMx.Core.Spool.SpoolLedger>.Instance), h.Forwarder, h.Time, NullLogger<SpoolSweeper>.Instance);

        var report = await sweeper.SweepAsync(None);

        Assert.Equal(3, report.Examined);
        Assert.Equal(2, report.Rescheduled);
        Assert.Equal(1, report.Failed);
        Assert.Equal(2, await h.RunDueWakeUpsAsync());
    }

    [Fact]
    public async Task Sweep_ExpiryOfOneRecordThrows_ExpiresTheOthers()
    {
        var spool = new FaultyReads(new InMemorySpoolStore());
        using var h = new CoreHarness(spool: spool);
        h.Transport.Reachable = false;
        var first = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);
        var second = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);
        await h.RunDueWakeUpsAsync();
        h.Time.Advance(TimeSpan.FromDays(5));
        spool.FailGetOf = first;

        var report = await h.Sweeper.SweepAsync(None);

        Assert.Equal(1, report.Expired);
        Assert.Equal(1, report.Failed);
        Assert.Null(await spool.GetAsync("example.test", second, None));

        // The next sweep, with the fault gone, finishes the first one too.
        spool.FailGetOf = null;
        Assert.Equal(1, (await h.Sweeper.SweepAsync(None)).Expired);
        Assert.Null(await spool.GetAsync("example.test", first, None));
    }

    [Fact]
    public async Task Sweep_UnreadableRecord_IsQuarantinedAndShownToTheOperator()
    {
        var spool = new InMemorySpoolStore();
        using var h = new CoreHarness(spool: spool);
        h.Transport.Reachable = false;
        var bad = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);
        var good = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);
        var elsewhere = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(recipients: ["carol@other.test"]), None)).QueueIds);
        await h.RunDueWakeUpsAsync();
        spool.Corrupt(bad);
        h.Time.Advance(TimeSpan.FromDays(5));

        var report = await h.Sweeper.SweepAsync(None);

        Assert.Equal(2, report.Expired);
        Assert.Null(await spool.GetAsync("example.test", good, None));
        Assert.Null(await spool.GetAsync("other.test", elsewhere, None));
        var shown = Assert.Single(await h.Inspector.ListQuarantinedAsync(null, None));
        Assert.Equal((bad, "example.test"), (shown.QueueId, shown.Domain));
        Assert.Single(await h.Inspector.ListQuarantinedAsync("EXAMPLE.test", None));
        Assert.Empty(await h.Inspector.ListQuarantinedAsync("other.test", None));
    }

    private static async Task LoseWakeUpsAsync(CoreHarness h)
    {
        foreach (var w in await h.WakeUps.ReceiveDueAsync(10, TimeSpan.Zero, None))
        {
            await h.WakeUps.CompleteAsync(w, None);
        }
    }

    private sealed class FailingWakeUps(IWakeUpQueue inner, string failFor) : IWakeUpQueue
    {
        public Task<string?> ScheduleAsync(WakeUp wakeUp, DateTimeOffset dueAt, CancellationToken cancellationToken) =>
            wakeUp.QueueId == failFor
                ? throw new InvalidOperationException("the queue service refused the message")
                : inner.ScheduleAsync(wakeUp, dueAt, cancellationToken);

        public Task CancelAsync(string token, CancellationToken cancellationToken) => inner.CancelAsync(token, cancellationToken);
    }

    private sealed class FaultyReads(ISpoolStore inner) : DelegatingSpoolStore(inner)
    {
        public string? FailGetOf { get; set; }

        public override Task<SpoolRecord?> GetAsync(string domain, string queueId, CancellationToken cancellationToken) =>
            queueId == FailGetOf ? throw new IOException("the storage service failed") : base.GetAsync(domain, queueId, cancellationToken);
    }
}
