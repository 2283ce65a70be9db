using System.Text;
using System.Text.RegularExpressions;
using Azure.Monitor.OpenTelemetry.Exporter;
using BackupMx.Core.Ports;
using BackupMx.Functions.Tests.Fakes;
using BackupMx.Receiver;
using BackupMx.Telemetry;
using BackupMx.Testing;
using BackupMx.Testing.Azurite;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace BackupMx.Functions.Tests;

/// <summary>
/// What docs/operations.md promises, checked on the wire: both Azure-mode services,
/// composed as they are in production with APPLICATIONINSIGHTS_CONNECTION_STRING set, send their
/// spans, log lines and metrics through the Azure Monitor exporter to an ingestion endpoint
/// (here a loopback listener) with the queue id and the documented metric names and tags.
/// The rig is the Azure-mode end-to-end one (receiver on SMTP over Azurite, the function app's
/// composition, an in-memory queue for Service Bus, a fake primary) with one fake clock shared
/// by both services, so the delivery latency and the oldest age are known to the second.
/// </summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed partial class ApplicationInsightsExportTests(AzuriteFixture azurite) : IAsyncLifetime
{
    // A domain no other test uses: the instruments are static, so every provider in the test
    // process sees every test's measurements, and the domain tag tells ours apart.
    private const string Domain = "insights.test";
    private const string Receiver = ReceiverHost.ServiceName;
    private const string FunctionApp = FunctionsServiceCollectionExtensions.ServiceName;
    private const string Body = "From: someone@sender.test\r\nTo: bob@insights.test\r\nSubject: telemetry\r\n\r\nHello.\r\n";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan TimeInSpool = TimeSpan.FromSeconds(42);

    private readonly FakeIngestion _ingestion = new();
    private readonly FakePrimary _primary = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));
    private RecordingWakeUpQueue _queue = null!;
    private IHost _receiver = null!;
    private IHost _functions = null!;
    private int _smtpPort;

    public async Task InitializeAsync()
    {
        // SDK self-telemetry goes to Microsoft's own endpoints (and asks the Azure VM metadata
        // address where it runs): nothing of that may leave this machine.
        Environment.SetEnvironmentVariable("APPLICATIONINSIGHTS_STATSBEAT_DISABLED", "true");
        Environment.SetEnvironmentVariable("APPLICATIONINSIGHTS_SDKSTATS_DISABLED", "true");

        await _primary.StartAsync();
        _queue = new RecordingWakeUpQueue(_time);
        _smtpPort = FreePort.Next();
        var settings = AzureModeSettings.Create(azurite, Domain, _primary.HostPort, _smtpPort);
        settings[TelemetryServiceCollectionExtensions.ConnectionStringKey] = _ingestion.ConnectionString;

        var receiverBuilder = ReceiverHost.CreateBuilder(settings.Select(s => $"--{s.Key}={s.Value}").ToArray());
        Substitute(receiverBuilder.Services);
        _receiver = receiverBuilder.Build();
        await _receiver.StartAsync();

        // As the function app's Program.cs composes it, less the Functions worker itself (there
        // is no Functions host here): a generic host, whose start attaches the exporter's trace
        // and log processors, exactly as the worker's start does in Azure.
        _functions = new HostBuilder()
            .ConfigureAppConfiguration(c => c.AddInMemoryCollection(settings))
            .ConfigureServices((context, services) =>
            {
                services.AddBackupMxFunctions(context.Configuration);
                Substitute(services);
                services.AddSingleton<ForwardFunction>();
                services.AddSingleton<ExpireFunction>();
                services.AddSingleton<ProbePrimariesFunction>();
            })
            .Build();
        await _functions.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _receiver.StopAsync();
        _receiver.Dispose();
        await _functions.StopAsync();
        _functions.Dispose();
        await _primary.DisposeAsync();
        await _ingestion.DisposeAsync();
    }

    [Fact]
    public async Task Receiver_MessageAccepted_SendsIntakeSpanLogLineAndAcceptedCountWithTheQueueId()
    {
        var queueId = await SendAsync("alice@sender.test", "bob@" + Domain);

        Flush(_receiver.Services);
        var items = await _ingestion.WaitForAsync(
            all => Span(all, Receiver, "Intake", queueId) is not null
                && Log(all, Receiver, "Accepted", queueId) is not null
                && Sum(all, Receiver, Core.Telemetry.MessagesAccepted.Name) > 0,
            Patience);

        var span = Span(items, Receiver, "Intake", queueId);
        Assert.True(span is not null, Describe("an Intake span with the queue id", items));
        Assert.Equal(Domain, span.Property(Core.Telemetry.DomainTag));
        Assert.True(Log(items, Receiver, "Accepted", queueId) is not null, Describe("the Accepted log line with the queue id", items));
        Assert.Equal(1, Sum(items, Receiver, Core.Telemetry.MessagesAccepted.Name));
        Assert.All(_ingestion.Requests, r => Assert.StartsWith($"POST {FakeIngestion.TrackPath}", r, StringComparison.Ordinal));
    }

    [Fact]
    public async Task FunctionApp_ProbeSweepAndForward_SendsForwardSpanOutcomeCountsLatencyAndSpoolGauges()
    {
        // One recipient of each outcome. From the null sender, so the bounce queues no DSN.
        _primary.Reply("later@" + Domain, 451, "4.2.0 mailbox busy");
        _primary.Reply("gone@" + Domain, 550, "5.1.1 no such user");
        var queueId = await SendAsync("", "bob@" + Domain, "later@" + Domain, "gone@" + Domain);
        _time.Advance(TimeInSpool);

        await _functions.Services.GetRequiredService<ProbePrimariesFunction>().ProbeAsync(CancellationToken.None);
        await _functions.Services.GetRequiredService<ExpireFunction>().SweepAsync(CancellationToken.None);
        var run = await _functions.Services.GetRequiredService<ForwardFunction>().ForwardDueAsync(CancellationToken.None);
        Assert.True(run.Completed >= 1, run.ToString());
        Assert.Single(_primary.Messages);

        Flush(_functions.Services);
        string[] metrics =
        [
            Core.Telemetry.RecipientsDelivered.Name, Core.Telemetry.RecipientsDeferred.Name, Core.Telemetry.RecipientsBounced.Name,
            Core.Telemetry.DeliveryLatency.Name, SpoolGauges.SpoolDepthName, SpoolGauges.OldestAgeName, SpoolGauges.PrimaryReachableName,
        ];
        var items = await _ingestion.WaitForAsync(
            all => Span(all, FunctionApp, "Forward", queueId) is not null
                && Log(all, FunctionApp, "Delivered", queueId) is not null
                && metrics.All(m => Points(all, FunctionApp, m).Any()),
            Patience);

        var span = Span(items, FunctionApp, "Forward", queueId);
        Assert.True(span is not null, Describe("a Forward span with the queue id", items));
        Assert.Equal(Domain, span.Property(Core.Telemetry.DomainTag));
        Assert.True(Log(items, FunctionApp, "Delivered", queueId) is not null, Describe("the Delivered log line with the queue id", items));
        Assert.All(metrics, m => Assert.True(Points(items, FunctionApp, m).Any(), Describe(m, items)));

        Assert.Equal(1, Sum(items, FunctionApp, Core.Telemetry.RecipientsDelivered.Name));
        Assert.Equal(1, Sum(items, FunctionApp, Core.Telemetry.RecipientsDeferred.Name));
        Assert.Equal(1, Sum(items, FunctionApp, Core.Telemetry.RecipientsBounced.Name));
        var latency = Assert.Single(Points(items, FunctionApp, Core.Telemetry.DeliveryLatency.Name));
        Assert.Equal((TimeInSpool.TotalSeconds, 1), (latency.Value, latency.Count));

        // Gauges are exported at every collection: each export tells the value of that moment.
        Assert.All(Points(items, FunctionApp, SpoolGauges.SpoolDepthName), p => Assert.Equal(1, p.Value));
        Assert.All(Points(items, FunctionApp, SpoolGauges.OldestAgeName), p => Assert.Equal(TimeInSpool.TotalSeconds, p.Value));
        Assert.All(Points(items, FunctionApp, SpoolGauges.PrimaryReachableName), p => Assert.Equal(1, p.Value));
    }

    [Fact]
    public async Task Backlog_ForwardedAtOnce_EveryMessageHasItsSpansAndLogLines()
    {
        // What a backup MX sees when a primary comes back: a backlog forwarded all at once, many
        // spans within milliseconds. No message's story may be sampled away.
        var queueIds = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            queueIds.Add(await SendAsync("alice@sender.test", "bob@" + Domain));
        }

        var run = await _functions.Services.GetRequiredService<ForwardFunction>().ForwardDueAsync(CancellationToken.None);
        Assert.Equal(queueIds.Count, run.Completed);

        Flush(_receiver.Services);
        Flush(_functions.Services);
        var items = await _ingestion.WaitForAsync(
            all => queueIds.All(id => Span(all, Receiver, "Intake", id) is not null && Log(all, Receiver, "Accepted", id) is not null
                && Span(all, FunctionApp, "Forward", id) is not null && Log(all, FunctionApp, "Delivered", id) is not null),
            Patience);

        Assert.All(queueIds, id =>
        {
            Assert.True(Span(items, Receiver, "Intake", id) is not null, $"no Intake span for {id}");
            Assert.True(Log(items, Receiver, "Accepted", id) is not null, $"no Accepted line for {id}");
            Assert.True(Span(items, FunctionApp, "Forward", id) is not null, $"no Forward span for {id}");
            Assert.True(Log(items, FunctionApp, "Delivered", id) is not null, $"no Delivered line for {id}");
        });
    }

    /// <summary>Each provider exports what it holds now, as at shutdown; the periodic metric export would take a minute.</summary>
    private static void Flush(IServiceProvider services)
    {
        Assert.True(services.GetRequiredService<TracerProvider>().ForceFlush(30_000), "traces not exported");
        Assert.True(services.GetRequiredService<LoggerProvider>().ForceFlush(30_000), "logs not exported");
        Assert.True(services.GetRequiredService<MeterProvider>().ForceFlush(30_000), "metrics not exported");
    }

    private static IngestedItem? Span(IEnumerable<IngestedItem> items, string role, string name, string queueId) =>
        items.FirstOrDefault(i => i.Role == role && i.BaseType == "RemoteDependencyData"
            && i.BaseData.GetProperty("name").GetString() == name
            && i.Property(Core.Telemetry.QueueIdTag) == queueId);

    private static IngestedItem? Log(IEnumerable<IngestedItem> items, string role, string firstWord, string queueId) =>
        items.FirstOrDefault(i => i.Role == role && i.BaseType == "MessageData"
            && i.BaseData.GetProperty("message").GetString()!.StartsWith(firstWord + " " + queueId, StringComparison.Ordinal)
            && i.Property("QueueId") == queueId);

    /// <summary>The data points of one metric sent by one service for <see cref="Domain"/>.</summary>
    private static List<(double Value, int Count)> Points(IEnumerable<IngestedItem> items, string role, string metric) =>
        items.Where(i => i.Role == role && i.Property(Core.Telemetry.DomainMetricTag) == Domain)
            .SelectMany(i => i.Metrics)
            .Where(m => m.Name == metric)
            .Select(m => (m.Value, m.Count))
            .ToList();

    /// <summary>A counter's total over every export (the exporter sends deltas).</summary>
    private static double Sum(IEnumerable<IngestedItem> items, string role, string metric) =>
        Points(items, role, metric).Sum(p => p.Value);

    private static string Describe(string wanted, IReadOnlyList<IngestedItem> items) =>
        $"missing: {wanted}; the {items.Count} items received:\n" + string.Join('\n', items);

    private void Substitute(IServiceCollection services)
    {
        services.Replace(ServiceDescriptor.Singleton<TimeProvider>(_time));
        services.Replace(ServiceDescriptor.Singleton<IWakeUpQueue>(_queue));
        services.Replace(ServiceDescriptor.Singleton<IWakeUpSource>(_queue));

        // Live metrics would poll Microsoft's endpoint, and offline storage would keep a failed
        // batch on disk for a retry after the test; the export path itself stays as configured.
        services.PostConfigure<AzureMonitorExporterOptions>(o =>
        {
            o.EnableLiveMetrics = false;
            o.DisableOfflineStorage = true;
        });
    }

    /// <summary>Sends one message over SMTP and returns the queue id from the 250 reply.</summary>
    private async Task<string> SendAsync(string sender, params string[] recipients)
    {
        var result = await SmtpSender.SendAsync(_smtpPort, sender, recipients, Encoding.ASCII.GetBytes(Body));
        Assert.True(result.Accepted, result.ToString());
        return QueuedAs().Match(result.DataReply!).Groups["id"].Value;
    }

    [GeneratedRegex(@"queued as (?<id>\S+)")]
    private static partial Regex QueuedAs();
}
