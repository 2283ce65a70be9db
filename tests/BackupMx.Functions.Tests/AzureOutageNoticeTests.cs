using System.Net;
using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Azure.Messaging.ServiceBus;
using BackupMx.Azure;
using BackupMx.Azure.Tests;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Notifications;
using BackupMx.Core.Ports;
using BackupMx.Functions.Tests.Fakes;
using BackupMx.Testing;
using BackupMx.Testing.Azurite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Functions.Tests;

/// <summary>
/// Outage notices in Azure mode: ProbePrimaries over the function app's own composition, its state
/// in the primaries table on Azurite, the webhook to a local HTTP receiver and e-mail through the
/// bounce route (a smart host) to a local SMTP sink. A second composition over the same storage
/// stands for a new function instance.
/// </summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class AzureOutageNoticeTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private const string Domain = "outage.example";
    private const string Steady = "steady.example";
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly FakePrimary _primary = new(port: FreePort.Next());
    private readonly FakePrimary _steady = new();
    private readonly FakePrimary _sink = new() { ServerName = "mx.owners.test" };
    private readonly LocalHttpServer _hook = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));
    private readonly FakeSender _sender = new();
    private readonly FakeReceiver _receiver = new();
    private readonly HashSet<long> _released = [];
    private readonly List<ServiceProvider> _instances = [];
    private Dictionary<string, string?> _settings = null!;

    public async Task InitializeAsync()
    {
        await _steady.StartAsync();
        await _sink.StartAsync();
        _hook.Answer(HttpStatusCode.OK, "{}");
        _settings = AzureModeSettings.Create(azurite, Domain, _primary.HostPort);
        _settings["BackupMx:Domains:0:NotifyAddresses:0"] = "hostmaster@owners.test";
        _settings["BackupMx:Domains:1:Name"] = Steady;
        _settings["BackupMx:Domains:1:Primary"] = _steady.HostPort;
        _settings["BackupMx:Domains:1:NotifyAddresses:0"] = "owner@owners.test";
        _settings["BackupMx:Notifications:Webhook"] = _hook.Url.ToString();
        _settings["BackupMx:Bounce:SmartHost"] = _sink.HostPort;
    }

    public async Task DisposeAsync()
    {
        foreach (var instance in _instances)
        {
            await instance.DisposeAsync();
        }

        await _hook.DisposeAsync();
        await _sink.DisposeAsync();
        await _steady.DisposeAsync();
        await _primary.DisposeAsync();
    }

    [Fact]
    public async Task Outage_OneNoticeAcrossProbesAndARestart_RecoveryWithCounts_NothingForTheDomainThatStayedUp()
    {
        var first = await StartInstanceAsync();
        await AcceptAsync(first, "bob@" + Domain);
        await AcceptAsync(first, "carol@" + Domain);
        await AcceptAsync(first, "dave@" + Steady);
        await ForwardDueAsync(first);
        Assert.Single(_steady.Messages);

        // Down, with mail waiting: nothing before Notifications:After (5 minutes), then one notice by each channel.
        await ProbeAsync(first);
        _time.Advance(TimeSpan.FromMinutes(4));
        await ProbeAsync(first);
        Assert.Empty(Notices());
        _time.Advance(TimeSpan.FromMinutes(2));
        await ProbeAsync(first);
        var down = Assert.Single(Notices());
        Assert.Equal(("down", Domain, 2), (down.GetProperty("event").GetString(), down.GetProperty("domain").GetString(), down.GetProperty("waiting").GetInt32()));
        var mail = Assert.Single(_sink.Messages);
        Assert.Equal("postmaster@mx.backup.test", mail.MailFrom);
        Assert.Equal(["hostmaster@owners.test"], mail.AcceptedRecipients);
        Assert.Contains("Auto-Submitted: auto-generated\r\n", Encoding.ASCII.GetString(mail.Data), StringComparison.Ordinal);

        // More probes, and a new instance that reads the state from the table: no second notice.
        for (var i = 0; i < 5; i++)
        {
            _time.Advance(TimeSpan.FromMinutes(1));
            await ProbeAsync(first);
        }

        var second = await StartInstanceAsync();
        _time.Advance(TimeSpan.FromMinutes(1));
        await ProbeAsync(second);
        Assert.Single(Notices());
        Assert.Single(_sink.Messages);
        var row = await new TableServiceClient(azurite.ConnectionString).GetTableClient(_settings["BackupMx:Azure:PrimariesTable"])
            .GetEntityIfExistsAsync<TableEntity>(Domain, TableNoticeStateStore.RowKey);
        Assert.True(row.HasValue);

        // The primary is back: the probe flushes, Forward delivers both, the next probe sends the recovery notice.
        await _primary.StartAsync();
        _time.Advance(TimeSpan.FromMinutes(1));
        await ProbeAsync(second);
        await ForwardDueAsync(second);
        Assert.True(_primary.Messages.Count == 2, $"the primary got {_primary.Messages.Count} message(s)");
        _time.Advance(TimeSpan.FromMinutes(1));
        await ProbeAsync(second);

        var notices = Notices();
        Assert.True(notices.Count == 2, "webhook notices: " + string.Join(" | ", notices.Select(n => n.GetRawText())));
        var recovered = notices[1];
        Assert.Equal(("recovered", Domain, 2), (recovered.GetProperty("event").GetString(), recovered.GetProperty("domain").GetString(), recovered.GetProperty("delivered").GetInt32()));
        // Accepted at 12:00, delivered at 12:13, seen gone by the look at 12:14 (the wait is counted to the look).
        Assert.Equal(14 * 60, recovered.GetProperty("longestWaitSeconds").GetInt64());
        Assert.True(_sink.Messages.Count == 2, $"the SMTP sink got {_sink.Messages.Count} notice(s)");
        Assert.All(_sink.Messages, m => Assert.Equal(["hostmaster@owners.test"], m.AcceptedRecipients));

        // The outage is over: its row is gone, and later probes send nothing.
        _time.Advance(TimeSpan.FromMinutes(10));
        await ProbeAsync(second);
        Assert.Equal(2, Notices().Count);
        Assert.DoesNotContain(Notices(), n => n.GetProperty("domain").GetString() == Steady);
    }

    [Fact]
    public async Task Webhook_AnswerHeldPastItsTimeout_TimeoutRunsOnTheTimeProvider_NoticeRetried()
    {
        // The first call is held unanswered: only the notifier's timeout, on the FakeTimeProvider, ends it.
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        _hook.Handler = async (_, cancellationToken) =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                held.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            return (HttpStatusCode.OK, "{}");
        };
        var instance = await StartInstanceAsync();
        await AcceptAsync(instance, "bob@" + Domain);
        await ForwardDueAsync(instance);
        await ProbeAsync(instance);
        _time.Advance(TimeSpan.FromMinutes(6));

        var probe = ProbeAsync(instance);
        await held.Task.WaitAsync(TimeSpan.FromSeconds(30));
        _time.Advance(OutageNotifier.WebhookTimeout - TimeSpan.FromSeconds(1));
        Assert.False(probe.IsCompleted, "the webhook call ended before its timeout had passed on the TimeProvider");

        // A wall-clock timeout would end the call only 15 real seconds after it started, past this guard.
        _time.Advance(TimeSpan.FromSeconds(1));
        await probe.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, _hook.RequestCount);

        // The failed call is retried after the check interval; the e-mail went once.
        _time.Advance(TimeSpan.FromMinutes(1));
        await ProbeAsync(instance);
        Assert.Equal(["down", "down"], Notices().Select(n => n.GetProperty("event").GetString()));
        Assert.Single(_sink.Messages);
    }

    private List<JsonElement> Notices() =>
        _hook.Requests.Select(r => JsonDocument.Parse(r.Body).RootElement.Clone()).ToList();

    private async Task<ServiceProvider> StartInstanceAsync()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(_settings).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(_time);
        services.AddSingleton(new ServiceBusWakeUpQueue(_sender, _receiver));
        services.AddBackupMxFunctions(configuration);
        services.AddSingleton<ForwardFunction>();
        services.AddSingleton<ProbePrimariesFunction>();
        var provider = services.BuildServiceProvider();
        _instances.Add(provider);
        await provider.GetRequiredService<AzureStorageInitializer>().EnsureCreatedAsync(None);
        return provider;
    }

    private static Task ProbeAsync(ServiceProvider instance) => instance.GetRequiredService<ProbePrimariesFunction>().ProbeAsync(None);

    /// <summary>One Forward run after each scheduled, uncancelled wake-up that is due became receivable once (as Service Bus does).</summary>
    private Task<ForwardRunReport> ForwardDueAsync(ServiceProvider instance)
    {
        foreach (var (message, at, sequenceNumber) in _sender.Scheduled)
        {
            if (at <= _time.GetUtcNow() && !_sender.Cancelled.Contains(sequenceNumber) && _released.Add(sequenceNumber))
            {
                _receiver.Available.Enqueue(ServiceBusModelFactory.ServiceBusReceivedMessage(
                    body: message.Body, messageId: message.MessageId, sequenceNumber: sequenceNumber, properties: message.ApplicationProperties));
            }
        }

        return instance.GetRequiredService<ForwardFunction>().ForwardDueAsync(None);
    }

    private static async Task AcceptAsync(ServiceProvider instance, string recipient)
    {
        var result = await instance.GetRequiredService<IntakeService>().AcceptAsync(
            new IncomingMessage
            {
                Sender = "alice@sender.test",
                Recipients = [new IncomingRecipient(recipient)],
                ClientAddress = "192.0.2.10",
                HeloName = "mail.sender.test",
                Content = MessageContent.FromBytes(Encoding.ASCII.GetBytes("From: alice@sender.test\r\nSubject: hi\r\n\r\nHello.\r\n")),
            },
            None);
        Assert.IsType<IntakeResult.Accepted>(result);
    }
}
