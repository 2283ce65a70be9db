using BackupMx.Core.Forwarding;

namespace BackupMx.Core.Tests;

public sealed class WakeUpSignalTests
{
    private static readonly DateTimeOffset T = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void SetIfDueBefore_WaiterLooking_Sets()
    {
        var signal = new WakeUpSignal();
        signal.Reset();

        signal.SetIfDueBefore(T.AddDays(1));

        Assert.True(signal.WaitAsync().IsCompleted);
    }

    [Fact]
    public void SetIfDueBefore_DueAfterTheWaitersOwnLook_DoesNotSet()
    {
        var signal = new WakeUpSignal();
        signal.SleepUntil(T);

        signal.SetIfDueBefore(T);
        signal.SetIfDueBefore(T.AddMinutes(5));

        Assert.False(signal.WaitAsync().IsCompleted);
    }

    [Fact]
    public void SetIfDueBefore_DueBeforeTheWaitersOwnLook_Sets()
    {
        var signal = new WakeUpSignal();
        signal.SleepUntil(T);

        signal.SetIfDueBefore(T.AddTicks(-1));

        Assert.True(signal.WaitAsync().IsCompleted);
    }

    [Fact]
    public void Reset_AfterSleep_EverySetCountsAgain()
    {
        var signal = new WakeUpSignal();
        signal.SleepUntil(T);
        signal.Reset();

        signal.SetIfDueBefore(T.AddMinutes(5));

        Assert.True(signal.WaitAsync().IsCompleted);
    }
}
