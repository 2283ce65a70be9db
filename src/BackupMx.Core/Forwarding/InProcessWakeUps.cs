using BackupMx.Core.Ports;

namespace BackupMx.Core.Forwarding;

/// <summary>
/// Wake-ups for a single process whose spool can list due records (embedded mode): the
/// spool's next-attempt index is the durable schedule, so scheduling only has to nudge
/// the <see cref="DueMessagePump"/> to look again.
/// </summary>
public sealed class InProcessWakeUpQueue(WakeUpSignal signal) : IWakeUpQueue
{
    public Task<string?> ScheduleAsync(WakeUp wakeUp, DateTimeOffset dueAt, CancellationToken cancellationToken)
    {
        signal.Set();
        return Task.FromResult<string?>(null);
    }

    public Task CancelAsync(string token, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>An auto-reset signal that coalesces many sets into one wake.</summary>
public sealed class WakeUpSignal
{
    private TaskCompletionSource _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Set() => Volatile.Read(ref _tcs).TrySetResult();

    /// <summary>Completes when <see cref="Set"/> is called after this call or was called since the last wait.</summary>
    public Task WaitAsync() => Volatile.Read(ref _tcs).Task;

    /// <summary>Re-arms the signal; call after waking, before looking for work.</summary>
    public void Reset()
    {
        var current = Volatile.Read(ref _tcs);
        if (current.Task.IsCompleted)
        {
            Interlocked.CompareExchange(ref _tcs, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), current);
        }
    }
}
