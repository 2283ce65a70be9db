using BackupMx.Core.Configuration;
using BackupMx.Core.Ports;
using BackupMx.Delivery.Dsn;
using BackupMx.Delivery.Routing;
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
        var services = new ServiceCollection();
        services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.AddSingleton(typeof(ILogger<>), typeof(NullLogger<>));
        services.AddSingleton(Microsoft.Extensions.Options.Options.Create(TestDelivery.Config()));

        services.AddBackupMxDelivery();
        using var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });

        Assert.IsType<MailKitTransport>(provider.GetRequiredService<IMessageTransport>());
        Assert.IsType<MailKitPrimaryProber>(provider.GetRequiredService<IPrimaryProber>());
        Assert.IsType<MimeKitDsnComposer>(provider.GetRequiredService<IDsnComposer>());
        Assert.IsType<DnsClientResolver>(provider.GetRequiredService<IDnsResolver>());
        Assert.IsType<LookupClient>(provider.GetRequiredService<ILookupClient>());
    }
}
