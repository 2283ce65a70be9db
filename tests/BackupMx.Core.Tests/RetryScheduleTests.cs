using BackupMx.Core.Configuration;
using BackupMx.Core.Forwarding;

namespace BackupMx.Core.Tests;

public sealed class RetryScheduleTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void DelayAfter_DefaultIntervals_FiveTenTwentyFortyThenHourly()
    {
        var schedule = new RetrySchedule(new DeliveryOptions().EffectiveRetryIntervals);

        var delays = Enumerable.Range(1, 8).Select(schedule.DelayAfter).Select(d => d.TotalMinutes).ToArray();

        Assert.Equal([5, 10, 20, 40, 60, 60, 60, 60], delays);
    }

    [Fact]
    public void DelayAfter_ConfiguredIntervals_LastOneRepeats()
    {
        var schedule = new RetrySchedule([TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(2)]);

        Assert.Equal(TimeSpan.FromSeconds(30), schedule.DelayAfter(1));
        Assert.Equal(TimeSpan.FromMinutes(2), schedule.DelayAfter(2));
        Assert.Equal(TimeSpan.FromMinutes(2), schedule.DelayAfter(50));
        Assert.Equal(TimeSpan.FromSeconds(30), schedule.DelayAfter(0));
    }

    [Fact]
    public void NextAttempt_PastExpiry_IsCappedAtExpiry()
    {
        var schedule = new RetrySchedule(new DeliveryOptions().EffectiveRetryIntervals);
        var expiry = Now.AddMinutes(7);

        Assert.Equal(Now.AddMinutes(5), schedule.NextAttempt(Now, 1, expiry));
        Assert.Equal(expiry, schedule.NextAttempt(Now, 2, expiry));
    }

    [Fact]
    public void Constructor_NoIntervals_Throws()
    {
        Assert.Throws<ArgumentException>(() => new RetrySchedule([]));
    }

    [Fact]
    public void EffectiveRetryIntervals_Configured_ReplaceTheDefaults()
    {
        var options = new DeliveryOptions { RetryIntervals = [TimeSpan.FromMinutes(1)] };
        Assert.Equal([TimeSpan.FromMinutes(1)], options.EffectiveRetryIntervals);
    }
}
