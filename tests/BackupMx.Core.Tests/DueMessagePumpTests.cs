using BackupMx.Core.Configuration;
using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using BackupMx.Testing.Fakes;
using BackupMx.Testing.Contracts;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Core.Tests;

public sealed class DueMessagePumpTests
{
    private sealed class Rig
    {
        public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));
        public InMemorySpoolStore Spool { get; } = new();
        public InMemoryBodyStore Bodies { get; } = new();
        public ScriptedTransport Transport { get; } = new();
        public WakeUpSignal Signal { get; } = new();
        public IntakeService Intake { get; }
        public DueMessagePump Pump { get; }

        public Rig()
        {
            var options = Options.Create(new BackupMxOptions
            {
                HostName = "backup.test",
                Domains = [new DomainOptions { Name = "example.test" }],
                Delivery = new DeliveryOptions { MaxConcurrentDeliveries = 4 },
            });
            var wakeUps = new InProcessWakeUpQueue(Signal);
            var ledger = new BackupMx.Core.Spool.SpoolLedger(Spool, Bodies, wakeUps, Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<BackupMx.Core.Spool.SpoolLedger>.Instance);
            var flusher = new DomainFlusher(ledger, Time, NullLogger<DomainFlusher>.Instance);
            var monitor = new PrimaryMonitor(new ScriptedProber(), new InMemoryPrimaryStatusStore(), flusher, options, Time, NullLogger<PrimaryMonitor>.Instance);
            var dsn = new DsnQueue(ledger, Bodies, new SimpleDsnComposer(), options, Time, NullLogger<DsnQueue>.Instance);
            var forwarder = new MessageForwarder(ledger, Bodies, Transport, dsn, monitor, options, Time, NullLogger<MessageForwarder>.Instance);
            Intake = new IntakeService(ledger, new InMemoryPrimaryStatusStore(), options, Time, NullLogger<IntakeService>.Instance);
            Pump = new DueMessagePump(Spool, forwarder, Signal, options, Time, NullLogger<DueMessagePump>.Instance);
        }
    }

    // Waits for the pump (a background task) to react; the schedule itself is driven by FakeTimeProvider.
    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the pump did not act within 30 s");
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task Run_NewMessages_AreForwardedWithoutWaitingForTime()
    {
        var rig = new Rig();
        using var cts = new CancellationTokenSource();
        var run = rig.Pump.RunAsync(cts.Token);

        for (var i = 0; i < 20; i++)
        {
            await rig.Intake.AcceptAsync(TestMessages.Make(), CancellationToken.None);
        }

        await WaitForAsync(() => rig.Spool.Count == 0);
        Assert.Equal(20, rig.Transport.Attempts.Count);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Run_AttemptsThatAllFinishBeforeTheListingEnds_DoNotStopThePump()
    {
        // A fast attempt can be over before the pump has finished reading its listing: the pump
        // then has nothing left running, and must look again rather than wait on no attempts.
        var rig = new Rig();
        await rig.Intake.AcceptAsync(TestMessages.Make(), CancellationToken.None);
        var held = 0;
        rig.Spool.AfterDueListing = async () =>
        {
            // The first listing holds the one message: end it only once that attempt is over.
            if (Interlocked.Exchange(ref held, 1) == 0)
            {
                await WaitForAsync(() => rig.Transport.Attempts.Count == 1 && rig.Pump.InFlight == 0);
            }
        };
        using var cts = new CancellationTokenSource();
        var run = rig.Pump.RunAsync(cts.Token);

        await WaitForAsync(() => rig.Spool.Count == 0 || run.IsCompleted);
        Assert.False(run.IsFaulted, run.Exception?.ToString());
        await rig.Intake.AcceptAsync(TestMessages.Make(), CancellationToken.None);
        await WaitForAsync(() => rig.Transport.Attempts.Count == 2 || run.IsCompleted);
        Assert.False(run.IsCompleted, run.Exception?.ToString());
        await WaitForAsync(() => rig.Spool.Count == 0);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Run_FailedMessage_IsRetriedWhenTheFakeClockReachesItsNextAttempt()
    {
        var rig = new Rig();
        rig.Transport.Reachable = false;
        using var cts = new CancellationTokenSource();
        var run = rig.Pump.RunAsync(cts.Token);

        await rig.Intake.AcceptAsync(TestMessages.Make(), CancellationToken.None);
        await WaitForAsync(() => rig.Transport.Attempts.Count == 1);
        await WaitForAsync(() => rig.Pump.InFlight == 0);

        rig.Transport.Reachable = true;
        rig.Time.Advance(TimeSpan.FromMinutes(4));
        await Task.Delay(100);
        Assert.Single(rig.Transport.Attempts);

        rig.Time.Advance(TimeSpan.FromMinutes(1));
        await WaitForAsync(() => rig.Spool.Count == 0);
        Assert.Equal(2, rig.Transport.Attempts.Count);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Run_MessageLeasedByAWorkerThatDied_IsDeliveredOnceTheLeaseRunsOut()
    {
        var rig = new Rig();
        await rig.Intake.AcceptAsync(TestMessages.Make(), CancellationToken.None);
        var leased = Assert.Single(await rig.Spool.ListAllAsync(CancellationToken.None).ToListAsync());
        leased = await rig.Spool.UpdateAsync(leased! with { LeaseOwner = "died", LeaseExpiresAt = rig.Time.GetUtcNow().AddMinutes(10) }, CancellationToken.None);
        using var cts = new CancellationTokenSource();
        var run = rig.Pump.RunAsync(cts.Token);

        await Task.Delay(100);
        Assert.Empty(rig.Transport.Attempts);

        rig.Time.Advance(TimeSpan.FromMinutes(10));
        await WaitForAsync(() => rig.Spool.Count == 0);
        Assert.Single(rig.Transport.Attempts);
        await cts.CancelAsync();
        await run;
    }
}
