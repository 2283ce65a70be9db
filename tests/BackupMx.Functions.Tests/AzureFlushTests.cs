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

    [Fact]
    public async Task QueueFlush_250WaitingWithScheduledRetries_CancelsEachRetryAndSchedulesAllInThreeCallsThenDeliversEachOnce()
    {
        var waiting = await SpoolWhilePrimaryDownAsync(250);
        var retries = waiting.Values.ToHashSet();
        var before = _sender.Scheduled.Count;

        var response = await _services.GetRequiredService<QueueAdminFunctions>().Flush(
            new FakeHttpRequestData("POST", $"/api/queue/{Domain}/flush"), Domain, None);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var now = _time.GetUtcNow();

        // ceil(250 / 100) schedule calls, and no wake-up scheduled one by one.
        Assert.Equal([100, 100, 50], _sender.ScheduleCalls);
        var replacements = _sender.Scheduled.Skip(before).ToList();
        Assert.Equal(250, replacements.Count);
        Assert.All(replacements, r => Assert.Equal(now, r.At));
        Assert.Equal(waiting.Keys.Order(), replacements.Select(r => (string)r.Message.ApplicationProperties[ServiceBusWakeUpQueue.QueueIdProperty]).Order());
        Assert.Equal(retries.Order(), _sender.Cancelled.Order());
        foreach (var queueId in waiting.Keys)
        {
            var record = await GetAsync(queueId);
            Assert.Equal(now, record.NextAttemptAt);
            Assert.Equal(0, record.Attempts);

            // Due now, so there is nothing a later flush could cancel: no token kept, as for one message.
            Assert.Null(record.WakeUpToken);
        }

        await DrainAsync();
        AssertDeliveredOnceEach(waiting.Count);
    }

    /// <summary>
    /// The second of three schedule calls fails: refused outright, or scheduled with the reply lost.
    /// Every record is still committed as due; the sweep gives the ones without a wake-up a new one,
    /// and the duplicates a lost reply leaves behind find their message delivered and do nothing.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task QueueFlush_SecondScheduleCallFails_EveryMessageIsDeliveredOnceAfterTheSweep(bool replyLost)
    {
        var waiting = await SpoolWhilePrimaryDownAsync(250);
        var before = _sender.Scheduled.Count;
        _sender.LoseRepliesOfFailures = replyLost;
        _sender.ScheduleFailure = _ => _sender.ScheduleCalls.Count == 2 ? new ServiceBusException("The server is busy (injected).", ServiceBusFailureReason.ServiceBusy) : null;

        var response = await _services.GetRequiredService<QueueAdminFunctions>().Flush(
            new FakeHttpRequestData("POST", $"/api/queue/{Domain}/flush"), Domain, None);
        _sender.ScheduleFailure = null;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal([100, 100, 50], _sender.ScheduleCalls);
        Assert.Equal(replyLost ? 250 : 150, _sender.Scheduled.Count - before);
        var flushedAt = _time.GetUtcNow();
        foreach (var queueId in waiting.Keys)
        {
            Assert.Equal(flushedAt, (await GetAsync(queueId)).NextAttemptAt);
        }

        // Nothing is delivered before the sweep, so every wake-up it adds is one more for a waiting message.
        _time.Advance(TimeSpan.FromMinutes(3));
        await _services.GetRequiredService<ExpireFunction>().SweepAsync(None);
        var wakeUpsByMessage = _sender.Scheduled.Skip(before)
            .GroupBy(s => (string)s.Message.ApplicationProperties[ServiceBusWakeUpQueue.QueueIdProperty])
            .ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(waiting.Keys.Order(), wakeUpsByMessage.Keys.Order());
        Assert.Equal(replyLost ? 250 : 150, wakeUpsByMessage.Values.Count(n => n == 2));

        await DrainAsync();
        AssertDeliveredOnceEach(waiting.Count);
    }

    /// <summary>
    /// Accepts <paramref name="count"/> messages while the primary is known to be down: each waits for
    /// its first retry with that wake-up's sequence number in its record. Then the primary comes back.
    /// </summary>
    /// <returns>Each message's queue id and the sequence number of its retry wake-up.</returns>
    private async Task<Dictionary<string, long>> SpoolWhilePrimaryDownAsync(int count)
    {
        await _primary.StopAsync();
        var now = _time.GetUtcNow();
        Assert.True(await _services.GetRequiredService<IPrimaryStatusStore>().TrySetAsync(
            new PrimaryStatus(Domain, PrimaryState.Down, now, now, "connection refused", null), null, None));

        var waiting = new Dictionary<string, long>();
        for (var i = 0; i < count; i++)
        {
            var queueId = await AcceptAsync($"m{i:D3}");
            var record = await GetAsync(queueId);
            Assert.True(record.NextAttemptAt > now);
            waiting[queueId] = long.Parse(record.WakeUpToken!, CultureInfo.InvariantCulture);
        }

        _time.Advance(TimeSpan.FromSeconds(30));
        await _primary.StartAsync();
        return waiting;
    }

    /// <summary>Runs Forward until the spool is empty (or it stops making progress).</summary>
    private async Task DrainAsync()
    {
        for (var round = 0; round < 100; round++)
        {
            var report = await ForwardDueAsync();
            if (report.Received == 0)
            {
                break;
            }
        }

        var left = new List<SpoolRecord>();
        await foreach (var record in Spool.ListDomainAsync(Domain, None))
        {
            left.Add(record);
        }

        Assert.Empty(left);
    }

    private void AssertDeliveredOnceEach(int count)
    {
        var subjects = _primary.Messages
            .Select(m => Encoding.ASCII.GetString(m.Data))
            .Select(text => text[(text.IndexOf("Subject: ", StringComparison.Ordinal) + "Subject: ".Length)..].Split("\r\n")[0])
            .ToList();
        Assert.Equal(count, subjects.Count);
        Assert.Equal(count, subjects.Distinct().Count());
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

    private async Task<string> AcceptAsync(string subject = "hi")
    {
        var result = await _services.GetRequiredService<IntakeService>().AcceptAsync(
            new IncomingMessage
            {
                Sender = "alice@sender.test",
                Recipients = [new IncomingRecipient("bob@example.test")],
                ClientAddress = "192.0.2.10",
                HeloName = "mail.sender.test",
                Content = MessageContent.FromBytes(Encoding.ASCII.GetBytes($"From: alice@sender.test\r\nSubject: {subject}\r\n\r\nHello.\r\n")),
            },
            None);
        return Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
    }

    private async Task<SpoolRecord> GetAsync(string queueId) =>
        await Spool.GetAsync(Domain, queueId, None) ?? throw new InvalidOperationException(queueId + " is not in the spool");

    private static string Token(long sequenceNumber) => sequenceNumber.ToString(CultureInfo.InvariantCulture);
}
