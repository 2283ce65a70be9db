namespace BackupMx.Core.Ports;

/// <summary>"Look at message X now": a hint, never the truth (rule 2).</summary>
public sealed record WakeUp(string Domain, string QueueId)
{
    /// <summary>
    /// The moment the wake-up was scheduled for, when the queue carries it (Service Bus does). It
    /// lets the forwarder recognise the record's own wake-up, fired by the queue's clock, on a
    /// machine whose clock is behind the one that set the record's next attempt.
    /// </summary>
    public DateTimeOffset? DueAt { get; init; }
}

/// <summary>
/// Schedules wake-ups. In Azure mode these are Service Bus scheduled messages; in
/// embedded mode the spool's next-attempt index is the schedule and this only nudges
/// the in-process pump. Wake-ups may be duplicated, late or lost; a sweep repairs lost ones.
/// </summary>
public interface IWakeUpQueue
{
    /// <summary>Schedules a wake-up at <paramref name="dueAt"/>; returns a token that can cancel it, or null if it cannot be cancelled.</summary>
    Task<string?> ScheduleAsync(WakeUp wakeUp, DateTimeOffset dueAt, CancellationToken cancellationToken);

    /// <summary>
    /// Schedules several wake-ups at <paramref name="dueAt"/>; returns their tokens in the order given.
    /// A queue that can send many in one call (Service Bus) overrides this; the rest schedule one by
    /// one. On a failure some of the wake-ups may have been scheduled and others not, and which is
    /// not reported: the caller treats them all as possibly lost, which the sweep repairs (rule 2).
    /// </summary>
    async Task<IReadOnlyList<string?>> ScheduleManyAsync(IReadOnlyList<WakeUp> wakeUps, DateTimeOffset dueAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(wakeUps);
        var tokens = new string?[wakeUps.Count];
        for (var i = 0; i < tokens.Length; i++)
        {
            tokens[i] = await ScheduleAsync(wakeUps[i], dueAt, cancellationToken).ConfigureAwait(false);
        }

        return tokens;
    }

    /// <summary>Cancels a pending wake-up; best effort, no error if it already fired or never existed.</summary>
    Task CancelAsync(string token, CancellationToken cancellationToken);
}

/// <summary>One received wake-up, to be completed once the state it led to is written.</summary>
/// <param name="Receipt">What the source that handed it out needs to settle it.</param>
public sealed record ReceivedWakeUp(WakeUp WakeUp, WakeUpReceipt Receipt);

/// <summary>
/// A source's proof of receipt for one wake-up (a Service Bus message and its lock, say). Each
/// <see cref="IWakeUpSource"/> derives its own and settles only its own kind.
/// </summary>
public abstract class WakeUpReceipt;

/// <summary>
/// The receiving side of <see cref="IWakeUpQueue"/> for hosts that pull wake-ups
/// (the Forward function). Peek-lock semantics: a wake-up not completed comes back.
/// </summary>
public interface IWakeUpSource
{
    Task<IReadOnlyList<ReceivedWakeUp>> ReceiveDueAsync(int maxCount, TimeSpan maxWait, CancellationToken cancellationToken);

    Task CompleteAsync(ReceivedWakeUp wakeUp, CancellationToken cancellationToken);

    Task AbandonAsync(ReceivedWakeUp wakeUp, CancellationToken cancellationToken);
}
