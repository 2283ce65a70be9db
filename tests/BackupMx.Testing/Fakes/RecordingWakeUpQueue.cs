using System.Collections.Concurrent;
using BackupMx.Core.Ports;

namespace BackupMx.Testing.Fakes;

/// <summary>
/// An in-memory stand-in for Service Bus scheduled messages: keeps what was scheduled,
/// hands out due ones in peek-lock fashion, and honours cancellation by token.
/// </summary>
public sealed class RecordingWakeUpQueue(TimeProvider time) : IWakeUpQueue, IWakeUpSource
{
    private readonly ConcurrentDictionary<long, (WakeUp WakeUp, DateTimeOffset DueAt)> _scheduled = new();
    private readonly ConcurrentDictionary<long, byte> _locked = new();
    private long _sequence;

    public ConcurrentQueue<(WakeUp WakeUp, DateTimeOffset DueAt)> History { get; } = new();

    public ConcurrentBag<string> Cancelled { get; } = [];

    public int PendingCount => _scheduled.Count;

    public Task<string?> ScheduleAsync(WakeUp wakeUp, DateTimeOffset dueAt, CancellationToken cancellationToken)
    {
        var seq = Interlocked.Increment(ref _sequence);
        _scheduled[seq] = (wakeUp, dueAt);
        History.Enqueue((wakeUp, dueAt));
        return Task.FromResult<string?>(seq.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    public Task CancelAsync(string token, CancellationToken cancellationToken)
    {
        Cancelled.Add(token);
        _scheduled.TryRemove(long.Parse(token, System.Globalization.CultureInfo.InvariantCulture), out _);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<ReceivedWakeUp>> ReceiveDueAsync(int maxCount, TimeSpan maxWait, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var due = new List<ReceivedWakeUp>();
        foreach (var (key, value) in _scheduled.Where(p => p.Value.DueAt <= now).OrderBy(p => p.Value.DueAt))
        {
            if (due.Count >= maxCount)
            {
                break;
            }

            // The listing is not a snapshot: a message completed while it ran may still be in it, and its
            // lock is released after it is removed. Re-checking after taking the lock skips it for good.
            if (_locked.TryAdd(key, 0))
            {
                if (_scheduled.ContainsKey(key))
                {
                    due.Add(new ReceivedWakeUp(value.WakeUp, new Receipt(key)));
                }
                else
                {
                    _locked.TryRemove(key, out _);
                }
            }
        }

        return Task.FromResult<IReadOnlyList<ReceivedWakeUp>>(due);
    }

    public Task CompleteAsync(ReceivedWakeUp wakeUp, CancellationToken cancellationToken)
    {
        var key = KeyOf(wakeUp);
        _scheduled.TryRemove(key, out _);
        _locked.TryRemove(key, out _);
        return Task.CompletedTask;
    }

    public Task AbandonAsync(ReceivedWakeUp wakeUp, CancellationToken cancellationToken)
    {
        _locked.TryRemove(KeyOf(wakeUp), out _);
        return Task.CompletedTask;
    }

    private static long KeyOf(ReceivedWakeUp wakeUp) =>
        (wakeUp.Receipt as Receipt)?.Key ?? throw new ArgumentException("The wake-up was not received from this queue.", nameof(wakeUp));

    private sealed class Receipt(long key) : WakeUpReceipt
    {
        public long Key { get; } = key;
    }
}
