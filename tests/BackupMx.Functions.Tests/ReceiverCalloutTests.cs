using System.Text;
using BackupMx.Core.Hosting;
using BackupMx.Delivery;
using BackupMx.Functions.Tests.Fakes;
using BackupMx.Receiver;
using BackupMx.Testing;
using BackupMx.Testing.Azurite;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using BackupMx.Core.Ports;

namespace BackupMx.Functions.Tests;

/// <summary>
/// VerifyRecipients on the Azure-mode receiver as it is composed: RCPT is answered after a
/// callout to the primary (over loopback SMTP), and two receiver replicas share the answers
/// through the verifications table in Azurite, so the second asks the primary nothing. With
/// BackupMx:Receiver:CalloutUrl (as the Azure template sets it) the receiver asks the function
/// app over HTTP instead, and the function calls the primary out.
/// </summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class ReceiverCalloutTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private static readonly byte[] Body = Encoding.ASCII.GetBytes("From: alice@sender.test\r\nSubject: callout\r\n\r\nHello\r\n");

    private readonly FakePrimary _primary = new();
    private readonly List<IHost> _replicas = [];
    private readonly List<IDisposable> _disposables = [];
    private Dictionary<string, string?> _settings = null!;

    public async Task InitializeAsync()
    {
        await _primary.StartAsync();
        _primary.Reply("nobody@example.test", 550, "5.1.1 No such user");
        _settings = AzureModeSettings.Create(azurite, "example.test", _primary.HostPort);
        _settings["BackupMx:Domains:0:VerifyRecipients"] = "true";
        _settings["BackupMx:Azure:VerificationsTable"] = AzuriteFixture.UniqueName("verifications");
    }

    public async Task DisposeAsync()
    {
        foreach (var replica in _replicas)
        {
            await replica.StopAsync();
            replica.Dispose();
        }

        foreach (var disposable in _disposables)
        {
            disposable.Dispose();
        }

        await _primary.DisposeAsync();
    }

    [Fact]
    public async Task Rcpt_WithVerifyRecipients_CallsThePrimaryOutAndAnswersByItsReply()
    {
        var port = await StartReplicaAsync();

        var result = await SmtpSender.SendAsync(port, "alice@sender.test", ["bob@example.test", "nobody@example.test"], Body);

        Assert.StartsWith("250", result.RecipientReplies[0], StringComparison.Ordinal);
        Assert.StartsWith("550 5.1.1", result.RecipientReplies[1], StringComparison.Ordinal);
        Assert.True(result.Accepted, result.DataReply);
        Assert.Contains("RCPT TO:<bob@example.test>", _primary.Commands);
        Assert.Contains("RCPT TO:<nobody@example.test>", _primary.Commands);

        // A callout, not a delivery: the primary got no DATA.
        Assert.Empty(_primary.Messages);
    }

    [Fact]
    public async Task Rcpt_OnASecondReplica_AnsweredFromTheSharedTableWithoutACallout()
    {
        var first = await StartReplicaAsync();
        var second = await StartReplicaAsync();
        await SmtpSender.SendAsync(first, "alice@sender.test", ["bob@example.test", "nobody@example.test"], Body);
        var connections = _primary.ConnectionCount;
        Assert.True(connections > 0);

        var result = await SmtpSender.SendAsync(second, "alice@sender.test", ["bob@example.test", "nobody@example.test"], Body);

        Assert.StartsWith("250", result.RecipientReplies[0], StringComparison.Ordinal);
        Assert.StartsWith("550 5.1.1", result.RecipientReplies[1], StringComparison.Ordinal);
        Assert.Equal(connections, _primary.ConnectionCount);
    }

    [Fact]
    public async Task Rcpt_WithCalloutUrl_TheFunctionCallsThePrimaryOutAndTheReceiverNever()
    {
        await using var functionApp = new LocalHttpServer();
        ServeVerifyRecipient(functionApp);
        var port = await StartReplicaAsync(new()
        {
            ["BackupMx:Receiver:CalloutUrl"] = functionApp.Url.ToString(),
            ["BackupMx:Receiver:CalloutKey"] = "test-function-key",
        });

        var result = await SmtpSender.SendAsync(port, "alice@sender.test", ["bob@example.test", "nobody@example.test"], Body);

        Assert.StartsWith("250", result.RecipientReplies[0], StringComparison.Ordinal);
        Assert.StartsWith("550 5.1.1", result.RecipientReplies[1], StringComparison.Ordinal);
        Assert.True(result.Accepted, result.DataReply);
        Assert.Equal(2, functionApp.RequestCount);
        Assert.All(functionApp.Requests, r => Assert.Equal("test-function-key", r.FunctionKey));
        Assert.Contains("RCPT TO:<bob@example.test>", _primary.Commands);
        Assert.Contains("RCPT TO:<nobody@example.test>", _primary.Commands);

        // Every callout connection came from the function, none from the receiver.
        Assert.Equal(functionApp.RequestCount, _primary.ConnectionCount);
        Assert.Empty(_primary.Messages);
    }

    [Fact]
    public async Task Rcpt_WithCalloutUrl_FunctionFailing_DefersTheRecipientAsForAnUnreachablePrimary()
    {
        await using var functionApp = new LocalHttpServer();
        functionApp.Answer(System.Net.HttpStatusCode.InternalServerError, string.Empty);
        var port = await StartReplicaAsync(new()
        {
            ["BackupMx:Receiver:CalloutUrl"] = functionApp.Url.ToString(),
            ["BackupMx:Receiver:CalloutKey"] = "test-function-key",
        });

        var result = await SmtpSender.SendAsync(port, "alice@sender.test", ["bob@example.test"], Body);

        Assert.StartsWith("450 4.1.1", result.RecipientReplies[0], StringComparison.Ordinal);
        Assert.Equal(1, functionApp.RequestCount);
        Assert.Equal(0, _primary.ConnectionCount);
    }

    /// <summary>Answers the listener's requests with the VerifyRecipient function, composed as in the function app.</summary>
    private void ServeVerifyRecipient(LocalHttpServer server)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(_settings).Build();
        var services = new ServiceCollection().AddLogging();
        services.AddBackupMxCore(configuration);
        services.AddBackupMxDelivery();
        services.AddBackupMxFunctionOptions(configuration);
        var provider = services.BuildServiceProvider();
        _disposables.Add(provider);
        var function = ActivatorUtilities.CreateInstance<VerifyRecipientFunction>(provider);
        server.Handler = async (received, cancellationToken) =>
        {
            var request = new FakeHttpRequestData(received.Method, received.Path);
            await request.Body.WriteAsync(Encoding.UTF8.GetBytes(received.Body), cancellationToken);
            request.Body.Position = 0;
            var response = (FakeHttpResponseData)await function.Run(request, cancellationToken);
            response.Body.Position = 0;
            return (response.StatusCode, await new StreamReader(response.Body).ReadToEndAsync(cancellationToken));
        };
    }

    private async Task<int> StartReplicaAsync(Dictionary<string, string?>? extra = null)
    {
        var port = FreePort.Next();
        var settings = new Dictionary<string, string?>(_settings) { ["BackupMx:Smtp:Endpoints:0"] = $"127.0.0.1:{port}" };
        foreach (var (key, value) in extra ?? [])
        {
            settings[key] = value;
        }

        var builder = ReceiverHost.CreateBuilder(settings.Select(s => $"--{s.Key}={s.Value}").ToArray());

        // No Service Bus emulator: wake-ups go to memory, as in the other Azure-mode tests.
        var queue = new RecordingWakeUpQueue(TimeProvider.System);
        builder.Services.Replace(ServiceDescriptor.Singleton<IWakeUpQueue>(queue));
        builder.Services.Replace(ServiceDescriptor.Singleton<IWakeUpSource>(queue));
        var host = builder.Build();
        _replicas.Add(host);
        await host.StartAsync();
        return port;
    }
}
