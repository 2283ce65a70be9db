using BackupMx.Core.Configuration;
using BackupMx.Core.Ports;
using BackupMx.Delivery.Dsn;
using BackupMx.Delivery.Routing;
using BackupMx.Delivery.Smtp;
using DnsClient;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Delivery;

public static class DeliveryServiceCollectionExtensions
{
    /// <summary>
    /// Outbound SMTP (MailKit), MX resolution (DnsClient, over BackupMx:Dns:Servers or the system's resolvers), DSN
    /// composition and recipient callouts made directly to the primary, the forwarding hosts'
    /// <see cref="IRecipientVerifier"/>. Needs the options and TimeProvider that AddBackupMxCore registers.
    /// </summary>
    public static IServiceCollection AddBackupMxDelivery(this IServiceCollection services)
    {
        services.AddBackupMxRecipientCallouts();
        services.TryAddSingleton<IRecipientVerifier>(sp => sp.GetRequiredService<MailKitRecipientVerifier>());
        services.TryAddSingleton<IMessageTransport>(sp => new MailKitTransport(
            sp.GetRequiredService<DeliveryRouter>(),
            sp.GetRequiredService<SmtpConnector>(),
            sp.GetRequiredService<IDeliveryTlsPolicy>(),
            sp.GetRequiredService<IOptions<BackupMxOptions>>(),
            sp.GetRequiredService<ILogger<MailKitTransport>>(),
            sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<IPrimaryProber>(sp => new MailKitPrimaryProber(
            sp.GetRequiredService<DeliveryRouter>(),
            sp.GetRequiredService<SmtpConnector>(),
            sp.GetRequiredService<IOptions<BackupMxOptions>>()));
        services.TryAddSingleton<IDsnComposer, MimeKitDsnComposer>();
        return services;
    }

    /// <summary>
    /// Only recipient callouts (<see cref="MailKitRecipientVerifier"/>, registered as itself, not as
    /// <see cref="IRecipientVerifier"/>: the host decides whether to use it directly or to wrap it)
    /// and what they need: MX resolution, routing, the outbound TLS policy and the connector. For
    /// a host that receives but never forwards.
    /// </summary>
    public static IServiceCollection AddBackupMxRecipientCallouts(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ILookupClient>(sp => LookupClientFactory.Create(sp.GetRequiredService<IOptions<BackupMxOptions>>().Value.Dns, cache: true));
        services.TryAddSingleton<IDnsResolver, DnsClientResolver>();
        services.TryAddSingleton<IDeliveryTlsPolicy, ConfiguredTlsPolicy>();
        services.TryAddSingleton<DeliveryRouter>();

        // One connector (and one view of our own listeners, with its cached interface addresses)
        // for relaying, probing and callouts; the connector is internal, hence the factories.
        services.TryAddSingleton<LocalEndpoints>();
        services.TryAddSingleton<SmtpConnector>();
        services.TryAddSingleton(sp => new MailKitRecipientVerifier(
            sp.GetRequiredService<DeliveryRouter>(),
            sp.GetRequiredService<SmtpConnector>(),
            sp.GetRequiredService<IDeliveryTlsPolicy>(),
            sp.GetRequiredService<ILogger<MailKitRecipientVerifier>>()));
        return services;
    }
}
