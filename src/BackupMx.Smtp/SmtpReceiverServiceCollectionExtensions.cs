using BackupMx.Core.Configuration;
using BackupMx.Smtp.Connection;
using BackupMx.Smtp.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
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
                o => string.IsNullOrWhiteSpace(o.TlsCertificatePath) == string.IsNullOrWhiteSpace(o.TlsKeyPath),
                SmtpReceiverOptions.SectionName + ":TlsCertificatePath and " + SmtpReceiverOptions.SectionName + ":TlsKeyPath must be set together.")
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
        services.TryAddSingleton<ConnectionAcceptor>();
        services.TryAddSingleton<SmtpReceiver>();
        services.AddHostedService<SmtpReceiverHostedService>();
        return services;
    }
}
