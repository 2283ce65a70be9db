using System.Diagnostics.Metrics;
using BackupMx.Core.Configuration;
using BackupMx.Core.Hosting;
using BackupMx.Smtp.Connection;
using BackupMx.Smtp.Hosting;
using BackupMx.Smtp.Tls;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Smtp;

public static class SmtpReceiverServiceCollectionExtensions
{
    /// <summary>
    /// The inbound SMTP receiver as a hosted service, listening on <c>BackupMx:Smtp:Endpoints</c>.
    /// Needs Core's services (<c>AddBackupMxCore</c>) and adapters for the spool, body store and wake-ups.
    /// </summary>
    public static IServiceCollection AddBackupMxSmtpReceiver(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<SmtpReceiverOptions>()
            .BindChecked(configuration.GetSection(SmtpReceiverOptions.SectionName))
            .ValidateDataAnnotations()
            .Validate(o => o.ShutdownGracePeriod >= TimeSpan.Zero, SmtpReceiverOptions.SectionName + ":ShutdownGracePeriod must not be negative.")
            .Validate(o => o.EtrnReplyWait >= TimeSpan.Zero, SmtpReceiverOptions.SectionName + ":EtrnReplyWait must not be negative.")
            .Validate(o => o.DataInitiationTimeout > TimeSpan.Zero, SmtpReceiverOptions.SectionName + ":DataInitiationTimeout must be positive.")
            .Validate(o => o.DataBlockTimeout > TimeSpan.Zero, SmtpReceiverOptions.SectionName + ":DataBlockTimeout must be positive.")
            .Validate(o => o.FinalDotTimeout > TimeSpan.Zero, SmtpReceiverOptions.SectionName + ":FinalDotTimeout must be positive.")
            .Validate(
                o => string.IsNullOrWhiteSpace(o.TlsKeyPath) || !string.IsNullOrWhiteSpace(o.TlsCertificatePath),
                SmtpReceiverOptions.SectionName + ":TlsKeyPath needs " + SmtpReceiverOptions.SectionName + ":TlsCertificatePath.")
            .Validate(
                o => o.TlsCertificateCheckInterval >= TimeSpan.FromSeconds(1) && o.TlsCertificateCheckInterval <= TimeSpan.FromHours(1),
                SmtpReceiverOptions.SectionName + ":TlsCertificateCheckInterval must be between 00:00:01 and 01:00:00.")
            .Validate(
                o => string.IsNullOrWhiteSpace(o.TlsCertificatePath) || File.Exists(o.TlsCertificatePath),
                SmtpReceiverOptions.SectionName + ":TlsCertificatePath does not name an existing file.")
            .Validate(
                o => string.IsNullOrWhiteSpace(o.TlsKeyPath) || File.Exists(o.TlsKeyPath),
                SmtpReceiverOptions.SectionName + ":TlsKeyPath does not name an existing file.")
            .Validate<IOptions<BackupMxOptions>>(
                (o, core) => string.IsNullOrWhiteSpace(o.PostmasterDomain) || core.Value.FindDomain(o.PostmasterDomain) is not null,
                SmtpReceiverOptions.SectionName + ":PostmasterDomain must be one of the configured BackupMx:Domains.")
            .ValidateOnStart();

        // Read per new connection: a reload reaches the sessions that follow (docs/operations.md, "Reload").
        // Replaced together with the rest of the configuration, or not at all.
        services.AddConfigurationReload(configuration);
        services.TryAddSingleton(sp =>
        {
            var logger = sp.GetRequiredService<ILogger<SmtpReceiver>>();
            return new ReloadableOptions<SmtpReceiverOptions>(
                sp.GetRequiredService<IOptionsFactory<SmtpReceiverOptions>>(),
                sp.GetRequiredService<ConfigurationReload>(),
                applied: next => Log.ReceiverReloaded(logger, next.MaxConnections, next.MaxConnectionsPerIp, next.MaxMessagesPerMinutePerIp));
        });
        services.AddSingleton<IOptions<SmtpReceiverOptions>>(sp => sp.GetRequiredService<ReloadableOptions<SmtpReceiverOptions>>());
        services.TryAddSingleton<ConnectionAcceptor>();
        services.TryAddSingleton(sp => new TlsCertificateMetrics(sp.GetService<IMeterFactory>()));
        services.TryAddSingleton(sp => new SmtpReceiverStatus(sp.GetService<IMeterFactory>()));
        services.TryAddSingleton<SmtpReceiver>();
        services.AddHostedService<SmtpReceiverHostedService>();
        return services;
    }
}
