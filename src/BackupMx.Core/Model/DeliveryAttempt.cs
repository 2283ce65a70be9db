namespace BackupMx.Core.Model;

/// <summary>
/// One attempt at a spooled message, kept for operators (<c>show</c>): when it was made, which host
/// it reached or last tried, the reply that decided it, and what became of the recipients tried.
/// </summary>
public sealed record DeliveryAttempt
{
    public required DateTimeOffset At { get; init; }

    /// <summary>The host that held the session, or the last one tried; null when none was named.</summary>
    public string? Host { get; init; }

    /// <summary>
    /// The reply of the first recipient still pending after the attempt, else of the first one tried,
    /// or our own description of a failure; bounded by <see cref="StoredText"/>.
    /// </summary>
    public string? Reply { get; init => field = StoredText.Bound(value); }

    public int Delivered { get; init; }

    public int Failed { get; init; }

    public int Deferred { get; init; }
}
