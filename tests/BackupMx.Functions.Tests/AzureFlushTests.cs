using System.Globalization;
using System.Net;
using System.Text;
using Azure.Messaging.ServiceBus;
using BackupMx.Azure;
using BackupMx.Azure.Tests;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Functions.Tests.Fakes;
using BackupMx.Testing;
using BackupMx.Testing.Azurite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Functions.Tests;

/// <summary>
/// A flush across the Azure adapters: the function app's own composition over Table and Blob
/// storage in Azurite, the real Service Bus wake-up queue over a recording sender and receiver
/// (there is no emulator), MailKit to an in-process primary, and a fake clock. The retry
/// wake-up whose sequence number the Table record keeps is the one a flush must cancel.
/// </summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class AzureFlushTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private const string Domain = "example.test";
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly FakePrimary _primary = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));
    private readonly FakeSender _sender = new();
    private readonly FakeReceiver _receiver = new();
    private readonly HashSet<long> _released = [];
    private ServiceProvider _services = null!;

    private ISpoolStore Spool => _services.GetRequiredService<ISpoolStore>();

    public async Task InitializeAsync()
    {
        await _primary.StartAsync();
        // The Service Bus connection string is never contacted: the queue below is built on the recording sender and receiver.
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(AzureModeSettings.Create(azurite, Domain, _primary.HostPort)).Build();

        // The app registers its clock and its queue with TryAdd, so these come first and win.
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(_time);
        services.AddSingleton(new ServiceBusWakeUpQueue(_sender, _receiver));
        services.AddBackupMxFunctions(configuration);
        services.AddSingleton<ForwardFunction>();
        services.AddSingleton<ProbePrimariesFunction>();
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
    public async Task QueueFlush_RetryScheduledInServiceBus_CancelsTheStoredWakeUpAndDeliversOnceNow()
    {
        var (queueId, retry) = await SpoolWithScheduledRetryAsync();

        var response = await _services.GetRequiredService<QueueAdminFunctions>().Flush(
            new FakeHttpRequestData("POST", $"/api/queue/{Domain}/flush"), Domain, None);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await AssertFlushedThenDeliveredOnceAsync(queueId, retry);
    }

    [Fact]
    public async Task ProbePrimaries_PrimaryBackBeforeTheRetry_CancelsTheStoredWakeUpAndDeliversOnceNow()
    {
        var (queueId, retry) = await SpoolWithScheduledRetryAsync();

        await _services.GetRequiredService<ProbePrimariesFunction>().ProbeAsync(None);

        await AssertFlushedThenDeliveredOnceAsync(queueId, retry);
    }

    /// <summary>
    /// Accepts a message while the primary is down and lets its first attempt fail, so the Table
    /// record holds a retry wake-up scheduled in Service Bus; then the primary comes back, before the retry.
    /// </summary>
    private async Task<(string QueueId, long Retry)> SpoolWithScheduledRetryAsync()
    {
        await _primary.StopAsync();
        var queueId = await AcceptAsync();
        Assert.Equal(1, (await ForwardDueAsync()).Completed);

        var record = await GetAsync(queueId);
        var retry = _sender.Scheduled[^1];
        Assert.Equal(1, record.Attempts);
        Assert.True(retry.At > _time.GetUtcNow());
        Assert.Equal(record.NextAttemptAt, retry.At);
        Assert.Equal(Token(retry.SequenceNumber), record.WakeUpToken);
        Assert.Empty(_sender.Cancelled);

        _time.Advance(TimeSpan.FromSeconds(30));
        await _primary.StartAsync();
        return (queueId, retry.SequenceNumber);
    }

    private async Task AssertFlushedThenDeliveredOnceAsync(string queueId, long retry)
    {
        var now = _time.GetUtcNow();
        Assert.Equal([retry], _sender.Cancelled);
        var record = await GetAsync(queueId);
        var replacement = _sender.Scheduled[^1];
        Assert.Equal(now, record.NextAttemptAt);
        Assert.Equal(0, record.Attempts);
        Assert.Equal(now, replacement.At);

        // The replacement is due now, so there is nothing a later flush could cancel: no token kept.
        Assert.Null(record.WakeUpToken);

        Assert.Equal(1, (await ForwardDueAsync()).Completed);
        Assert.Equal(0, (await ForwardDueAsync()).Received);
        var delivered = Assert.Single(_primary.Messages);
        Assert.Equal(["bob@example.test"], delivered.AcceptedRecipients);
        Assert.Null(await Spool.GetAsync(Domain, queueId, None));
    }

    /// <summary>
    /// One Forward run, after doing what Service Bus does at a scheduled time: each scheduled
    /// message that was not cancelled becomes receivable, once.
    /// </summary>
    private Task<ForwardRunReport> ForwardDueAsync()
    {
        foreach (var (message, at, sequenceNumber) in _sender.Scheduled)
        {
            if (at <= _time.GetUtcNow() && !_sender.Cancelled.Contains(sequenceNumber) && _released.Add(sequenceNumber))
            {
                _receiver.Available.Enqueue(ServiceBusModelFactory.ServiceBusReceivedMessage(
                    body: message.Body, messageId: message.MessageId, sequenceNumber: sequenceNumber, properties: message.ApplicationProperties));
            }
        }

        return _services.GetRequiredService<ForwardFunction>().ForwardDueAsync(None);
    }

    private async Task<string> AcceptAsync()
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
        return Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
    }

    private async Task<SpoolRecord> GetAsync(string queueId) =>
        await Spool.GetAsync(Domain, queueId, None) ?? throw new InvalidOperationException(queueId + " is not in the spool");

    private static string Token(long sequenceNumber) => sequenceNumber.ToString(CultureInfo.InvariantCulture);
}
