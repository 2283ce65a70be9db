using BackupMx.Core.Ports;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace BackupMx.Testing.Contracts;

/// <summary>
/// What every wake-up queue that is also a source (<see cref="IWakeUpQueue"/> and
/// <see cref="IWakeUpSource"/>) must do: the in-memory fake that Core's tests use, and the Service
/// Bus adapter. A wake-up is received at its due time and not before, is not handed out twice while
/// it is held, comes back when abandoned, is gone once completed, and a cancelled one never comes;
/// wake-ups scheduled together, however many, each get a token that cancels that one.
/// </summary>
public abstract class WakeUpQueueContract
{
    private static readonly CancellationToken None = CancellationToken.None;

    protected FakeTimeProvider Time { get; } = new(SpoolRecords.T0);

    /// <summary>A fresh, empty queue on <see cref="Time"/>.</summary>
    protected abstract IWakeUpQueue CreateQueue();

    private (IWakeUpQueue Queue, IWakeUpSource Source) Create()
    {
        var queue = CreateQueue();
        return (queue, Assert.IsAssignableFrom<IWakeUpSource>(queue));
    }

    [Fact]
    public async Task Schedule_Later_IsReceivedAtItsDueTimeAndNotBefore()
    {
        var (queue, source) = Create();
        var due = Time.GetUtcNow().AddMinutes(5);

        await queue.ScheduleAsync(new WakeUp("example.test", "QID1"), due, None);

        Assert.Empty(await source.ReceiveDueAsync(10, TimeSpan.Zero, None));
        Time.Advance(TimeSpan.FromMinutes(5));
        var received = Assert.Single(await source.ReceiveDueAsync(10, TimeSpan.Zero, None));
        Assert.Equal("example.test", received.WakeUp.Domain);
        Assert.Equal("QID1", received.WakeUp.QueueId);
        Assert.NotNull(received.Receipt);
    }

    [Fact]
    public async Task Receive_WhileHeld_IsNotHandedOutAgain()
    {
        var (queue, source) = Create();
        await queue.ScheduleAsync(new WakeUp("example.test", "QID1"), Time.GetUtcNow(), None);

        Assert.Single(await source.ReceiveDueAsync(10, TimeSpan.Zero, None));

        Assert.Empty(await source.ReceiveDueAsync(10, TimeSpan.Zero, None));
    }

    [Fact]
    public async Task Complete_Received_IsGoneForGood()
    {
        var (queue, source) = Create();
        await queue.ScheduleAsync(new WakeUp("example.test", "QID1"), Time.GetUtcNow(), None);
        var received = Assert.Single(await source.ReceiveDueAsync(10, TimeSpan.Zero, None));

        await source.CompleteAsync(received, None);

        Time.Advance(TimeSpan.FromHours(1));
        Assert.Empty(await source.ReceiveDueAsync(10, TimeSpan.Zero, None));
    }

    [Fact]
    public async Task Abandon_Received_ComesBack()
    {
        var (queue, source) = Create();
        await queue.ScheduleAsync(new WakeUp("example.test", "QID1"), Time.GetUtcNow(), None);
        var received = Assert.Single(await source.ReceiveDueAsync(10, TimeSpan.Zero, None));

        await source.AbandonAsync(received, None);

        var again = Assert.Single(await source.ReceiveDueAsync(10, TimeSpan.Zero, None));
        Assert.Equal("QID1", again.WakeUp.QueueId);
    }

    [Fact]
    public async Task Cancel_ByItsToken_NeverComes()
    {
        var (queue, source) = Create();
        var token = await queue.ScheduleAsync(new WakeUp("example.test", "QID1"), Time.GetUtcNow().AddMinutes(1), None);
        await queue.ScheduleAsync(new WakeUp("example.test", "QID2"), Time.GetUtcNow().AddMinutes(1), None);
        Assert.NotNull(token);

        await queue.CancelAsync(token, None);

        Time.Advance(TimeSpan.FromMinutes(1));
        var received = Assert.Single(await source.ReceiveDueAsync(10, TimeSpan.Zero, None));
        Assert.Equal("QID2", received.WakeUp.QueueId);
    }

    [Fact]
    public async Task Cancel_AlreadyCompleted_IsNoError()
    {
        var (queue, source) = Create();
        var token = await queue.ScheduleAsync(new WakeUp("example.test", "QID1"), Time.GetUtcNow(), None);
        await source.CompleteAsync(Assert.Single(await source.ReceiveDueAsync(10, TimeSpan.Zero, None)), None);

        await queue.CancelAsync(token!, None);
    }

    [Fact]
    public async Task Receive_SeveralDue_EarliestFirstAndAtMostTheCountAsked()
    {
        var (queue, source) = Create();
        var now = Time.GetUtcNow();
        await queue.ScheduleAsync(new WakeUp("example.test", "QID3"), now.AddSeconds(3), None);
        await queue.ScheduleAsync(new WakeUp("example.test", "QID1"), now.AddSeconds(1), None);
        await queue.ScheduleAsync(new WakeUp("example.test", "QID2"), now.AddSeconds(2), None);
        Time.Advance(TimeSpan.FromSeconds(3));

        var first = await source.ReceiveDueAsync(2, TimeSpan.Zero, None);
        var rest = await source.ReceiveDueAsync(2, TimeSpan.Zero, None);

        Assert.Equal(["QID1", "QID2"], first.Select(w => w.WakeUp.QueueId));
        Assert.Equal(["QID3"], rest.Select(w => w.WakeUp.QueueId));
    }

    [Fact]
    public async Task ScheduleMany_MoreThanOneCallHolds_ATokenEachInOrderAndAllComeAtTheirDueTime()
    {
        var (queue, source) = Create();
        var due = Time.GetUtcNow().AddMinutes(1);
        var wakeUps = Enumerable.Range(0, 250).Select(i => new WakeUp("example.test", $"QID{i:D3}")).ToList();

        var tokens = await queue.ScheduleManyAsync(wakeUps, due, None);

        Assert.Equal(250, tokens.Count);
        Assert.Equal(250, tokens.Distinct().Count());
        Assert.Empty(await source.ReceiveDueAsync(300, TimeSpan.Zero, None));
        Time.Advance(TimeSpan.FromMinutes(1));
        var received = await source.ReceiveDueAsync(300, TimeSpan.Zero, None);
        Assert.Equal(wakeUps.Select(w => w.QueueId).Order(), received.Select(r => r.WakeUp.QueueId).Order());
    }

    [Fact]
    public async Task ScheduleMany_CancelOneByItsToken_OnlyThatOneNeverComes()
    {
        var (queue, source) = Create();
        var wakeUps = new[] { new WakeUp("example.test", "QID1"), new WakeUp("example.test", "QID2"), new WakeUp("example.test", "QID3") };
        var tokens = await queue.ScheduleManyAsync(wakeUps, Time.GetUtcNow().AddMinutes(1), None);

        await queue.CancelAsync(tokens[1]!, None);

        Time.Advance(TimeSpan.FromMinutes(1));
        var received = await source.ReceiveDueAsync(10, TimeSpan.Zero, None);
        Assert.Equal(["QID1", "QID3"], received.Select(r => r.WakeUp.QueueId).Order());
    }

    [Fact]
    public async Task Settle_ReceiptFromAnotherSource_IsRefused()
    {
        var (_, source) = Create();
        var foreign = new ReceivedWakeUp(new WakeUp("example.test", "QID1"), new ForeignReceipt());

        await Assert.ThrowsAsync<ArgumentException>(() => source.CompleteAsync(foreign, None));
    }

    private sealed class ForeignReceipt : WakeUpReceipt;
}
