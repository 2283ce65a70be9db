using System.Globalization;
using BackupMx.Core.Expiry;
using BackupMx.Core.Forwarding;
using BackupMx.Core.Hosting;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using BackupMx.Testing.Fakes;

namespace BackupMx.Testing.Model;

/// <summary>The ports of one process, opened on the backend's storage (which outlives the process).</summary>
public sealed record ProcessPorts(ISpoolStore Spool, IBodyStore Bodies, IPrimaryStatusStore Statuses, IWakeUpQueue WakeUps, IAsyncDisposable? Owned = null);

/// <summary>
/// One spool implementation under test: opens processes on shared storage, runs the host's
/// dispatch (the pump's pass, or the Forward function's receive) and its start-up recovery.
/// </summary>
public abstract class ModelBackend : IAsyncDisposable
{
    public static readonly TimeSpan Retention = TimeSpan.FromHours(2);

    // The shortest lease the options allow with the default Delivery:AttemptTimeout (5 min) plus its margin.
    public static readonly TimeSpan LeaseDuration = TimeSpan.FromMinutes(6);

    public abstract string Name { get; }

    /// <summary>Opens a process's ports on the storage. <paramref name="clock"/> is that process's time.</summary>
    public abstract Task<ProcessPorts> OpenAsync(TimeProvider clock);

    /// <summary>Start-up recovery after a crash, on the new process's ports, before it does anything else.</summary>
    public abstract Task RecoverAsync(ProcessPorts ports, TimeProvider clock);

    /// <summary>Forgets the in-flight work of a dead process that lives outside the spool (received wake-ups).</summary>
    public virtual void AfterCrash()
    {
    }

    /// <summary>Drops every scheduled wake-up; a no-op where the spool's own index is the schedule.</summary>
    public abstract void LoseWakeUps();

    /// <summary>One dispatch pass: every message due now is forwarded once (twice at once with <paramref name="race"/>).</summary>
    public abstract Task DeliverDueAsync(ModelProcess process, bool race);

    /// <summary>Every record, read with a store of its own (not the process's, which may be dead).</summary>
    public abstract Task<IReadOnlyList<SpoolRecord>> ListAllAsync();

    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    /// <summary>Forwards one record and settles the outcome the way the hosts do: a failure is logged and the record stays spooled.</summary>
    protected static async Task ForwardAsync(ModelProcess process, Func<Task> forward)
    {
        try
        {
            await forward().ConfigureAwait(false);
        }
        catch (SimulatedCrashException)
        {
        }
        catch (Exception ex)
        {
            lock (process.Errors)
            {
                process.Errors.Add(ex.GetType().Name + ": " + ex.Message);
            }
        }
    }
}

/// <summary>One life of the relay: Core's services over the crashable ports of a backend.</summary>
public sealed class ModelProcess : IAsyncDisposable
{
    private readonly ServiceProvider _services;
    private readonly ProcessPorts _ports;

    private ModelProcess(ServiceProvider services, ProcessPorts ports, CrashSwitch crash, SkewedTimeProvider clock, List<string> errors)
    {
        _services = services;
        Errors = errors;
        _ports = ports;
        Crash = crash;
        Clock = clock;
    }

    public CrashSwitch Crash { get; }

    public SkewedTimeProvider Clock { get; }

    /// <summary>Raw ports of this process (not crashable): what recovery uses.</summary>
    public ProcessPorts Ports => _ports;

    public ISpoolStore Spool => _services.GetRequiredService<ISpoolStore>();

    public IWakeUpQueue WakeUps => _services.GetRequiredService<IWakeUpQueue>();

    public IntakeService Intake => _services.GetRequiredService<IntakeService>();

    public MessageForwarder Forwarder => _services.GetRequiredService<MessageForwarder>();

    public PrimaryMonitor Monitor => _services.GetRequiredService<PrimaryMonitor>();

    public SpoolSweeper Sweeper => _services.GetRequiredService<SpoolSweeper>();

    /// <summary>Exceptions the hosts would have logged and survived (of every life of the relay).</summary>
    public List<string> Errors { get; }

    public static Dictionary<string, string?> Settings()
    {
        var settings = new Dictionary<string, string?>
        {
            ["BackupMx:HostName"] = "backup.test",
            ["BackupMx:Smtp:Endpoints:0"] = "127.0.0.1:2525",
            ["BackupMx:Delivery:Retention"] = ModelBackend.Retention.ToString("c", CultureInfo.InvariantCulture),
            ["BackupMx:Delivery:LeaseDuration"] = ModelBackend.LeaseDuration.ToString("c", CultureInfo.InvariantCulture),
            ["BackupMx:Delivery:RetryIntervals:0"] = "00:01:00",
            ["BackupMx:Delivery:RetryIntervals:1"] = "00:05:00",
            ["BackupMx:Delivery:RetryIntervals:2"] = "00:15:00",
        };
        for (var d = 0; d < ModelGen.DomainCount; d++)
        {
            settings[string.Create(CultureInfo.InvariantCulture, $"BackupMx:Domains:{d}:Name")] = ModelWorld.DomainName(d);
        }

        return settings;
    }

    public static async Task<ModelProcess> StartAsync(ModelBackend backend, ModelWorld world, bool recover)
    {
        var clock = new SkewedTimeProvider(world.Time);
        var crash = new CrashSwitch();
        var ports = await backend.OpenAsync(clock).ConfigureAwait(false);
        if (recover)
        {
            await backend.RecoverAsync(ports, clock).ConfigureAwait(false);
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(Settings()).Build();
        var services = new ServiceCollection();
        services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.AddSingleton(typeof(ILogger<>), typeof(NullLogger<>));
        services.AddSingleton<TimeProvider>(clock);
        services.AddSingleton<ISpoolStore>(new CrashableSpoolStore(ports.Spool, crash));
        services.AddSingleton<IBodyStore>(new CrashableBodyStore(ports.Bodies, crash));
        services.AddSingleton<IWakeUpQueue>(new CrashableWakeUpQueue(ports.WakeUps, crash));
        services.AddSingleton<IPrimaryStatusStore>(new CrashablePrimaryStatusStore(ports.Statuses, crash));
        services.AddSingleton<IMessageTransport>(world.Transport);
        services.AddSingleton<IPrimaryProber>(world.Prober);
        services.AddSingleton<IDsnComposer>(new SimpleDsnComposer());
        services.AddSingleton<IRecipientVerifier>(new ScriptedRecipientVerifier());
        services.AddBackupMxCore(configuration);
        world.Process = crash;
        return new ModelProcess(services.BuildServiceProvider(), ports, crash, clock, world.Errors);
    }

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync().ConfigureAwait(false);
        if (_ports.Owned is { } owned)
        {
            await owned.DisposeAsync().ConfigureAwait(false);
        }
    }
}
