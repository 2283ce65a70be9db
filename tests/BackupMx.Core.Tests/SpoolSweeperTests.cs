using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Testing;
using BackupMx.Testing.Fakes;

namespace BackupMx.Core.Tests;

public sealed class SpoolSweeperTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Sweep_DueRecordWhoseWakeUpWasLost_GetsANewWakeUp()
    {
        using var h = new CoreHarness();
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);

        // The wake-up is lost: received and completed without anything happening.
        foreach (var w in await h.WakeUps.ReceiveDueAsync(10, TimeSpan.Zero, None))
        {
            await h.WakeUps.CompleteAsync(w, None);
        }

        h.Time.Advance(TimeSpan.FromMinutes(3));
        var report = await h.Sweeper.SweepAsync(None);

        Assert.Equal(1, report.Rescheduled);
        Assert.Equal(1, await h.RunDueWakeUpsAsync());
        Assert.Null(await h.Spool.GetAsync("example.test", id, None));
    }

    [Fact]
    public async Task Sweep_ExpiredRecord_IsBouncedEvenWithoutAWakeUp()
    {
        using var h = new CoreHarness();
        h.Transport.Reachable = false;
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);
        await h.RunDueWakeUpsAsync();

        h.Time.Advance(TimeSpan.FromDays(5));
        var report = await h.Sweeper.SweepAsync(None);

        Assert.Equal(1, report.Expired);
        Assert.Null(await h.Spool.GetAsync("example.test", id, None));
        var dsn = Assert.Single(await MessageForwarderTests.ListAsync(h.Spool.ListAllAsync(None)));
        Assert.Equal(MessageKind.Dsn, dsn.Kind);
        Assert.Contains("4.4.7", TestMessages.Text(((InMemoryBodyStore)h.Bodies).Get(dsn.QueueId)));
    }

    [Fact]
    public async Task Sweep_RecentlyDueRecord_IsLeftToItsWakeUp()
    {
        using var h = new CoreHarness();
        await h.Intake.AcceptAsync(TestMessages.Make(), None);
        h.Time.Advance(TimeSpan.FromSeconds(30));

        var report = await h.Sweeper.SweepAsync(None);

        Assert.Equal(0, report.Rescheduled);
        Assert.Equal(1, report.Examined);
    }
}
