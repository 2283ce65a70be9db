using System.Diagnostics;
using System.Net;
using BackupMx.Core.Configuration;
using BackupMx.Testing;

namespace BackupMx.Delivery.Tests;

public sealed class MailKitPrimaryProberTests
{
    // Deliveries wait 30 s, probes 1 s: a probe that took the deliveries' timeout would end far
    // past Bound. Socket timeouts run on real time, hence short values.
    private static readonly TimeSpan DeliveryTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static BackupMxOptions ShortProbes(BackupMxOptions options)
    {
        options.Delivery.Timeout = DeliveryTimeout;
        options.Delivery.ProbeTimeout = ProbeTimeout;
        return options;
    }

    [Fact]
    public async Task ProbeAsync_PrimaryUp_ReachableAndQuits()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();

        var result = await TestDelivery.Prober(TestDelivery.Config(primary.HostPort)).ProbeAsync("example.com", CancellationToken.None);

        Assert.True(result.Reachable, result.Error);
        Assert.Equal("127.0.0.1", result.Host);
        Assert.Contains($"EHLO {TestDelivery.OurHost}", primary.Commands);
        Assert.Contains("QUIT", primary.Commands);
        Assert.Empty(primary.Messages);
    }

    [Fact]
    public async Task ProbeAsync_PrimaryDown_Unreachable()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        await primary.StopAsync();

        var result = await TestDelivery.Prober(TestDelivery.Config(primary.HostPort)).ProbeAsync("example.com", CancellationToken.None);

        Assert.False(result.Reachable);
        Assert.NotNull(result.Error);
    }

    [Fact]
    public async Task ProbeAsync_Greeting554_Unreachable()
    {
        await using var primary = new FakePrimary { Greeting = new FakeReply(554, "5.3.2 Not now") };
        await primary.StartAsync();

        var result = await TestDelivery.Prober(TestDelivery.Config(primary.HostPort)).ProbeAsync("example.com", CancellationToken.None);

        Assert.False(result.Reachable);
    }

    [Fact]
    public async Task ProbeAsync_SecondMxUp_Reachable()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        var dns = new ScriptedDns()
            .WithMx("example.com", (10, "down.example.com"), (20, "up.example.com"), (30, TestDelivery.OurHost))
            .WithAddress("down.example.com", "127.0.0.2")
            .WithAddress("up.example.com", "127.0.0.1");

        var result = await TestDelivery.Prober(TestDelivery.Config(port: primary.Port), dns).ProbeAsync("example.com", CancellationToken.None);

        Assert.True(result.Reachable, result.Error);
        Assert.Equal("up.example.com", result.Host);
    }

    [Fact]
    public async Task ProbeAsync_AcceptsButNeverGreets_UnreachableAfterProbeTimeoutNotDeliveryTimeout()
    {
        using var silent = new SilentServer();
        var prober = TestDelivery.Prober(ShortProbes(TestDelivery.Config(silent.HostPort)));

        var clock = Stopwatch.StartNew();
        var result = await prober.ProbeAsync("example.com", CancellationToken.None);
        clock.Stop();

        Assert.False(result.Reachable);
        Assert.Null(result.Host);
        Assert.Equal("451 4.4.1 127.0.0.1: no greeting within 1 s", result.Error);
        Assert.Equal(1, silent.ConnectionCount);
        Assert.True(clock.Elapsed >= ProbeTimeout - TimeSpan.FromMilliseconds(100), $"gave up after {clock.Elapsed}, before the probe timeout");
        Assert.True(clock.Elapsed < Bound, $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task ProbeAsync_FirstMxNeverGreets_SecondMxProbedAfterProbeTimeoutAndUp()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        using var silent = new SilentServer(IPAddress.Parse("127.0.0.2"), primary.Port);
        var dns = new ScriptedDns()
            .WithMx("example.com", (10, "silent.example.com"), (20, "up.example.com"), (30, TestDelivery.OurHost))
            .WithAddress("silent.example.com", "127.0.0.2")
            .WithAddress("up.example.com", "127.0.0.1");
        var prober = TestDelivery.Prober(ShortProbes(TestDelivery.Config(port: primary.Port)), dns);

        var clock = Stopwatch.StartNew();
        var result = await prober.ProbeAsync("example.com", CancellationToken.None);
        clock.Stop();

        Assert.True(result.Reachable, result.Error);
        Assert.Equal("up.example.com", result.Host);
        Assert.Equal(1, silent.ConnectionCount);
        Assert.Contains("QUIT", primary.Commands);
        Assert.True(clock.Elapsed < Bound, $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task ProbeAsync_EveryMxNeverGreets_EachHostGetsTheProbeTimeoutInTurn()
    {
        using var first = new SilentServer(IPAddress.Loopback);
        using var second = new SilentServer(IPAddress.Parse("127.0.0.2"), first.Port);
        var dns = new ScriptedDns()
            .WithMx("example.com", (10, "mx1.example.com"), (20, "mx2.example.com"), (30, TestDelivery.OurHost))
            .WithAddress("mx1.example.com", "127.0.0.1")
            .WithAddress("mx2.example.com", "127.0.0.2");
        var prober = TestDelivery.Prober(ShortProbes(TestDelivery.Config(port: first.Port)), dns);

        var clock = Stopwatch.StartNew();
        var result = await prober.ProbeAsync("example.com", CancellationToken.None);
        clock.Stop();

        Assert.False(result.Reachable);
        Assert.Equal("451 4.4.1 mx2.example.com: no greeting within 1 s", result.Error);
        Assert.Equal(1, first.ConnectionCount);
        Assert.Equal(1, second.ConnectionCount);
        Assert.True(clock.Elapsed >= (2 * ProbeTimeout) - TimeSpan.FromMilliseconds(200), $"took {clock.Elapsed}: not one timeout per host");
        Assert.True(clock.Elapsed < Bound, $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task ProbeAsync_ShortProbeTimeout_HealthyPrimaryStillUp()
    {
        await using var primary = new FakePrimary();
        await primary.StartAsync();

        var result = await TestDelivery.Prober(ShortProbes(TestDelivery.Config(primary.HostPort))).ProbeAsync("example.com", CancellationToken.None);

        Assert.True(result.Reachable, result.Error);
        Assert.Contains($"EHLO {TestDelivery.OurHost}", primary.Commands);
        Assert.Contains("QUIT", primary.Commands);
    }

    [Fact]
    public async Task ProbeAsync_CallerCancels_Throws()
    {
        // Shutting down is not a verdict on the primary: no Down may be recorded for it.
        using var silent = new SilentServer();
        var prober = TestDelivery.Prober(ShortProbes(TestDelivery.Config(silent.HostPort)));
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => prober.ProbeAsync("example.com", cancel.Token));
    }
}
