using Microsoft.Extensions.Time.Testing;

namespace BackupMx.EndToEnd.Tests;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that counts the timers created on it by length, so a test can
/// wait until a background loop is really asleep on its next timer before advancing the clock.
/// Advancing first would leave the loop to create its timer afterwards, due a whole interval
/// after the new time, and the step the test wanted to trigger would never come.
/// </summary>
internal sealed class TimerAwareTimeProvider(DateTimeOffset start) : FakeTimeProvider(start)
{
    private readonly Dictionary<TimeSpan, int> _created = [];

    /// <summary>How many timers first due after <paramref name="dueTime"/> were created so far.</summary>
    public int TimersCreated(TimeSpan dueTime)
    {
        lock (_created)
        {
            return _created.GetValueOrDefault(dueTime);
        }
    }

    /// <summary>Waits until more than <paramref name="seen"/> timers of <paramref name="dueTime"/> exist.</summary>
    public async Task WaitForTimerAsync(TimeSpan dueTime, int seen, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (TimersCreated(dueTime) <= seen)
        {
            Assert.True(DateTime.UtcNow < deadline, $"no timer of {dueTime} was started within {seconds} s");
            await Task.Delay(10);
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        lock (_created)
        {
            _created[dueTime] = _created.GetValueOrDefault(dueTime) + 1;
        }

        return timer;
    }
}
