using BackupMx.Core.Ports;
using BackupMx.Functions;
using BackupMx.Receiver;
using BackupMx.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace BackupMx.Architecture.Tests;

/// <summary>
/// Each host checks its whole composition when it is built, in production too, so a missing
/// adapter stops the start instead of the first message that needs it.
/// </summary>
public sealed class HostCompositionTests
{
    private static readonly string[] Production = ["--environment", "Production"];

    [Fact]
    public void EmbeddedHost_Production_BuildsWithEveryServiceResolvable()
    {
        using var host = EmbeddedHost.CreateBuilder(Production).Build();
        Assert.NotNull(host.Services.GetRequiredService<IMessageTransport>());
    }

    [Fact]
    public void EmbeddedHost_ProductionWithoutTransport_FailsToBuild()
    {
        var builder = EmbeddedHost.CreateBuilder(Production);
        builder.Services.RemoveAll<IMessageTransport>();
        var error = Assert.Throws<AggregateException>(() => builder.Build());
        Assert.Contains(nameof(IMessageTransport), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EmbeddedHost_Production_CallsOutDirectlyWithOneVerifier()
    {
        var builder = EmbeddedHost.CreateBuilder(Production);
        Assert.Single(builder.Services, d => d.ServiceType == typeof(IRecipientVerifier));
        using var host = builder.Build();
        Assert.IsType<Delivery.MailKitRecipientVerifier>(host.Services.GetRequiredService<IRecipientVerifier>());
    }

    [Fact]
    public void ReceiverHost_Production_RegistersOneVerifierBehindTheSharedTable()
    {
        var builder = ReceiverHost.CreateBuilder(Production);
        var verifier = Assert.Single(builder.Services, d => d.ServiceType == typeof(IRecipientVerifier));
        using var host = builder.Build();

        // Its callout (the function app or the primary) is chosen from the options when resolved.
        Assert.True(host.Services.GetRequiredService<IServiceProviderIsService>().IsService(typeof(Azure.TableCachedRecipientVerifier)));
        Assert.NotNull(verifier.ImplementationFactory);
    }

    [Fact]
    public void FunctionsHost_Production_RegistersOneVerifier()
    {
        IServiceCollection? services = null;
        using var host = FunctionsHost.CreateBuilder()
            .UseEnvironment(Environments.Production)
            .ConfigureServices(s => services = s)
            .Build();
        Assert.NotNull(services);
        Assert.Single(services, d => d.ServiceType == typeof(IRecipientVerifier));
    }

    [Fact]
    public void ReceiverHost_Production_BuildsWithoutForwardingServices()
    {
        using var host = ReceiverHost.CreateBuilder(Production).Build();
        Assert.Null(host.Services.GetService<Core.Forwarding.MessageForwarder>());
        Assert.Null(host.Services.GetService<IMessageTransport>());
    }

    [Fact]
    public void ReceiverHost_ProductionWithoutWakeUpQueue_FailsToBuild()
    {
        var builder = ReceiverHost.CreateBuilder(Production);
        builder.Services.RemoveAll<IWakeUpQueue>();
        var error = Assert.Throws<AggregateException>(() => builder.Build());
        Assert.Contains(nameof(IWakeUpQueue), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FunctionsHost_Production_BuildsWithEveryServiceResolvable()
    {
        // Built, not resolved: the Azure clients' options need settings that only Azure has.
        using var host = FunctionsHost.CreateBuilder().UseEnvironment(Environments.Production).Build();
        Assert.True(host.Services.GetRequiredService<IServiceProviderIsService>().IsService(typeof(Core.Forwarding.MessageForwarder)));
    }

    [Fact]
    public void FunctionsHost_ProductionWithoutTransport_FailsToBuild()
    {
        var builder = FunctionsHost.CreateBuilder()
            .UseEnvironment(Environments.Production)
            .ConfigureServices(s => s.RemoveAll<IMessageTransport>());
        var error = Assert.Throws<AggregateException>(() => builder.Build());
        Assert.Contains(nameof(IMessageTransport), error.Message, StringComparison.Ordinal);
    }
}
