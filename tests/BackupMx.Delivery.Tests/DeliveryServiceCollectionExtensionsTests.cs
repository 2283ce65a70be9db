using BackupMx.Core.Configuration;
using BackupMx.Core.Ports;
using BackupMx.Delivery.Dsn;
using BackupMx.Delivery.Routing;
using BackupMx.Delivery.Smtp;
using BackupMx.Testing;
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

    [Fact]
    public void AddBackupMxRecipientCallouts_OnlyTheVerifier_RegisteredAsItselfForTheHostToChoose()
    {
        var services = new ServiceCollection();
        services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.AddSingleton(typeof(ILogger<>), typeof(NullLogger<>));
        services.AddSingleton(Microsoft.Extensions.Options.Options.Create(TestDelivery.Config()));
        services.AddBackupMxRecipientCallouts();
        using var provider = Provider(services);

        // The receiver wraps it; only a forwarding host's AddBackupMxDelivery makes it the verifier.
        Assert.NotNull(provider.GetRequiredService<MailKitRecipientVerifier>());
        Assert.Null(provider.GetService<IRecipientVerifier>());
        Assert.Null(provider.GetService<IMessageTransport>());
        Assert.Null(provider.GetService<IPrimaryProber>());
        Assert.Null(provider.GetService<IDsnComposer>());
    }

    [Fact]
    public async Task AddBackupMxDelivery_DnsServersConfigured_RoutesByTheirAnswers()
    {
        using var dns = new TestDnsServer();
        dns.Mx("example.com", 10, "primary.example.com").Mx("example.com", 20, TestDelivery.OurHost);
        var config = TestDelivery.Config();
        config.Dns.Servers = [dns.Address];
        var services = new ServiceCollection();
        services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.AddSingleton(typeof(ILogger<>), typeof(NullLogger<>));
        services.AddSingleton(Microsoft.Extensions.Options.Options.Create(config));
        services.AddBackupMxDelivery();
        using var provider = Provider(services);

        var route = await provider.GetRequiredService<DeliveryRouter>().RouteAsync(Core.Model.MessageKind.Relay, "example.com", default);

        Assert.Null(route.Failure);
        Assert.Equal([new HostPort("primary.example.com", 25)], route.Hosts);
        Assert.True(dns.Queries > 0);
    }

    [Fact]
    public void LookupClientFactory_UnresolvableServerName_NamesTheKey()
    {
        var ex = Assert.Throws<Core.Hosting.StartupException>(() =>
            LookupClientFactory.NameServers(new DnsOptions { Servers = ["127.0.0.1:5353", "no-such-resolver.invalid"] }));

        Assert.StartsWith("BackupMx:Dns:Servers:1 'no-such-resolver.invalid' does not resolve", ex.Message, StringComparison.Ordinal);
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
