using System.Collections.Concurrent;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;

namespace BackupMx.Functions.Tests.Fakes;

/// <summary>
/// Wraps the in-memory Service Bus stand-in and notes, at the moment each wake-up is
/// completed or abandoned, what the spool record looked like, so a test can tell
/// whether the state was written before the wake-up was settled.
/// </summary>
public sealed class ObservingWakeUpSource(IWakeUpSource inner, ISpoolStore spool) : IWakeUpSource
{
    public sealed record Settlement(string Action, WakeUp WakeUp, SpoolRecord? RecordAtThatMoment);

    public ConcurrentQueue<Settlement> Settlements { get; } = new();

    public Task<IReadOnlyList<ReceivedWakeUp>> ReceiveDueAsync(int maxCount, TimeSpan maxWait, CancellationToken cancellationToken) =>
        inner.ReceiveDueAsync(maxCount, maxWait, cancellationToken);

    public async Task CompleteAsync(ReceivedWakeUp wakeUp, CancellationToken cancellationToken)
    {
        Settlements.Enqueue(new Settlement("complete", wakeUp.WakeUp, await SnapshotAsync(wakeUp)));
        await inner.CompleteAsync(wakeUp, cancellationToken);
    }

    public async Task AbandonAsync(ReceivedWakeUp wakeUp, CancellationToken cancellationToken)
    {
        Settlements.Enqueue(new Settlement("abandon", wakeUp.WakeUp, null));
        await inner.AbandonAsync(wakeUp, cancellationToken);
    }

    private async Task<SpoolRecord?> SnapshotAsync(ReceivedWakeUp wakeUp)
    {
        try
        {
            return await spool.GetAsync(wakeUp.WakeUp.Domain, wakeUp.WakeUp.QueueId, CancellationToken.None);
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }
}
