using BackupMx.Testing;

namespace BackupMx.Delivery.Tests;

/// <summary>A route that leads back to this server delivers nothing and says so.</summary>
public sealed class LoopDetectionTests : IAsyncLifetime
{
    private static readonly byte[] Body = TestDelivery.Ascii("From: alice@sender.org\r\nTo: bob@example.com\r\nSubject: loop\r\n\r\nhello\r\n");
    private readonly FakePrimary _primary = new();

    public Task InitializeAsync() => _primary.StartAsync();

    public async Task DisposeAsync() => await _primary.DisposeAsync();

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("0.0.0.0")]
    public async Task DeliverAsync_PrimaryIsOurOwnListener_Transient446WithoutConnecting(string listenAddress)
    {
        // The fake primary stands in at the port we "listen" on: were the check missing, it would get the mail.
        var options = TestDelivery.Config(_primary.HostPort);
        options.Smtp.Endpoints = [$"{listenAddress}:{_primary.Port}"];

        var result = await TestDelivery.Transport(options).DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        var reply = Assert.Single(result.Outcomes).Reply;
        Assert.Equal(451, reply.Code);
        Assert.Equal("4.4.6", reply.EnhancedCode);
        Assert.Contains("mail loops back to myself", reply.Text, StringComparison.Ordinal);
        Assert.False(result.ReachedServer);
        Assert.Equal(0, _primary.ConnectionCount);
    }

    [Fact]
    public async Task DeliverAsync_PrimaryGreetsWithOurName_Transient446AndNoMailCommand()
    {
        // Behind NAT or a port forward the address differs, but the name in the greeting is ours.
        _primary.Greeting = new FakeReply(220, TestDelivery.OurHost + " ESMTP");
        _primary.ServerName = TestDelivery.OurHost;

        var result = await TestDelivery.Transport(TestDelivery.Config(_primary.HostPort)).DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        var reply = Assert.Single(result.Outcomes).Reply;
        Assert.Equal("4.4.6", reply.EnhancedCode);
        Assert.Empty(_primary.Messages);
        Assert.DoesNotContain(_primary.Commands, c => c.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase));
        Assert.Contains("QUIT", _primary.Commands);
    }

    [Fact]
    public async Task DeliverAsync_OnlyEhloNameIsOurs_Transient446()
    {
        _primary.ServerName = TestDelivery.OurHost.ToUpperInvariant() + ".";

        var result = await TestDelivery.Transport(TestDelivery.Config(_primary.HostPort)).DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.Equal("4.4.6", Assert.Single(result.Outcomes).Reply.EnhancedCode);
        Assert.Empty(_primary.Messages);
    }

    [Fact]
    public async Task DeliverAsync_SamePortOtherAddress_NotALoop()
    {
        var options = TestDelivery.Config(_primary.HostPort);
        options.Smtp.Endpoints = [$"127.0.0.2:{_primary.Port}"];

        var result = await TestDelivery.Transport(options).DeliverAsync(TestDelivery.Request(Body), CancellationToken.None);

        Assert.True(Assert.Single(result.Outcomes).Reply.IsSuccess);
    }

    [Fact]
    public async Task ProbeAsync_PrimaryIsOurselves_Unreachable()
    {
        _primary.ServerName = TestDelivery.OurHost;

        var probe = await TestDelivery.Prober(TestDelivery.Config(_primary.HostPort)).ProbeAsync("example.com", CancellationToken.None);

        Assert.False(probe.Reachable);
        Assert.Contains("4.4.6", probe.Error, StringComparison.Ordinal);
    }
}
