using BackupMx.Core.Forwarding;

namespace BackupMx.Core.Tests;

public sealed class BoundedDispatcherTests
{
    [Fact]
    public async Task Start_AtCapacity_ThrowsAndRunsNothingMore()
    {
        var dispatcher = new BoundedDispatcher<int>(2);
        var gate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        dispatcher.Start(() => gate.Task);
        dispatcher.Start(() => gate.Task);

        Assert.Equal(0, dispatcher.Free);
        Assert.Throws<InvalidOperationException>(() => dispatcher.Start(() => Task.FromResult(3)));
        Assert.Equal(2, dispatcher.Running);

        gate.SetResult(1);
        var settled = await dispatcher.DrainAsync();
        Assert.Equal(new[] { 1, 1 }, settled);
        Assert.Equal(0, dispatcher.Running);
    }

    [Fact]
    public async Task WaitForSlotAsync_AllBusy_ReturnsWhenOneFinishesWithItsResult()
    {
        var dispatcher = new BoundedDispatcher<string>(2);
        var first = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var second = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        dispatcher.Start(() => first.Task);
        dispatcher.Start(() => second.Task);

        var wait = dispatcher.WaitForSlotAsync(CancellationToken.None);
        await Task.Delay(50);
        Assert.False(wait.IsCompleted);

        second.SetResult("b");
        var settled = await wait.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(new[] { "b" }, settled);
        Assert.Equal(1, dispatcher.Free);

        first.SetResult("a");
        var rest = await dispatcher.DrainAsync();
        Assert.Equal(new[] { "a" }, rest);
    }

    [Fact]
    public async Task WaitForSlotAsync_Cancelled_ThrowsWithoutLosingTheRunningAttempt()
    {
        var dispatcher = new BoundedDispatcher<int>(1);
        var gate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        dispatcher.Start(() => gate.Task);
        using var cts = new CancellationTokenSource();

        var wait = dispatcher.WaitForSlotAsync(cts.Token);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
        Assert.Equal(1, dispatcher.Running);
        gate.SetResult(7);
        var settled = await dispatcher.DrainAsync();
        Assert.Equal(new[] { 7 }, settled);
    }

    [Fact]
    public async Task Start_SlowAttempt_DoesNotDelayTheCaller()
    {
        var dispatcher = new BoundedDispatcher<int>(1);
        using var blocked = new ManualResetEventSlim();

        // An attempt that blocks its thread before its first await must not block Start.
        dispatcher.Start(() =>
        {
            blocked.Wait(TimeSpan.FromSeconds(10));
            return Task.FromResult(1);
        });

        Assert.Equal(1, dispatcher.Running);
        blocked.Set();
        var settled = await dispatcher.DrainAsync();
        Assert.Equal(new[] { 1 }, settled);
    }

    [Fact]
    public async Task Collect_ReturnsOnlyFinishedAttempts()
    {
        var dispatcher = new BoundedDispatcher<int>(3);
        var pending = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        dispatcher.Start(() => Task.FromResult(1));
        dispatcher.Start(() => pending.Task);
        await dispatcher.WhenAnyFinishedAsync().WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(new[] { 1 }, dispatcher.Collect());
        Assert.Equal(1, dispatcher.Running);
        pending.SetResult(2);
        var settled = await dispatcher.DrainAsync();
        Assert.Equal(new[] { 2 }, settled);
    }
}
