using System.Text;
using Azure.Messaging.ServiceBus;
using BackupMx.Azure;
using BackupMx.Azure.Tests;
using BackupMx.Core.Configuration;
using BackupMx.Core.Intake;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Azurite;
using BackupMx.Testing.Contracts;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Functions.Tests;

/// <summary>
/// Intake and the first wake-up across the Azure adapters: Table and Blob storage in Azurite, the
/// real Service Bus wake-up queue over the recording sender and receiver, MailKit to an in-process
/// primary. "Service Bus" releases a scheduled message once its time has come by its own clock,
/// which here is the receiver's; the function app may run on a clock of its own.
/// </summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class AzureIntakeTimingTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private const string Domain = "example.test";
    private const string OtherDomain = "other.test";
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly FakePrimary _primary = new();
    private readonly FakeTimeProvider _functionClock = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));
    private readonly FakeTimeProvider _receiverClock = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));
    private readonly FakeSender _sender = new();
    private readonly FakeReceiver _receiver = new();
    private readonly HashSet<long> _released = [];
    private ServiceProvider _services = null!;

    public async Task InitializeAsync()
    {
        await _primary.StartAsync();
        var settings = AzureModeSettings.Create(azurite, Domain, _primary.HostPort);
        settings["BackupMx:Domains:1:Name"] = OtherDomain;
        settings["BackupMx:Domains:1:Primary"] = _primary.HostPort;
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();

        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(_functionClock);
        services.AddSingleton(new ServiceBusWakeUpQueue(_sender, _receiver));
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
    public async Task AcceptAsync_SecondDomainsWakeUpFails_AcceptsAndEachDomainGetsTheMessageOnce()
    {
        var schedules = 0;
        _sender.ScheduleFailure = _ => ++schedules == 2 ? new ServiceBusException("namespace busy", ServiceBusFailureReason.ServiceBusy) : null;

        var result = await Intake().AcceptAsync(Message("bob@example.test", "carol@other.test"), None);

        // Both records were committed before any wake-up: the message is ours, and a 451 would bring it back.
        var ids = Assert.IsType<IntakeResult.Accepted>(result).QueueIds;
        Assert.Equal(2, ids.Count);
        Assert.Equal(1, (await ForwardDueAsync()).Completed);

        // The sweep finds the record whose wake-up was never scheduled.
        _sender.ScheduleFailure = null;
        _functionClock.Advance(TimeSpan.FromMinutes(3));
        _receiverClock.Advance(TimeSpan.FromMinutes(3));
        await _services.GetRequiredService<ExpireFunction>().SweepAsync(None);
        Assert.Equal(1, (await ForwardDueAsync()).Completed);

        Assert.Equal(2, _primary.Messages.Count);
        Assert.Equal(["bob@example.test", "carol@other.test"], _primary.Messages.SelectMany(m => m.AcceptedRecipients).Order(StringComparer.Ordinal));
        var spool = _services.GetRequiredService<ISpoolStore>();
        Assert.Empty(await spool.ListAllAsync(None).ToListAsync());
    }

    [Fact]
    public async Task Forward_FunctionClockBehindTheReceiver_DeliversOnTheFirstWakeUp()
    {
        _receiverClock.Advance(TimeSpan.FromSeconds(30));

        var result = await Intake().AcceptAsync(Message("bob@example.test"), None);
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);

        var run = await ForwardDueAsync();

        Assert.Equal(1, run.Completed);
        Assert.Equal(["bob@example.test"], Assert.Single(_primary.Messages).AcceptedRecipients);
        Assert.Null(await _services.GetRequiredService<ISpoolStore>().GetAsync(Domain, id, None));
    }

    [Fact]
    public async Task Forward_StaleWakeUpForAnEarlierTime_StillWaitsForTheRecordsOwn()
    {
        // A wake-up that names another time than the record's is a leftover (a duplicate, an uncancelled retry).
        var result = await Intake().AcceptAsync(Message("bob@example.test"), None);
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
        var spool = _services.GetRequiredService<ISpoolStore>();
        var record = (await spool.GetAsync(Domain, id, None))!;
        record = await spool.UpdateAsync(record! with { NextAttemptAt = _functionClock.GetUtcNow().AddMinutes(10) }, None);

        var run = await ForwardDueAsync();

        Assert.Equal(1, run.Completed);
        Assert.Empty(_primary.Messages);
        Assert.NotNull(await spool.GetAsync(Domain, id, None));
    }

    /// <summary>The receiver container's intake: the app's own adapters, on the receiver's clock.</summary>
    private IntakeService Intake() => new(
        new BackupMx.Core.Spool.SpoolLedger(
            _services.GetRequiredService<ISpoolStore>(),
            _services.GetRequiredService<IBodyStore>(),
            _services.GetRequiredService<IWakeUpQueue>(),
            _receiverClock,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<BackupMx.Core.Spool.SpoolLedger>.Instance),
        _services.GetRequiredService<IPrimaryStatusStore>(),
        _services.GetRequiredService<IOptions<BackupMxOptions>>(),
        _receiverClock,
        NullLogger<IntakeService>.Instance);

    /// <summary>One Forward run, after Service Bus released every scheduled message whose time has come by its clock.</summary>
    private Task<ForwardRunReport> ForwardDueAsync()
    {
        foreach (var (message, at, sequenceNumber) in _sender.Scheduled)
        {
            if (at <= _receiverClock.GetUtcNow() && !_sender.Cancelled.Contains(sequenceNumber) && _released.Add(sequenceNumber))
            {
                _receiver.Available.Enqueue(ServiceBusModelFactory.ServiceBusReceivedMessage(
                    body: message.Body, messageId: message.MessageId, sequenceNumber: sequenceNumber, properties: message.ApplicationProperties));
            }
        }

        return _services.GetRequiredService<ForwardFunction>().ForwardDueAsync(None);
    }

    private static IncomingMessage Message(params string[] recipients) => new()
    {
        Sender = "alice@sender.test",
        Recipients = recipients.Select(r => new IncomingRecipient(r)).ToList(),
        ClientAddress = "192.0.2.10",
        HeloName = "mail.sender.test",
        Content = MessageContent.FromBytes(Encoding.ASCII.GetBytes("From: alice@sender.test\r\nSubject: hi\r\n\r\nHello.\r\n")),
    };
}
