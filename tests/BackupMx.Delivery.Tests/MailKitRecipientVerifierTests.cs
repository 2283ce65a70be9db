using BackupMx.Core.Ports;
using BackupMx.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupMx.Delivery.Tests;

public sealed class MailKitRecipientVerifierTests : IAsyncLifetime
{
    private readonly FakePrimary _primary = new();

    public Task InitializeAsync() => _primary.StartAsync();

    public async Task DisposeAsync() => await _primary.DisposeAsync();

    private Task<VerificationResult> VerifyAsync(string address) =>
        TestDelivery.Verifier(TestDelivery.Config(_primary.HostPort)).VerifyAsync("example.com", address, CancellationToken.None);

    [Fact]
    public async Task VerifyAsync_Accepted_ExistsAndNoDataSent()
    {
        var result = await VerifyAsync("bob@example.com");

        Assert.Equal(VerificationOutcome.Exists, result.Outcome);
        Assert.Equal(250, result.Reply!.Code);
        Assert.Equal(["MAIL FROM:<>", "RCPT TO:<bob@example.com>", "RSET", "QUIT"], _primary.Commands.Where(c => !c.StartsWith("EHLO", StringComparison.Ordinal)));
        Assert.Empty(_primary.Messages);
    }

    [Fact]
    public async Task VerifyAsync_Refused550_DoesNotExist()
    {
        _primary.Reply("nobody@example.com", 550, "5.1.1 No such user");

        var result = await VerifyAsync("nobody@example.com");

        Assert.Equal(VerificationOutcome.DoesNotExist, result.Outcome);
        Assert.Equal("5.1.1", result.Reply!.EnhancedCode);
        Assert.DoesNotContain("DATA", _primary.Commands);
    }

    [Fact]
    public async Task VerifyAsync_Transient451_Unknown()
    {
        _primary.Reply("busy@example.com", 451, "4.3.0 Try later");

        var result = await VerifyAsync("busy@example.com");

        Assert.Equal(VerificationOutcome.Unknown, result.Outcome);
        Assert.Equal(451, result.Reply!.Code);
    }

    [Fact]
    public async Task VerifyAsync_NullSenderRefused_UnknownAndNoRcpt()
    {
        _primary.MailFromReply = new FakeReply(550, "5.7.1 No bounces here");

        var result = await VerifyAsync("bob@example.com");

        Assert.Equal(VerificationOutcome.Unknown, result.Outcome);
        Assert.DoesNotContain(_primary.Commands, c => c.StartsWith("RCPT", StringComparison.Ordinal));
    }

    [Fact]
    public async Task VerifyAsync_PrimaryDown_Unknown()
    {
        await _primary.StopAsync();

        var result = await VerifyAsync("bob@example.com");

        Assert.Equal(VerificationOutcome.Unknown, result.Outcome);
        Assert.True(result.Reply!.IsTransient);
    }

    [Fact]
    public async Task VerifyAsync_Greeting421_Unknown()
    {
        _primary.Greeting = new FakeReply(421, "4.3.2 Busy");

        Assert.Equal(VerificationOutcome.Unknown, (await VerifyAsync("bob@example.com")).Outcome);
    }

    [Fact]
    public async Task VerifyAsync_AddressWithLineBreak_UnknownWithoutContactingThePrimary()
    {
        var result = await VerifyAsync("bob@example.com>\r\nDATA");

        Assert.Equal(VerificationOutcome.Unknown, result.Outcome);
        Assert.Equal(0, _primary.ConnectionCount);
    }

    [Fact]
    public void AddBackupMxDelivery_CalledTwice_RegistersTheDirectCalloutAsTheOneVerifier()
    {
        var services = new ServiceCollection();
        services.AddSingleton(typeof(ILogger<>), typeof(NullLogger<>));
        services.AddSingleton(Microsoft.Extensions.Options.Options.Create(TestDelivery.Config()));

        services.AddBackupMxDelivery();
        services.AddBackupMxDelivery();
        using var provider = services.BuildServiceProvider();

        Assert.Single(services, d => d.ServiceType == typeof(IRecipientVerifier));
        Assert.Same(provider.GetRequiredService<MailKitRecipientVerifier>(), provider.GetRequiredService<IRecipientVerifier>());
    }
}
