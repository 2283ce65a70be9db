using BackupMx.Core.Configuration;
using BackupMx.Core.Expiry;
using BackupMx.Core.Forwarding;
using BackupMx.Core.Hosting;
using BackupMx.Core.Inspection;
using BackupMx.Core.Intake;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Testing;

/// <summary>
/// Core wired to in-memory fakes and a <see cref="FakeTimeProvider"/>: the whole
/// intake → forward → flush → expire cycle, with no I/O and no waiting.
/// </summary>
public sealed class CoreHarness : IDisposable
{
    private readonly ServiceProvider _services;

    /// <param name="flushEpochs">Embedded mode's flush: the spool's flush epochs and a pump signal (the spool must keep epochs).</param>
    public CoreHarness(Action<Dictionary<string, string?>>? configure = null, ISpoolStore? spool = null, IBodyStore? bodies = null, bool flushEpochs = false)
    {
        var settings = new Dictionary<string, string?>
        {
            ["BackupMx:HostName"] = "backup.test",
            ["BackupMx:Smtp:Endpoints:0"] = "127.0.0.1:2525",
            ["BackupMx:Domains:0:Name"] = "example.test",
            ["BackupMx:Domains:1:Name"] = "other.test",
        };
        configure?.Invoke(settings);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();

        Time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));
        Spool = spool ?? new InMemorySpoolStore();
        Bodies = bodies ?? new InMemoryBodyStore();
        WakeUps = new RecordingWakeUpQueue(Time);

        var services = new ServiceCollection();
        services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.AddSingleton(typeof(ILogger<>), typeof(NullLogger<>));
        services.AddSingleton<TimeProvider>(Time);
        services.AddSingleton(Spool);
        services.AddSingleton(Bodies);
        services.AddSingleton<IWakeUpQueue>(WakeUps);
        services.AddSingleton<IMessageTransport>(Transport);
        services.AddSingleton<IPrimaryProber>(Prober);
        services.AddSingleton<IDsnComposer>(new SimpleDsnComposer());
        services.AddSingleton<IPrimaryStatusStore, InMemoryPrimaryStatusStore>();
        services.AddSingleton<IRecipientVerifier>(Verifier);
        if (flushEpochs)
        {
            services.AddSingleton((IFlushEpochStore)Spool);
            services.AddSingleton<WakeUpSignal>();
        }

        services.AddBackupMxCore(configuration);
        _services = services.BuildServiceProvider();
    }

    public FakeTimeProvider Time { get; }

    public ISpoolStore Spool { get; }

    public IBodyStore Bodies { get; }

    public RecordingWakeUpQueue WakeUps { get; }

    public ScriptedTransport Transport { get; } = new();

    public ScriptedProber Prober { get; } = new();

    /// <summary>The recipient callouts; Unknown (primary unreachable) unless the test says otherwise.</summary>
    public ScriptedRecipientVerifier Verifier { get; } = new();

    public IntakeService Intake => Get<IntakeService>();

    public MessageForwarder Forwarder => Get<MessageForwarder>();

    public PrimaryMonitor Monitor => Get<PrimaryMonitor>();

    public DomainFlusher Flusher => Get<DomainFlusher>();

    public SpoolSweeper Sweeper => Get<SpoolSweeper>();

    public QueueInspector Inspector => Get<QueueInspector>();

    public BackupMxOptions Options => Get<Microsoft.Extensions.Options.IOptions<BackupMxOptions>>().Value;

    public T Get<T>() where T : notnull => _services.GetRequiredService<T>();

    /// <summary>Delivers every wake-up that is due now, as the Forward function or the pump would; returns how many were processed.</summary>
    public async Task<int> RunDueWakeUpsAsync()
    {
        var count = 0;
        for (var round = 0; round < 10; round++)
        {
            var due = await WakeUps.ReceiveDueAsync(1000, TimeSpan.Zero, CancellationToken.None);
            if (due.Count == 0)
            {
                break;
            }

            foreach (var wakeUp in due)
            {
                await Forwarder.ProcessAsync(wakeUp.WakeUp, CancellationToken.None);
                await WakeUps.CompleteAsync(wakeUp, CancellationToken.None);
                count++;
            }
        }

        return count;
    }

    public void Dispose() => _services.Dispose();
}
