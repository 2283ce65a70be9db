using System.Net;
using System.Text;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using Azure.Messaging.ServiceBus;
using Azure.Storage.Blobs;
using BackupMx.Azure;
using BackupMx.Azure.Tests;
using BackupMx.Core.Intake;
using BackupMx.Core.Ports;
using BackupMx.Functions.Tests.Fakes;
using BackupMx.Testing;
using BackupMx.Testing.Azurite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace BackupMx.Functions.Tests;

/// <summary>
/// Billable storage and Service Bus operations per message in Azure mode: every HTTP request
/// the Blob and Table clients send to Azurite (a pipeline policy, per try, so retries count) and
/// every call on the Service Bus sender and receiver. Each step is measured on its own, and the
/// per-run cost of a timer (one empty receive, one spool page) is measured on an empty run and
/// taken off, so the figures are per message. BENCHMARKS.md and docs/deploy-azure.md quote them.
/// </summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class AzureOperationCountTests(AzuriteFixture azurite, ITestOutputHelper output) : IAsyncLifetime
{
    private const string Domain = "example.test";
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly FakePrimary _primary = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));
    private readonly FakeSender _sender = new();
    private readonly FakeReceiver _receiver = new();
    private readonly HashSet<long> _released = [];
    private readonly CountingPolicy _storage = new();
    private ServiceProvider _services = null!;

    public async Task InitializeAsync()
    {
        await _primary.StartAsync();
        var settings = AzureModeSettings.Create(azurite, Domain, _primary.HostPort);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();

        // Registered before the app's own (which uses TryAdd), so these clients, with the counter in their pipelines, win.
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(_time);
        services.AddSingleton(new ServiceBusWakeUpQueue(_sender, _receiver));
        services.AddSingleton(new BlobServiceClient(azurite.ConnectionString, WithCounter(new BlobClientOptions())));
        services.AddSingleton(new TableServiceClient(azurite.ConnectionString, WithCounter(new TableClientOptions())));
        services.AddBackupMxFunctions(configuration);
        services.AddSingleton<ForwardFunction>();
        services.AddSingleton<ExpireFunction>();
        services.AddSingleton<QueueAdminFunctions>();
        _services = services.BuildServiceProvider();
        await _services.GetRequiredService<AzureStorageInitializer>().EnsureCreatedAsync(None);
    }

    public async Task DisposeAsync()
    {
        await _services.DisposeAsync();
        await _primary.DisposeAsync();
    }

    [Fact]
    public async Task Operations_AcceptedAndDeliveredAtOnce_AreCounted()
    {
        var emptyRun = await MeasureAsync(() => ForwardDueAsync());
        var accepted = await MeasureAsync(AcceptAsync);
        var delivered = await MeasureAsync(() => ForwardDueAsync());

        Report("accepted (primary up)", accepted);
        Report("Forward run with nothing due", emptyRun);
        Report("delivered at the first attempt", delivered - EmptyRun);
        Assert.Single(_primary.Messages);

        // The empty run: one receive that finds nothing; no storage.
        Assert.Equal(EmptyRun, emptyRun);

        // The body, the record, the primary's state read once; one wake-up, due now, whose token is not stored.
        AssertOps(new Ops(BlobWrites: 1, TableReads: 1, TableWrites: 1, Schedules: 1), accepted, receives: 0);

        // Record and primary state read, claim, primary state reported, record and body deleted.
        AssertOps(Delivered, delivered - EmptyRun);
    }

    [Fact]
    public async Task Operations_DeferredThenDeliveredOnRetry_AreCounted()
    {
        await AcceptAsync();
        await _primary.StopAsync();
        var deferred = await MeasureAsync(() => ForwardDueAsync());
        await _primary.StartAsync();
        _time.Advance(TimeSpan.FromHours(1));
        var retried = await MeasureAsync(() => ForwardDueAsync());

        Report("attempt deferred (primary down)", deferred - EmptyRun);
        Report("delivered on a retry", retried - EmptyRun);
        Assert.Single(_primary.Messages);

        // Claim, outcome, primary state, and the retry's token: a future wake-up a flush must be able to cancel.
        AssertOps(new Ops(TableReads: 3, TableWrites: 4, Schedules: 1, Completes: 1), deferred - EmptyRun);
        AssertOps(Delivered, retried - EmptyRun);
    }

    [Fact]
    public async Task Operations_FlushedAfterADeferral_AreCounted()
    {
        await AcceptAsync();
        await _primary.StopAsync();
        await ForwardDueAsync();
        await _primary.StartAsync();
        _time.Advance(TimeSpan.FromSeconds(30));

        var flushed = await MeasureAsync(async () =>
        {
            var response = await _services.GetRequiredService<QueueAdminFunctions>().Flush(new FakeHttpRequestData("POST", $"/api/queue/{Domain}/flush"), Domain, None);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        });
        var delivered = await MeasureAsync(() => ForwardDueAsync());

        Report("flush of one message", flushed);
        Report("delivered after the flush", delivered - EmptyRun);
        Assert.Single(_primary.Messages);

        // The domain's records listed, the record made due, the old wake-up cancelled and a new one, due now, scheduled.
        AssertOps(new Ops(TableReads: 1, TableWrites: 1, Schedules: 1, Cancels: 1), flushed, receives: 0);
        AssertOps(Delivered, delivered - EmptyRun);
    }

    [Fact]
    public async Task Operations_ExpiredAfterRetention_AreCounted()
    {
        await AcceptAsync();
        await _primary.StopAsync();
        await ForwardDueAsync();
        var expire = _services.GetRequiredService<ExpireFunction>();
        var emptySweep = await MeasureAsync(() => expire.SweepAsync(None));
        _time.Advance(TimeSpan.FromDays(6));
        var expired = await MeasureAsync(async () =>
        {
            await expire.SweepAsync(None);
            await ForwardDueAsync();
        });

        Report("Expire run, nothing expired", emptySweep);
        Report("expired (bounce queued and the record removed)", expired - emptySweep - EmptyRun);
        Assert.Empty(_primary.Messages);
    }

    /// <summary>A Forward run that finds nothing: one receive.</summary>
    private static readonly Ops EmptyRun = new(Receives: 1);

    /// <summary>One delivered message, beyond the run's own receive.</summary>
    private static readonly Ops Delivered = new(BlobReads: 1, BlobDeletes: 1, TableReads: 3, TableWrites: 2, TableDeletes: 1, Completes: 1);

    /// <summary>
    /// Compares everything but receives, then the receives: a run receives once more while a forward
    /// is still in flight, or not, depending on which finishes first, so one message costs one or two.
    /// </summary>
    private static void AssertOps(Ops expected, Ops actual, int? receives = null)
    {
        Assert.Equal(expected, actual with { Receives = 0 });
        if (receives is { } exact)
        {
            Assert.Equal(exact, actual.Receives);
        }
        else
        {
            Assert.InRange(actual.Receives, 1, 2);
        }
    }

    private async Task<Ops> MeasureAsync(Func<Task> step)
    {
        var before = Snapshot();
        await step();
        return Snapshot() - before;
    }

    private Ops Snapshot()
    {
        var s = _storage.Counts();
        return new Ops(
            BlobReads: s.GetValueOrDefault("blob GET") + s.GetValueOrDefault("blob HEAD"),
            BlobWrites: s.GetValueOrDefault("blob PUT") + s.GetValueOrDefault("blob POST"),
            BlobDeletes: s.GetValueOrDefault("blob DELETE"),
            TableReads: s.GetValueOrDefault("table GET"),
            TableWrites: s.GetValueOrDefault("table POST") + s.GetValueOrDefault("table PUT") + s.GetValueOrDefault("table PATCH") + s.GetValueOrDefault("table MERGE"),
            TableDeletes: s.GetValueOrDefault("table DELETE"),
            Schedules: _sender.Scheduled.Count,
            Cancels: _sender.Cancelled.Count,
            Receives: _receiver.Receives.Count,
            Completes: _receiver.Completed.Count + _receiver.Abandoned.Count + _receiver.DeadLettered.Count);
    }

    private void Report(string step, Ops ops) => output.WriteLine($"{step,-50} {ops}");

    private async Task AcceptAsync()
    {
        var result = await _services.GetRequiredService<IntakeService>().AcceptAsync(
            new IncomingMessage
            {
                Sender = "alice@sender.test",
                Recipients = [new IncomingRecipient("bob@example.test")],
                ClientAddress = "192.0.2.10",
                HeloName = "mail.sender.test",
                Content = MessageContent.FromBytes(Encoding.ASCII.GetBytes("From: alice@sender.test\r\nSubject: hi\r\n\r\nHello.\r\n")),
            },
            None);
        Assert.IsType<IntakeResult.Accepted>(result);
    }

    /// <summary>One Forward run, after doing what Service Bus does: each due, uncancelled scheduled message becomes receivable once.</summary>
    private async Task ForwardDueAsync()
    {
        foreach (var (message, at, sequenceNumber) in _sender.Scheduled)
        {
            if (at <= _time.GetUtcNow() && !_sender.Cancelled.Contains(sequenceNumber) && _released.Add(sequenceNumber))
            {
                _receiver.Available.Enqueue(ServiceBusModelFactory.ServiceBusReceivedMessage(
                    body: message.Body, messageId: message.MessageId, sequenceNumber: sequenceNumber, properties: message.ApplicationProperties));
            }
        }

        await _services.GetRequiredService<ForwardFunction>().ForwardDueAsync(None);
    }

    private T WithCounter<T>(T options)
        where T : ClientOptions
    {
        options.AddPolicy(_storage, HttpPipelinePosition.PerRetry);
        return options;
    }

    /// <summary>Billable operations, by service and kind.</summary>
    private readonly record struct Ops(
        int BlobReads = 0,
        int BlobWrites = 0,
        int BlobDeletes = 0,
        int TableReads = 0,
        int TableWrites = 0,
        int TableDeletes = 0,
        int Schedules = 0,
        int Cancels = 0,
        int Receives = 0,
        int Completes = 0)
    {
        public static Ops operator -(Ops a, Ops b) => new(
            a.BlobReads - b.BlobReads,
            a.BlobWrites - b.BlobWrites,
            a.BlobDeletes - b.BlobDeletes,
            a.TableReads - b.TableReads,
            a.TableWrites - b.TableWrites,
            a.TableDeletes - b.TableDeletes,
            a.Schedules - b.Schedules,
            a.Cancels - b.Cancels,
            a.Receives - b.Receives,
            a.Completes - b.Completes);

        public override string ToString() =>
            $"blob r/w/d {BlobReads}/{BlobWrites}/{BlobDeletes}, table r/w/d {TableReads}/{TableWrites}/{TableDeletes}, " +
            $"service bus schedule {Schedules}, cancel {Cancels}, receive {Receives}, settle {Completes}";
    }

    /// <summary>Counts every HTTP request (each try) by service and method; Azurite serves blobs on one port and tables on another.</summary>
    private sealed class CountingPolicy : HttpPipelineSynchronousPolicy
    {
        private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);

        public Dictionary<string, int> Counts()
        {
            lock (_counts)
            {
                return new Dictionary<string, int>(_counts, StringComparer.Ordinal);
            }
        }

        public override void OnSendingRequest(HttpMessage message)
        {
            var uri = message.Request.Uri.ToUri();
            var service = uri.AbsolutePath.Contains("/Tables", StringComparison.Ordinal) || uri.Port == 10002 || uri.Host.Contains(".table.", StringComparison.Ordinal)
                || IsTableRequest(message) ? "table" : "blob";
            var key = $"{service} {message.Request.Method.Method}";
            lock (_counts)
            {
                _counts[key] = _counts.GetValueOrDefault(key) + 1;
            }
        }

        private static bool IsTableRequest(HttpMessage message) =>
            message.Request.Headers.TryGetValue("DataServiceVersion", out _) || (message.Request.Headers.TryGetValue("Accept", out var accept) && accept.Contains("odata", StringComparison.OrdinalIgnoreCase));
    }
}
