using System.Text;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using Azure.Messaging.ServiceBus;
using Azure.Storage.Blobs;
using BackupMx.Azure;
using BackupMx.Azure.Tests;
using BackupMx.Core.Intake;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Azurite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace BackupMx.Functions.Tests;

/// <summary>
/// Azure mode while Blob and Table storage answer 503 ServerBusy to every seventh request and
/// Service Bus refuses every third schedule as busy, then recovers: the function app's
/// composition on Azurite, the real Service Bus wake-up queue over the recording fakes (an
/// abandoned wake-up comes back, as in Service Bus), a fake clock. Every message accepted is
/// delivered, none refused is, duplicates stay bounded by the faults, and the spool ends empty.
/// </summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class AzureStorageFaultTests(AzuriteFixture azurite, ITestOutputHelper output) : IAsyncLifetime
{
    private const string Domain = "example.test";
    private const int Messages = 40;
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly FakePrimary _primary = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));
    private readonly FakeSender _sender = new();
    private readonly FakeReceiver _receiver = new();
    private readonly HashSet<long> _released = [];
    private readonly FaultPolicy _faults = new(everyNth: 4);
    private int _abandonedSeen;
    private int _schedules;
    private int _scheduleFaults;
    private ServiceProvider _services = null!;

    public async Task InitializeAsync()
    {
        await _primary.StartAsync();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(AzureModeSettings.Create(azurite, Domain, _primary.HostPort)).Build();

        _sender.ScheduleFailure = _ =>
        {
            if (!_faults.Storm || ++_schedules % 3 != 0)
            {
                return null;
            }

            _scheduleFaults++;
            return new ServiceBusException("The server is busy (injected).", ServiceBusFailureReason.ServiceBusy);
        };

        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(_time);
        services.AddSingleton(new ServiceBusWakeUpQueue(_sender, _receiver));
        services.AddSingleton(new BlobServiceClient(azurite.ConnectionString, WithFaults(new BlobClientOptions())));
        services.AddSingleton(new TableServiceClient(azurite.ConnectionString, WithFaults(new TableClientOptions())));
        services.AddBackupMxFunctions(configuration);
        services.AddSingleton<ForwardFunction>();
        services.AddSingleton<ExpireFunction>();
        _services = services.BuildServiceProvider();
        await _services.GetRequiredService<AzureStorageInitializer>().EnsureCreatedAsync(None);
    }

    public async Task DisposeAsync()
    {
        await _services.DisposeAsync();
        await _primary.DisposeAsync();
    }

    [Fact]
    public async Task Storage503AndServiceBusBusy_ForAWhile_EveryAcceptedMessageIsDeliveredAndNoRefusedOne()
    {
        var intake = _services.GetRequiredService<IntakeService>();
        var expire = _services.GetRequiredService<ExpireFunction>();
        var accepted = new List<string>();
        var refused = new List<string>();

        // The storm: intake, forwarding and sweeps all meet failures.
        _faults.Storm = true;
        for (var i = 0; i < Messages; i++)
        {
            var subject = $"fault-{i:D3}";
            var result = await intake.AcceptAsync(Message(subject), None);
            (result is IntakeResult.Accepted ? accepted : refused).Add(subject);
            if (i % 5 == 4)
            {
                await RunTimersAsync(expire);
            }
        }

        for (var round = 0; round < 5; round++)
        {
            await RunTimersAsync(expire);
        }

        // Recovered: leases run out, the sweep re-schedules what lost its wake-up, Forward drains.
        _faults.Storm = false;
        for (var round = 0; round < 30 && await SpoolCountAsync() > 0; round++)
        {
            await RunTimersAsync(expire);
        }

        var deliveries = _primary.Messages
            .Select(m => Encoding.ASCII.GetString(m.Data))
            .Select(text => text[(text.IndexOf("Subject: ", StringComparison.Ordinal) + "Subject: ".Length)..].Split("\r\n")[0])
            .GroupBy(s => s)
            .ToDictionary(g => g.Key, g => g.Count());
        var duplicates = deliveries.Values.Sum(n => n - 1);
        output.WriteLine($"accepted {accepted.Count}, refused {refused.Count}, storage faults {_faults.Injected}, schedule faults {_scheduleFaults}, deliveries {deliveries.Values.Sum()}, duplicates {duplicates}");

        Assert.True(_faults.Injected > 20, $"only {_faults.Injected} storage faults were injected");
        Assert.NotEmpty(accepted);
        Assert.NotEmpty(refused);
        Assert.All(accepted, s => Assert.True(deliveries.ContainsKey(s), s + " was answered 250 and never delivered"));
        Assert.All(refused, s => Assert.False(deliveries.ContainsKey(s), s + " was refused and still delivered"));

        // A duplicate needs a fault between the primary's 250 and the record's release.
        Assert.InRange(duplicates, 0, _faults.Injected);
        Assert.Equal(0, await SpoolCountAsync());
    }

    [Fact]
    public async Task Forward_StoppedAfterThePrimarys250BeforeTheRelease_DeliversAgainOnceAndFinishes()
    {
        var result = await _services.GetRequiredService<IntakeService>().AcceptAsync(Message("release-lost"), None);
        Assert.IsType<IntakeResult.Accepted>(result);

        // The first write after the primary took the message (the record's removal) fails: the
        // attempt's outcome is lost with it, as when the Forward instance dies right there.
        _faults.FailOnce = message => message.Request.Method == RequestMethod.Delete && _primary.Messages.Count == 1;
        var expire = _services.GetRequiredService<ExpireFunction>();
        for (var round = 0; round < 10 && (round == 0 || await SpoolCountAsync() > 0); round++)
        {
            await RunTimersAsync(expire);
        }

        output.WriteLine($"faults {_faults.Injected}, deliveries {_primary.Messages.Count}");
        Assert.Equal(1, _faults.Injected);
        Assert.Equal(2, _primary.Messages.Count);
        Assert.All(_primary.Messages, m => Assert.Contains("Subject: release-lost", Encoding.ASCII.GetString(m.Data), StringComparison.Ordinal));
        Assert.Equal(0, await SpoolCountAsync());
    }

    private async Task RunTimersAsync(ExpireFunction expire)
    {
        _time.Advance(TimeSpan.FromMinutes(10));
        await Tolerate(() => expire.SweepAsync(None));
        await Tolerate(ForwardDueAsync);
    }

    /// <summary>A timer run that fails is logged by the host and the next run goes on; so here.</summary>
    private static async Task Tolerate(Func<Task> run)
    {
        try
        {
            await run();
        }
        catch (Exception ex) when (ex is RequestFailedException or ServiceBusException or AggregateException or InvalidOperationException)
        {
        }
    }

    /// <summary>What Service Bus does between runs: due scheduled messages and abandoned ones become receivable.</summary>
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

        while (_abandonedSeen < _receiver.Abandoned.Count)
        {
            _receiver.Available.Enqueue(_receiver.Abandoned[_abandonedSeen++]);
        }

        await _services.GetRequiredService<ForwardFunction>().ForwardDueAsync(None);
    }

    private async Task<int> SpoolCountAsync()
    {
        var count = 0;
        await foreach (var _ in _services.GetRequiredService<ISpoolStore>().ListAllAsync(None))
        {
            count++;
        }

        return count;
    }

    private static IncomingMessage Message(string subject) => new()
    {
        Sender = "alice@sender.test",
        Recipients = [new IncomingRecipient("bob@example.test")],
        ClientAddress = "192.0.2.10",
        HeloName = "mail.sender.test",
        Content = MessageContent.FromBytes(Encoding.ASCII.GetBytes($"From: alice@sender.test\r\nSubject: {subject}\r\n\r\nHello.\r\n")),
    };

    private T WithFaults<T>(T options)
        where T : ClientOptions
    {
        // Each injected failure reaches the code once, instead of being absorbed by the SDK's retries.
        options.Retry.MaxRetries = 0;
        options.AddPolicy(_faults, HttpPipelinePosition.PerRetry);
        return options;
    }

    /// <summary>While the storm lasts, every n-th request fails as a 503 ServerBusy, before it reaches the service.</summary>
    private sealed class FaultPolicy(int everyNth) : HttpPipelinePolicy
    {
        private int _requests;
        private int _injected;
        private bool _storm;

        public bool Storm
        {
            get => Volatile.Read(ref _storm);
            set => Volatile.Write(ref _storm, value);
        }

        public int Injected => Volatile.Read(ref _injected);

        /// <summary>Fails the first request it matches, once, storm or not.</summary>
        public Func<HttpMessage, bool>? FailOnce { get; set; }

        public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            Fail(message);
            ProcessNext(message, pipeline);
        }

        public override ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            Fail(message);
            return ProcessNextAsync(message, pipeline);
        }

        private void Fail(HttpMessage message)
        {
            if (FailOnce is { } once && once(message))
            {
                FailOnce = null;
                Interlocked.Increment(ref _injected);
                throw new RequestFailedException(503, "The server is busy (injected).", "ServerBusy", null);
            }

            if (Storm && Interlocked.Increment(ref _requests) % everyNth == 0)
            {
                Interlocked.Increment(ref _injected);
                throw new RequestFailedException(503, "The server is busy (injected).", "ServerBusy", null);
            }
        }
    }
}
