using BackupMx.Core.Configuration;
using BackupMx.Core.Ports;
using BackupMx.Delivery.Dsn;
using BackupMx.Delivery.Routing;
using BackupMx.Delivery.Smtp;
using DnsClient;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupMx.Delivery.Tests;

public sealed class DeliveryServiceCollectionExtensionsTests
{
    [Fact]
    public void AddBackupMxDelivery_ResolvesEveryPort()
    {
        using var provider = Provider(Services());

        Assert.IsType<MailKitTransport>(provider.GetRequiredService<IMessageTransport>());
        Assert.IsType<MailKitPrimaryProber>(provider.GetRequiredService<IPrimaryProber>());
        Assert.IsType<MimeKitDsnComposer>(provider.GetRequiredService<IDsnComposer>());
        Assert.IsType<DnsClientResolver>(provider.GetRequiredService<IDnsResolver>());
        Assert.IsType<LookupClient>(provider.GetRequiredService<ILookupClient>());
    }

    [Fact]
    public void AddBackupMxDelivery_TransportProberAndVerifier_ShareOneConnector()
    {
        var services = Services();
        using var provider = Provider(services);

        var connector = provider.GetRequiredService<SmtpConnector>();
        Assert.Same(connector, Assert.IsType<MailKitTransport>(provider.GetRequiredService<IMessageTransport>()).Connector);
        Assert.Same(connector, Assert.IsType<MailKitPrimaryProber>(provider.GetRequiredService<IPrimaryProber>()).Connector);
        Assert.Same(connector, Assert.IsType<MailKitRecipientVerifier>(provider.GetRequiredService<IRecipientVerifier>()).Connector);
        Assert.Single(services, d => d.ServiceType == typeof(LocalEndpoints));
    }

    private static ServiceCollection Services()
    {
        var services = new ServiceCollection();
        services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.AddSingleton(typeof(ILogger<>), typeof(NullLogger<>));
        services.AddSingleton(Microsoft.Extensions.Options.Options.Create(TestDelivery.Config()));
        services.AddBackupMxDelivery();
        return services;
    }

    private static ServiceProvider Provider(ServiceCollection services) =>
        services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
}
