using System.Diagnostics.Metrics;
using System.Text;
using BackupMx.Core.Configuration;
using BackupMx.Core.Expiry;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Notifications;
using BackupMx.Testing.Fakes;
using BackupMx.Core.Ports;
using BackupMx.Core.Spool;
using BackupMx.Telemetry;
using BackupMx.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BackupMx.Functions.Tests;

/// <summary>
/// The function classes over Core wired to fakes (<see cref="CoreHarness"/>): the
/// RecordingWakeUpQueue stands in for Service Bus, the scripted transport for the primary.
/// </summary>
public sealed class FunctionsHarness : IDisposable
{
    public const string Body = "From: alice@sender.test\r\nTo: bob@example.test\r\nSubject: hello\r\n\r\nHi Bob.\r\n";

    private readonly ServiceProvider _metrics;

    public FunctionsHarness(FunctionsOptions? options = null, IWakeUpSource? source = null, ISpoolStore? spool = null)
    {
        Core = new CoreHarness(spool: spool);
        Options = options ?? new FunctionsOptions();
        _metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();
        MeterFactory = _metrics.GetRequiredService<IMeterFactory>();
        Gauges = new SpoolGauges(MeterFactory, Core.Time);
        Forward = new ForwardFunction(source ?? Core.WakeUps, Core.Forwarder, Microsoft.Extensions.Options.Options.Create(Options), Core.Time, NullLogger<ForwardFunction>.Instance);
        Webhook = new WebhookClient();
        var notifier = new OutageNotifier(
            Core.Inspector, Core.Transport, Webhook, Core.Time, Microsoft.Extensions.Options.Options.Create(new NotificationOptions()),
            Microsoft.Extensions.Options.Options.Create(new List<NotifiedDomain>()), Core.Get<IOptions<BackupMxOptions>>(), new InMemoryNoticeStateStore(shared: true), MeterFactory,
            NullLogger<OutageNotifier>.Instance);
        Probe = new ProbePrimariesFunction(Core.Monitor, Core.Get<IPrimaryStatusStore>(), Gauges, notifier, Core.Get<IOptions<BackupMxOptions>>(), Core.Time);
        Expire = new ExpireFunction(
            Core.Sweeper,
            Core.Inspector,
            Gauges,
            new OrphanBodySweeper(Core.Get<ISpoolStore>(), Core.Get<IBodyStore>(), new NoBodies(), Core.Time, NullLogger<OrphanBodySweeper>.Instance),
            Microsoft.Extensions.Options.Options.Create(Options));
        var adminRole = new AdminRole(Microsoft.Extensions.Options.Options.Create(Options));
        Admin = new QueueAdminFunctions(Core.Inspector, Core.Flusher, Core.Get<IOptions<BackupMxOptions>>(), NullLogger<QueueAdminFunctions>.Instance, adminRole);
        Messages = new MessageAdminFunctions(Core.Get<MessageOperations>(), Core.Get<SpoolLedger>(), Core.Get<IOptions<BackupMxOptions>>(), NullLogger<MessageAdminFunctions>.Instance, adminRole);
    }

    public CoreHarness Core { get; }

    /// <summary>Unused: no domain has notify addresses and there is no webhook, so the notifier never sends.</summary>
    public WebhookClient Webhook { get; }

    public FunctionsOptions Options { get; }

    public IMeterFactory MeterFactory { get; }

    public SpoolGauges Gauges { get; }

    public ForwardFunction Forward { get; }

    public ProbePrimariesFunction Probe { get; }

    public ExpireFunction Expire { get; }

    public QueueAdminFunctions Admin { get; }

    public MessageAdminFunctions Messages { get; }

    public async Task<string> AcceptAsync(string recipient = "bob@example.test", string sender = "alice@sender.test")
    {
        var result = await Core.Intake.AcceptAsync(
            new IncomingMessage
            {
                Sender = sender,
                Parameters = new MailParameters(),
                Recipients = [new IncomingRecipient(recipient)],
                ClientAddress = "192.0.2.10",
                HeloName = "mail.sender.test",
                Content = MessageContent.FromBytes(Encoding.ASCII.GetBytes(Body)),
            },
            CancellationToken.None);
        return Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
    }

    public async Task<List<SpoolRecord>> AllRecordsAsync()
    {
        var list = new List<SpoolRecord>();
        await foreach (var r in Core.Spool.ListAllAsync(CancellationToken.None))
        {
            list.Add(r);
        }

        return list;
    }

    public void Dispose()
    {
        Core.Dispose();
        Webhook.Dispose();
        _metrics.Dispose();
    }

    /// <summary>The in-memory body store has no listing: the orphan sweep (tested on Azurite) finds nothing here.</summary>
    private sealed class NoBodies : IBodyInventory
    {
        public IAsyncEnumerable<StoredBody> ListWrittenBeforeAsync(DateTimeOffset cutoff, CancellationToken cancellationToken) =>
            AsyncEnumerable.Empty<StoredBody>();
    }
}
