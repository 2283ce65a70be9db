using BackupMx.Core.Configuration;
using BackupMx.Core.Expiry;
using BackupMx.Core.Forwarding;
using BackupMx.Core.Inspection;
using BackupMx.Core.Intake;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using BackupMx.Core.Spool;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Hosting;

public static class CoreServiceCollectionExtensions
{
    /// <summary>
    /// Options (validated at start-up), intake, forwarding, flushing, monitoring, expiry and
    /// inspection: <see cref="AddBackupMxCoreIntake"/> and <see cref="AddBackupMxCoreForwarding"/>.
    /// Adapters for the ports are added by the adapter projects.
    /// </summary>
    public static IServiceCollection AddBackupMxCore(this IServiceCollection services, IConfiguration configuration) =>
        services.AddBackupMxCoreIntake(configuration).AddBackupMxCoreForwarding();

    /// <summary>
    /// What a host that receives but never forwards needs (the Azure receiver): options
    /// (validated at start-up), intake, the recipient policy, flushing (ETRN) and inspection.
    /// Needs one storage adapter (spool, bodies, primary status) and a wake-up queue.
    /// </summary>
    public static IServiceCollection AddBackupMxCoreIntake(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<BackupMxOptions>()
            .BindChecked(configuration.GetSection(BackupMxOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<BackupMxOptions>, BackupMxOptionsValidator>());

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<SpoolLedger>();
        services.TryAddSingleton<IntakeService>();

        // The policy's IRecipientVerifier is the host's choice (direct callouts, or through the
        // function app), registered once by the adapter the host composes; none here to override.
        services.TryAddSingleton<RecipientPolicy>();
        services.TryAddSingleton<DomainFlusher>();
        services.TryAddSingleton<QueueInspector>();
        return services;
    }

    /// <summary>
    /// Makes <see cref="IOptions{BackupMxOptions}"/> follow configuration reloads: every consumer
    /// gets a <see cref="ReloadableOptions{T}"/> holder, which <see cref="ConfigurationReload"/>
    /// swaps with the other reloadable settings only once all have passed validation
    /// (docs/operations.md, "Reload").
    /// </summary>
    public static IServiceCollection AddBackupMxConfigurationReload(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddConfigurationReload(configuration);
        services.TryAddSingleton(sp =>
        {
            var logger = sp.GetRequiredService<ILogger<ConfigurationReload>>();
            return new ReloadableOptions<BackupMxOptions>(
                sp.GetRequiredService<IOptionsFactory<BackupMxOptions>>(),
                sp.GetRequiredService<ConfigurationReload>(),
                carryOver: (previous, next) => next.KeepRemovedDomains(previous),
                applied: next => ConfigurationReload.LogDomainsApplied(logger, next));
        });

        // A closed registration wins over the open IOptions<> one, whatever the order.
        services.AddSingleton<IOptions<BackupMxOptions>>(sp => sp.GetRequiredService<ReloadableOptions<BackupMxOptions>>());
        return services;
    }

    /// <summary>
    /// The one follower of <paramref name="configuration"/>'s reload token that the
    /// <see cref="ReloadableOptions{T}"/> holders take part in; added once, whoever asks first.
    /// </summary>
    public static IServiceCollection AddConfigurationReload(this IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton(sp => new ConfigurationReload(configuration, sp.GetRequiredService<ILogger<ConfigurationReload>>()));
        return services;
    }

    /// <summary>
    /// Forwarding, DSN queueing, primary monitoring and expiry. Needs, besides what
    /// <see cref="AddBackupMxCoreIntake"/> needs, the outbound transport, the prober and the DSN
    /// composer (the delivery adapter).
    /// </summary>
    public static IServiceCollection AddBackupMxCoreForwarding(this IServiceCollection services)
    {
        services.TryAddSingleton<MessageForwarder>();
        services.TryAddSingleton<DsnQueue>();
        services.TryAddSingleton<MessageOperations>();
        services.TryAddSingleton<PrimaryMonitor>();
        services.TryAddSingleton<SpoolSweeper>();
        return services;
    }

    /// <summary>
    /// Single-process scheduling: wake-ups nudge an in-process pump that reads due records from
    /// the spool, plus the probe loop and the sweep as hosted services (embedded mode).
    /// </summary>
    public static IServiceCollection AddBackupMxInProcessScheduling(this IServiceCollection services)
    {
        services.TryAddSingleton<WakeUpSignal>();
        services.TryAddSingleton<IWakeUpQueue, InProcessWakeUpQueue>();
        services.TryAddSingleton<DueMessagePump>();
        services.AddHostedService<ForwardingService>();
        services.AddHostedService<PrimaryMonitorService>();
        services.AddHostedService<SweepService>();
        return services;
    }
}
