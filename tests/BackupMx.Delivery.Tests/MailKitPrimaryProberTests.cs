using BackupMx.Testing;

namespace BackupMx.Delivery.Tests;

public sealed class MailKitPrimaryProberTests
{
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
}
