using BackupMx.Azure;
using BackupMx.Core.Ports;
using BackupMx.Delivery;
using BackupMx.Receiver;
using BackupMx.Receiver.Callouts;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;

namespace BackupMx.Functions.Tests;

/// <summary>Which way the receiver's callouts go, as the host composes them; nothing is contacted.</summary>
public sealed class ReceiverCalloutCompositionTests
{
    private static readonly Dictionary<string, string?> Settings = new()
    {
        ["BackupMx:HostName"] = "mx.backup.test",
        ["BackupMx:Domains:0:Name"] = "example.test",
        ["BackupMx:Azure:BlobServiceUri"] = "https://account.blob.core.windows.net",
        ["BackupMx:Azure:TableServiceUri"] = "https://account.table.core.windows.net",
        ["BackupMx:Azure:ServiceBusNamespace"] = "backupmx.servicebus.windows.net",
        ["BackupMx:Azure:ServiceBusQueue"] = "wakeups",
        ["BackupMx:Smtp:Endpoints:0"] = "127.0.0.1:2525",
    };

    [Fact]
    public void ReceiverHost_WithCalloutUrl_AsksTheFunctionAppBehindTheSharedTable()
    {
        using var host = Build(new()
        {
            ["BackupMx:Receiver:CalloutUrl"] = "https://func-x.azurewebsites.net/api/verify-recipient",
            ["BackupMx:Receiver:CalloutKey"] = "key",
        });

        Assert.IsType<TableCachedRecipientVerifier>(host.Services.GetRequiredService<IRecipientVerifier>());
        Assert.IsType<FunctionRecipientVerifier>(host.Services.GetRequiredService<ReceiverCalloutVerifier>().Inner);
        var options = host.Services.GetRequiredService<IOptions<CalloutOptions>>().Value;
        Assert.Equal(new Uri("https://func-x.azurewebsites.net/api/verify-recipient"), options.CalloutUrl);
        Assert.Equal(TimeSpan.FromSeconds(30), options.CalloutTimeout);
        Assert.True(options.CalloutTimeout > new FunctionsOptions().CalloutTimeout, "the function's own deadline must pass first");
    }

    [Fact]
    public void ReceiverHost_WithoutCalloutUrl_CallsThePrimaryOutItself()
    {
        using var host = Build([]);

        Assert.IsType<TableCachedRecipientVerifier>(host.Services.GetRequiredService<IRecipientVerifier>());
        Assert.IsType<MailKitRecipientVerifier>(host.Services.GetRequiredService<ReceiverCalloutVerifier>().Inner);
    }

    [Theory]
    [InlineData("https://func-x.azurewebsites.net/api/verify-recipient", null, "BackupMx:Receiver:CalloutKey")]
    [InlineData("http://func-x.azurewebsites.net/api/verify-recipient", "key", "BackupMx:Receiver:CalloutUrl")]
    [InlineData("/api/verify-recipient", "key", "BackupMx:Receiver:CalloutUrl")]
    public void ReceiverHost_BadCalloutSettings_StartFailsNamingTheKey(string url, string? key, string named)
    {
        using var host = Build(new()
        {
            ["BackupMx:Receiver:CalloutUrl"] = url,
            ["BackupMx:Receiver:CalloutKey"] = key,
        });

        var error = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IOptions<CalloutOptions>>().Value);
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("https://func-x.azurewebsites.net/api/verify-recipient?code=secret", "Recipient callouts go through the function app at func-x.azurewebsites.net")]
    [InlineData(null, "Recipient callouts connect to the primaries directly (BackupMx:Receiver:CalloutUrl is not set)")]
    public async Task ReceiverHost_WithVerifyRecipients_SaysAtStartWhichWayCalloutsGo(string? url, string expected)
    {
        using var host = Build(
            new()
            {
                ["BackupMx:Domains:0:VerifyRecipients"] = "true",
                ["BackupMx:Receiver:CalloutUrl"] = url,
                ["BackupMx:Receiver:CalloutKey"] = "key",
            },
            fakeLogs: true);

        foreach (var service in host.Services.GetServices<IHostedService>().Where(s => s.GetType().Name == "CalloutRouteReporter"))
        {
            await service.StartAsync(CancellationToken.None);
        }

        var logs = host.Services.GetFakeLogCollector().GetSnapshot();
        var line = Assert.Single(logs, l => l.Id.Id is 7010 or 7011);
        Assert.Equal(expected, line.Message);
        Assert.DoesNotContain(logs, l => l.Message.Contains("secret", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ReceiverHost_WithoutVerifyRecipients_SaysNothingAboutCallouts()
    {
        using var host = Build([], fakeLogs: true);

        foreach (var service in host.Services.GetServices<IHostedService>().Where(s => s.GetType().Name == "CalloutRouteReporter"))
        {
            await service.StartAsync(CancellationToken.None);
        }

        Assert.DoesNotContain(host.Services.GetFakeLogCollector().GetSnapshot(), l => l.Id.Id is 7010 or 7011);
    }

    private static IHost Build(Dictionary<string, string?> extra, bool fakeLogs = false)
    {
        var builder = ReceiverHost.CreateBuilder(["--environment", "Development"]);
        if (fakeLogs)
        {
            builder.Logging.AddFakeLogging();
        }

        builder.Configuration.AddInMemoryCollection(Settings);
        builder.Configuration.AddInMemoryCollection(extra);
        return builder.Build();
    }
}
