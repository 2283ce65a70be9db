using BackupMx.Core.Ports;

namespace BackupMx.Core.Forwarding;

/// <summary>
/// Wake-ups for a single process whose spool can list due records (embedded mode): the
/// spool's next-attempt index is the durable schedule, so scheduling only has to nudge
/// the <see cref="DueMessagePump"/> to look again, and only when the pump would otherwise
/// sleep past <c>dueAt</c>.
/// </summary>
public sealed class InProcessWakeUpQueue(WakeUpSignal signal) : IWakeUpQueue
{
    private static readonly Task<string?> NoToken = Task.FromResult<string?>(null);

    public Task<string?> ScheduleAsync(WakeUp wakeUp, DateTimeOffset dueAt, CancellationToken cancellationToken)
    {
        signal.SetIfDueBefore(dueAt);
        return NoToken;
    }

    public Task CancelAsync(string token, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// An auto-reset signal that coalesces many sets into one wake. The waiter may say when it
/// will look anyway (<see cref="SleepUntil"/>), so that a wake-up due later than that, such as
/// a retry minutes away, does not wake it for nothing.
/// </summary>
public sealed class WakeUpSignal
{
    private TaskCompletionSource _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // UTC ticks of the waiter's next look of its own accord; MaxValue while it is not sleeping.
    private long _sleepingUntil = long.MaxValue;

    public void Set() => Volatile.Read(ref _tcs).TrySetResult();

    /// <summary>Sets the signal unless the waiter is asleep until a time at or before <paramref name="dueAt"/>.</summary>
    public void SetIfDueBefore(DateTimeOffset dueAt)
    {
        if (dueAt.UtcTicks < Volatile.Read(ref _sleepingUntil))
        {
            Set();
        }
    }

    /// <summary>
    /// The waiter will look at <paramref name="until"/> without being woken (null: it is looking
    /// now, so every set counts). Publish it after the look that chose it: a wake-up scheduled
    /// while it looked was set, since <see cref="Reset"/> clears this, and wakes the sleep at once.
    /// </summary>
    public void SleepUntil(DateTimeOffset? until) =>
        Volatile.Write(ref _sleepingUntil, until?.UtcTicks ?? long.MaxValue);

    /// <summary>Completes when <see cref="Set"/> is called after this call or was called since the last wait.</summary>
    public Task WaitAsync() => Volatile.Read(ref _tcs).Task;

    /// <summary>Re-arms the signal; call after waking, before looking for work.</summary>
    public void Reset()
    {
        Volatile.Write(ref _sleepingUntil, long.MaxValue);
        var current = Volatile.Read(ref _tcs);
        if (current.Task.IsCompleted)
        {
            Interlocked.CompareExchange(ref _tcs, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), current);
        }
    }
}
