using BackupMx.Admin.Notifications;
using BackupMx.Core.Configuration;
using BackupMx.Core.Notifications;
using BackupMx.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace BackupMx.Admin;

public static class AdminServiceCollectionExtensions
{
    /// <summary>
    /// The admin HTTP endpoint of embedded mode on <c>BackupMx:Admin:Endpoint</c>: <c>/metrics</c>
    /// (the relay's "BackupMx" meter in Prometheus text), <c>/healthz</c>, <c>/readyz</c> (SMTP
    /// listening, spool writable) and the dashboard at <c>/</c>. Needs the embedded composition
    /// (Core, the local spool, the SMTP receiver).
    /// </summary>
    public static IServiceCollection AddBackupMxAdmin(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<AdminOptions>()
            .BindChecked(configuration.GetSection(AdminOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AdminOptions>, AdminOptionsValidator>());

        services.AddMetrics();
        services.TryAddSingleton<SpoolGauges>();
        services.TryAddSingleton<SpoolGaugeRefresher>();
        // No cached scrape: the exporter would otherwise answer the same text for 300 ms, so a scrape
        // right after a change (a flush, a delivery) would miss it. The spool read behind the gauges
        // has its own limit (SpoolGaugeRefresher).
        services.AddOpenTelemetry().ConfigureResource(r => r.AddService("backupmx-server")).WithMetrics(m => m.AddMeter(Core.Telemetry.Name).AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));

        services.AddHealthChecks()
            .AddCheck<SmtpListeningHealthCheck>(SmtpListeningHealthCheck.Name, tags: [AdminHttpServer.ReadyTag])
            .AddCheck<SpoolWritableHealthCheck>(SpoolWritableHealthCheck.Name, tags: [AdminHttpServer.ReadyTag]);

        services.AddBackupMxNotifications(configuration);
        services.TryAddSingleton<INoticeStateStore>(sp => new NoticeStateFile(sp.GetRequiredService<IOptions<BackupMxOptions>>().Value.Spool.Path));
        services.AddHostedService<OutageNotifierService>();

        services.TryAddSingleton<AdminHttpServer>();
        services.AddHostedService(sp => sp.GetRequiredService<AdminHttpServer>());
        return services;
    }
}
