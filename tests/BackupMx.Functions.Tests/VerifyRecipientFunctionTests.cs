using System.Net;
using System.Text;
using System.Text.Json;
using BackupMx.Core.Hosting;
using BackupMx.Delivery;
using BackupMx.Functions.Tests.Fakes;
using BackupMx.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Functions.Tests;

/// <summary>
/// The VerifyRecipient function as the function app composes it (Core, Delivery's MailKit
/// verifier), calling a real SMTP primary out over loopback.
/// </summary>
public sealed class VerifyRecipientFunctionTests : IAsyncLifetime
{
    private readonly FakePrimary _primary = new();
    private readonly FakePrimary _elsewhere = new();
    private readonly List<ServiceProvider> _providers = [];

    public async Task InitializeAsync()
    {
        await _primary.StartAsync();
        await _elsewhere.StartAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var provider in _providers)
        {
            await provider.DisposeAsync();
        }

        await _primary.DisposeAsync();
        await _elsewhere.DisposeAsync();
    }

    [Fact]
    public async Task Run_ConfiguredDomain_CallsItsPrimaryOutAndAnswersExists()
    {
        var response = await RunAsync(Function(_primary.HostPort), "{\"address\":\"bob@example.test\"}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = response.ReadJson();
        Assert.Equal("example.test", json.RootElement.GetProperty("domain").GetString());
        Assert.Equal("Exists", json.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(250, json.RootElement.GetProperty("reply").GetProperty("code").GetInt32());
        Assert.Contains("MAIL FROM:<>", _primary.Commands);
        Assert.Contains("RCPT TO:<bob@example.test>", _primary.Commands);
        Assert.Empty(_primary.Messages);
        Assert.Equal(0, _elsewhere.ConnectionCount);
    }

    [Fact]
    public async Task Run_PrimaryRefusesTheRecipient_AnswersDoesNotExistWithItsReply()
    {
        _primary.Reply("nobody@example.test", 550, "5.1.1 No such user");

        var response = await RunAsync(Function(_primary.HostPort), "{\"address\":\"nobody@EXAMPLE.test\"}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = response.ReadJson();
        Assert.Equal("example.test", json.RootElement.GetProperty("domain").GetString());
        Assert.Equal("DoesNotExist", json.RootElement.GetProperty("outcome").GetString());
        var reply = json.RootElement.GetProperty("reply");
        Assert.Equal(550, reply.GetProperty("code").GetInt32());
        Assert.Equal("5.1.1", reply.GetProperty("enhancedCode").GetString());
        Assert.Contains("No such user", reply.GetProperty("text").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_PrimaryDown_AnswersUnknownWithATransientReply()
    {
        var function = Function(_primary.HostPort);
        await _primary.StopAsync();

        var response = await RunAsync(function, "{\"address\":\"bob@example.test\"}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = response.ReadJson();
        Assert.Equal("Unknown", json.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(4, json.RootElement.GetProperty("reply").GetProperty("code").GetInt32() / 100);
    }

    [Theory]
    [InlineData("bob@other.test")]
    [InlineData("bob@sender.test")]
    [InlineData("bob@[127.0.0.1]")]
    [InlineData("bob@127.0.0.1")]
    [InlineData("bob@localhost")]
    public async Task Run_DomainNotConfigured_404AndNobodyIsCalledOut(string address)
    {
        // A primary the caller might like probed listens on loopback too: the function must not
        // go anywhere a request names, only to a configured domain's primary.
        var response = await RunAsync(Function(_primary.HostPort), JsonSerializer.Serialize(new { address }));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        using var json = response.ReadJson();
        Assert.Equal("domain is not configured", json.RootElement.GetProperty("error").GetString());
        Assert.Equal(0, _primary.ConnectionCount);
        Assert.Equal(0, _elsewhere.ConnectionCount);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("{}")]
    [InlineData("{\"address\":\"\"}")]
    [InlineData("{\"address\":\"bob\"}")]
    [InlineData("{\"address\":\"@example.test\"}")]
    [InlineData("{\"address\":\"bob@\"}")]
    [InlineData("{\"address\":42}")]
    public async Task Run_MalformedRequest_400AndNoCallout(string body)
    {
        var response = await RunAsync(Function(_primary.HostPort), body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(0, _primary.ConnectionCount);
    }

    [Fact]
    public async Task Run_AddressLongerThanRfc5321Allows_400AndNoCallout()
    {
        var address = new string('a', VerifyRecipientFunction.MaxAddressLength) + "@example.test";

        var response = await RunAsync(Function(_primary.HostPort), JsonSerializer.Serialize(new { address }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(0, _primary.ConnectionCount);
    }

    [Fact]
    public async Task Run_AddressThatWouldInjectCommands_NotPassedToThePrimary()
    {
        var response = await RunAsync(Function(_primary.HostPort), JsonSerializer.Serialize(new { address = "bob@example.test>\r\nDATA\r\n<x@example.test" }));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = response.ReadJson();
        Assert.Equal("Unknown", json.RootElement.GetProperty("outcome").GetString());
        Assert.DoesNotContain(_primary.Commands, c => c.StartsWith("RCPT", StringComparison.Ordinal) || c == "DATA");
    }

    [Fact]
    public async Task Run_PrimaryThatNeverGreets_UnknownOnceTheCalloutTimeoutPasses()
    {
        using var silent = new SilentServer();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var function = Function(silent.HostPort, time, deliveryTimeout: "00:04:00");

        var run = RunAsync(function, "{\"address\":\"bob@example.test\"}");
        while (silent.ConnectionCount == 0)
        {
            Assert.False(run.IsCompleted, "the callout ended before the primary was even connected");
            await Task.Delay(10);
        }

        Assert.False(run.IsCompleted);
        time.Advance(new FunctionsOptions().CalloutTimeout);
        var response = await run.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = response.ReadJson();
        Assert.Equal("Unknown", json.RootElement.GetProperty("outcome").GetString());
        Assert.Equal("4.4.2", json.RootElement.GetProperty("reply").GetProperty("enhancedCode").GetString());
    }

    private VerifyRecipientFunction Function(string primaryHostPort, TimeProvider? time = null, string deliveryTimeout = "00:00:10")
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["BackupMx:HostName"] = "mx.backup.test",
            ["BackupMx:Domains:0:Name"] = "example.test",
            ["BackupMx:Domains:0:Primary"] = primaryHostPort,
            ["BackupMx:Domains:1:Name"] = "second.test",
            ["BackupMx:Domains:1:Primary"] = _elsewhere.HostPort,
            ["BackupMx:Delivery:Timeout"] = deliveryTimeout,
        }).Build();
        var services = new ServiceCollection().AddLogging();
        if (time is not null)
        {
            services.AddSingleton(time);
        }

        services.AddBackupMxCore(configuration);
        services.AddBackupMxDelivery();
        services.AddBackupMxFunctionOptions(configuration);
        var provider = services.BuildServiceProvider();
        _providers.Add(provider);
        return ActivatorUtilities.CreateInstance<VerifyRecipientFunction>(provider);
    }

    private static async Task<FakeHttpResponseData> RunAsync(VerifyRecipientFunction function, string body)
    {
        var request = new FakeHttpRequestData("POST", "/api/verify-recipient");
        await request.Body.WriteAsync(Encoding.UTF8.GetBytes(body));
        request.Body.Position = 0;
        return Assert.IsType<FakeHttpResponseData>(await function.Run(request, CancellationToken.None));
    }
}
