using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Fakes;

namespace BackupMx.Core.Tests;

/// <summary>A claim whose read was overtaken by another write before the claim reached the store.</summary>
public sealed class ClaimRaceTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Process_TokenSavedBetweenReadAndClaim_ClaimsTheCurrentRecordAndDelivers()
    {
        var spool = new OvertakenRead(new InMemorySpoolStore());
        using var h = new CoreHarness(spool: spool);
        var id = await AcceptAsync(h);
        spool.Overtake = r => r with { WakeUpToken = "4711" };

        var outcome = await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None);

        Assert.Equal(ForwardOutcome.Finished, outcome);
        Assert.Single(h.Transport.Attempts);
        Assert.Null(await spool.GetAsync("example.test", id, None));
    }

    [Fact]
    public async Task Process_RivalClaimedBetweenReadAndClaim_IsBusyAndDoesNotDeliver()
    {
        var spool = new OvertakenRead(new InMemorySpoolStore());
        using var h = new CoreHarness(spool: spool);
        var id = await AcceptAsync(h);
        spool.Overtake = r => r with { LeaseOwner = "rival", LeaseExpiresAt = h.Time.GetUtcNow().AddMinutes(10) };

        var outcome = await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None);

        Assert.Equal(ForwardOutcome.Busy, outcome);
        Assert.Empty(h.Transport.Attempts);
    }

    [Fact]
    public async Task Process_RetriedLaterBetweenReadAndClaim_IsNotDue()
    {
        var spool = new OvertakenRead(new InMemorySpoolStore());
        using var h = new CoreHarness(spool: spool);
        var id = await AcceptAsync(h);
        spool.Overtake = r => r with { NextAttemptAt = h.Time.GetUtcNow().AddMinutes(10) };

        var outcome = await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None);

        Assert.Equal(ForwardOutcome.NotDue, outcome);
        Assert.Empty(h.Transport.Attempts);
    }

    private static async Task<string> AcceptAsync(CoreHarness h)
    {
        var result = await h.Intake.AcceptAsync(TestMessages.Make(), None);
        return Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
    }
}
