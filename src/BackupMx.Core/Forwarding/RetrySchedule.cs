namespace BackupMx.Core.Forwarding;

/// <summary>
/// When to try again after a failed attempt: the n-th failure waits the n-th
/// interval, the last interval repeats, and no attempt is planned past expiry
/// (the last one is made at the moment of expiry so that it can bounce).
/// </summary>
public sealed class RetrySchedule(IReadOnlyList<TimeSpan> intervals)
{
    private readonly TimeSpan[] _intervals = intervals.Count > 0
        ? intervals.ToArray()
        : throw new ArgumentException("At least one retry interval is needed.", nameof(intervals));

    /// <summary>The wait after <paramref name="failedAttempts"/> failures (1 = after the first).</summary>
    public TimeSpan DelayAfter(int failedAttempts)
    {
        var index = Math.Clamp(failedAttempts - 1, 0, _intervals.Length - 1);
        return _intervals[index];
    }

    public DateTimeOffset NextAttempt(DateTimeOffset now, int failedAttempts, DateTimeOffset expiresAt)
    {
        var next = now + DelayAfter(failedAttempts);
        return next < expiresAt ? next : expiresAt;
    }
}
