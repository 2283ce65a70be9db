using Microsoft.Extensions.Logging;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// The pause after a failed accept on one endpoint, and the warnings about a run of them: 50 ms,
/// doubling up to 1 s, back to 50 ms once an accept succeeds. Short enough that mail flows again
/// soon after descriptors are freed, long enough that a lasting error costs one attempt a second
/// rather than a spinning core.
/// </summary>
/// <remarks>
/// Not thread-safe, and need not be: SmtpServer asks one endpoint's listener for the next
/// connection only after the previous call has ended.
/// </remarks>
internal sealed class AcceptBackoff(string endpoint, TimeProvider time, ILogger logger)
{
    private static readonly TimeSpan FirstPause = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan LongestPause = TimeSpan.FromSeconds(1);

    // A lasting error is warned about when it starts and then once a minute, not per attempt.
    private static readonly TimeSpan WarningInterval = TimeSpan.FromMinutes(1);

    // The current run of failed accepts.
    private int _failures;
    private int _failuresSinceWarning;
    private long _firstFailure;
    private long _lastWarning;
    private TimeSpan _pause;

    public async Task PauseAsync(Exception error, CancellationToken cancellationToken)
    {
        var now = time.GetTimestamp();
        _failuresSinceWarning++;
        if (_failures++ == 0)
        {
            _firstFailure = now;
            _lastWarning = now;
            _failuresSinceWarning = 0;
            _pause = FirstPause;
            Log.AcceptFailed(logger, endpoint, ListenerBinding.Reason(error));
        }
        else if (time.GetElapsedTime(_lastWarning, now) >= WarningInterval)
        {
            Log.AcceptStillFailing(logger, endpoint, time.GetElapsedTime(_firstFailure, now), _failuresSinceWarning, ListenerBinding.Reason(error));
            _lastWarning = now;
            _failuresSinceWarning = 0;
        }

        var pause = _pause;
        _pause = pause * 2 < LongestPause ? pause * 2 : LongestPause;
        await Task.Delay(pause, time, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>An accept succeeded: ends the run of failures, if there was one.</summary>
    public void Succeeded()
    {
        if (_failures > 0)
        {
            Log.AcceptingAgain(logger, endpoint, _failures, time.GetElapsedTime(_firstFailure));
            _failures = 0;
        }
    }
}
