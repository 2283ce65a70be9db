using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Contracts;
using Xunit;

namespace BackupMx.Core.Tests;

/// <summary>Embedded mode: a recovery found by a probe flushes by epoch and wakes the pump at once.</summary>
public sealed class EpochFlushTriggerTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task ProbeAll_PrimaryBack_MessagesDueAndPumpWoken()
    {
        using var h = new CoreHarness(flushEpochs: true);
        h.Prober.IsUp = _ => false;
        await h.Monitor.ProbeAllAsync(None);
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);
        var record = (await h.Spool.GetAsync("example.test", id, None))!;
        record = await h.Spool.UpdateAsync(record! with { Attempts = 3, LastAttemptAt = h.Time.GetUtcNow(), NextAttemptAt = h.Time.GetUtcNow().AddMinutes(30) }, None);
        var pump = h.Get<WakeUpSignal>();
        h.Time.Advance(h.Options.Delivery.ProbeInterval);
        pump.Reset();

        h.Prober.IsUp = _ => true;
        await h.Monitor.ProbeAllAsync(None);

        Assert.True(pump.WaitAsync().IsCompleted);
        var due = Assert.Single(await h.Spool.ListDueAsync(h.Time.GetUtcNow(), 10, None).ToListAsync());
        Assert.Equal(id, due.QueueId);
        Assert.Equal(0, due.Attempts);
        Assert.Equal(record.ETag, due.ETag);
    }
}
