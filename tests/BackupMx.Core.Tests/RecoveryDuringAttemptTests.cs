using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Ports;
using BackupMx.Testing;

namespace BackupMx.Core.Tests;

/// <summary>
/// The primary comes back while an attempt at a message is still failing to connect: the recovery
/// flush passes the message by (it is leased), then the attempt fails.
/// </summary>
public sealed class RecoveryDuringAttemptTests
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly TimeSpan ConnectTime = TimeSpan.FromSeconds(1);

    private static async Task<string> AcceptAsync(CoreHarness h) =>
        Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);

    /// <summary>A harness whose primary is Down, with one message that has failed once and is due again now.</summary>
    private static async Task<(CoreHarness Harness, string QueueId)> BacklogAsync()
    {
        var h = new CoreHarness();
        h.Transport.Reachable = false;

        // Accepted before the probe finds the primary down: a message accepted after it would
        // wait for the recovery flush without an attempt of its own.
        var id = await AcceptAsync(h);
        h.Prober.IsUp = _ => false;
        await h.Monitor.ProbeAllAsync(None);
        Assert.Equal(1, await h.RunDueWakeUpsAsync());
        var record = await h.Spool.GetAsync("example.test", id, None);
        h.Time.Advance(record!.NextAttemptAt - h.Time.GetUtcNow());
        return (h, id);
    }

    /// <summary>Each attempt's connect takes <see cref="ConnectTime"/>, during which a probe finds the primary up; the attempt itself fails while <paramref name="fails"/> says so.</summary>
    private static void ProbeUpWhileConnecting(CoreHarness h, Func<int, bool> fails)
    {
        var connects = 0;
        h.Transport.Connect = async _ =>
        {
            var attempt = ++connects;
            h.Time.Advance(ConnectTime);
            h.Prober.IsUp = _ => true;
            await h.Monitor.ProbeAllAsync(None);
            return !fails(attempt);
        };
    }

    private static async Task<PrimaryState?> StateAsync(CoreHarness h) =>
        (await h.Get<IPrimaryStatusStore>().GetAsync("example.test", None))?.Status.State;

    [Fact]
    public async Task Process_PrimaryReturnsWhileAttemptFails_DeliveredRightAfterRecovery()
    {
        var (h, id) = await BacklogAsync();
        using var _ = h;
        var recoveredAt = h.Time.GetUtcNow() + ConnectTime;
        ProbeUpWhileConnecting(h, fails: attempt => attempt == 1);

        await h.RunDueWakeUpsAsync();

        // Delivered at the moment of the recovery, not 10 minutes later on its retry, and the failure
        // of the attempt that began before the recovery did not mark the primary down again.
        Assert.Null(await h.Spool.GetAsync("example.test", id, None));
        Assert.Equal(3, h.Transport.Attempts.Count);
        Assert.NotEmpty(h.Transport.Attempts.Last().Body);
        Assert.Equal(recoveredAt + ConnectTime, h.Time.GetUtcNow());
        Assert.Equal(PrimaryState.Up, await StateAsync(h));
    }

    [Fact]
    public async Task Process_PrimaryReturnsWhileAttemptFails_IsFlushedOnceWithRetriesReset()
    {
        var (h, id) = await BacklogAsync();
        using var _ = h;
        ProbeUpWhileConnecting(h, fails: attempt => attempt == 1);
        var backOffWakeUps = h.WakeUps.Cancelled.Count;

        var outcome = await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None);

        Assert.Equal(ForwardOutcome.Deferred, outcome);
        var record = await h.Spool.GetAsync("example.test", id, None);
        Assert.Equal(0, record!.Attempts);
        Assert.Equal(h.Time.GetUtcNow(), record.NextAttemptAt);
        Assert.Null(record.LeaseOwner);

        // The wake-up for the retry it was given is replaced by one due now.
        Assert.Equal(backOffWakeUps + 1, h.WakeUps.Cancelled.Count);
        Assert.Equal(h.Time.GetUtcNow(), h.WakeUps.History.Last().DueAt);
    }

    [Fact]
    public async Task Process_PrimaryUpPerProbeButDeliveriesKeepFailing_BacksOffFromTheSecondFailure()
    {
        var (h, id) = await BacklogAsync();
        using var _ = h;
        ProbeUpWhileConnecting(h, fails: _ => true);

        // The attempt under way at the recovery is followed at once by one more, and no further.
        await h.RunDueWakeUpsAsync();
        Assert.Equal(3, h.Transport.Attempts.Count);

        var waits = new List<double>();
        for (var i = 0; i < 3; i++)
        {
            var record = await h.Spool.GetAsync("example.test", id, None);
            var attemptStartedAt = h.Time.GetUtcNow() - ConnectTime;
            waits.Add((record!.NextAttemptAt - attemptStartedAt).TotalMinutes);
            h.Time.Advance(record.NextAttemptAt - h.Time.GetUtcNow());
            Assert.Equal(1, await h.RunDueWakeUpsAsync());
        }

        Assert.Equal([5, 10, 20], waits);
        Assert.Equal(6, h.Transport.Attempts.Count);
        Assert.Equal(PrimaryState.Up, await StateAsync(h));
    }

    [Fact]
    public async Task Process_AttemptFailsWithoutRecoveryDuringIt_KeepsItsRetry()
    {
        var (h, id) = await BacklogAsync();
        using var _ = h;

        // The primary came back before this attempt began, so the recovery flush has already had its turn.
        h.Prober.IsUp = _ => true;
        await h.Monitor.ProbeAllAsync(None);
        h.Time.Advance(ConnectTime);

        Assert.Equal(ForwardOutcome.Deferred, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        var record = await h.Spool.GetAsync("example.test", id, None);
        Assert.Equal(1, record!.Attempts);
        Assert.Equal(h.Time.GetUtcNow().AddMinutes(5), record.NextAttemptAt);
        Assert.Equal(PrimaryState.Down, await StateAsync(h));
    }
}
