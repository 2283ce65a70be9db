using Azure.Data.Tables;
using Azure.Messaging.ServiceBus;
using Azure.Storage.Blobs;
using BackupMx.Core.Hosting;
using BackupMx.Core.Ports;
using BackupMx.Testing.Azurite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace BackupMx.Azure.Tests;

public sealed class AzureOptionsTests
{
    private const string FakeServiceBus = "Endpoint=sb://localhost/;SharedAccessKeyName=test;SharedAccessKey=dGVzdA==";

    [Fact]
    public void Validate_NothingSet_NamesEveryMissingKey()
    {
        var errors = Errors(new Dictionary<string, string?>());

        Assert.Contains("BackupMx:Azure:BlobServiceUri is required when no BackupMx:Azure:StorageConnectionString is set.", errors);
        Assert.Contains("BackupMx:Azure:TableServiceUri is required when no BackupMx:Azure:StorageConnectionString is set.", errors);
        Assert.Contains(errors, e => e.StartsWith("BackupMx:Azure:ServiceBusNamespace is required when no BackupMx:Azure:ServiceBusConnectionString is set", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_ServiceUrisAndNamespace_IsValidWithDefaults()
    {
        var options = Resolve(new Dictionary<string, string?>
        {
            ["BackupMx:Azure:BlobServiceUri"] = "https://acct.blob.core.windows.net",
            ["BackupMx:Azure:TableServiceUri"] = "https://acct.table.core.windows.net",
            ["BackupMx:Azure:ServiceBusNamespace"] = "ns.servicebus.windows.net",
        });

        Assert.Equal("wakeups", options.ServiceBusQueue);
        Assert.Equal("bodies", options.BodiesContainer);
        Assert.Equal("spool", options.SpoolTable);
        Assert.Equal("primaries", options.PrimariesTable);
        Assert.Equal("verifications", options.VerificationsTable);
        Assert.Null(options.ManagedIdentityClientId);
    }

    [Theory]
    [InlineData("BackupMx:Azure:ServiceBusNamespace", "sb://ns.servicebus.windows.net/", "BackupMx:Azure:ServiceBusNamespace")]
    [InlineData("BackupMx:Azure:BodiesContainer", "Bodies_1", "BackupMx:Azure:BodiesContainer")]
    [InlineData("BackupMx:Azure:SpoolTable", "spool-table", "BackupMx:Azure:SpoolTable")]
    [InlineData("BackupMx:Azure:PrimariesTable", "1primaries", "BackupMx:Azure:PrimariesTable")]
    [InlineData("BackupMx:Azure:VerificationsTable", "verifications_1", "BackupMx:Azure:VerificationsTable")]
    [InlineData("BackupMx:Azure:ManagedIdentityClientId", "not-a-guid", "BackupMx:Azure:ManagedIdentityClientId")]
    [InlineData("BackupMx:Azure:BlobServiceUri", "ftp://acct.blob.core.windows.net", "BackupMx:Azure:BlobServiceUri")]
    [InlineData("BackupMx:Azure:ServiceBusQueue", "", "BackupMx:Azure:ServiceBusQueue")]
    public void Validate_BadValue_NamesTheKey(string key, string value, string expectedKey)
    {
        var settings = new Dictionary<string, string?>
        {
            ["BackupMx:Azure:BlobServiceUri"] = "https://acct.blob.core.windows.net",
            ["BackupMx:Azure:TableServiceUri"] = "https://acct.table.core.windows.net",
            ["BackupMx:Azure:ServiceBusNamespace"] = "ns.servicebus.windows.net",
            [key] = value,
        };

        var error = Assert.Single(Errors(settings));
        Assert.StartsWith(expectedKey + " ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ConnectionStrings_ReplaceTheUris()
    {
        Assert.Empty(Errors(new Dictionary<string, string?>
        {
            ["BackupMx:Azure:StorageConnectionString"] = "UseDevelopmentStorage=true",
            ["BackupMx:Azure:ServiceBusConnectionString"] = FakeServiceBus,
        }));
    }

    [Theory]
    [InlineData("UseDevelopmentStorage=true")]
    [InlineData("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://azurite:10000/devstoreaccount1;TableEndpoint=http://azurite:10002/devstoreaccount1;")]
    [InlineData("DefaultEndpointsProtocol=http;AccountName=other;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/other;TableEndpoint=http://localhost:10002/other;")]
    public void Validate_StorageConnectionStringOfTheEmulator_IsAccepted(string connectionString)
    {
        Assert.Empty(Errors(new Dictionary<string, string?>
        {
            ["BackupMx:Azure:StorageConnectionString"] = connectionString,
            ["BackupMx:Azure:ServiceBusNamespace"] = "ns.servicebus.windows.net",
        }));
    }

    [Theory]
    [InlineData("DefaultEndpointsProtocol=https;AccountName=prodacct;AccountKey=a2V5;EndpointSuffix=core.windows.net")]
    [InlineData("DefaultEndpointsProtocol=https;AccountName=prodacct;AccountKey=a2V5;BlobEndpoint=https://prodacct.blob.core.windows.net;TableEndpoint=http://127.0.0.1:10002/prodacct")]
    [InlineData("BlobEndpoint=https://prodacct.blob.core.windows.net;SharedAccessSignature=sv=2024&sig=x")]
    public void Validate_StorageConnectionStringOfARealAccount_IsRefusedNamingTheKey(string connectionString)
    {
        var error = Assert.Single(Errors(new Dictionary<string, string?>
        {
            ["BackupMx:Azure:StorageConnectionString"] = connectionString,
            ["BackupMx:Azure:ServiceBusNamespace"] = "ns.servicebus.windows.net",
        }));

        Assert.StartsWith("BackupMx:Azure:StorageConnectionString is for the local emulator only", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(FakeServiceBus, true)]
    [InlineData("Endpoint=sb://servicebus-emulator;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;", true)]
    [InlineData("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=a2V5", false)]
    public void Validate_ServiceBusConnectionString_OnlyForAnEmulator(string connectionString, bool accepted)
    {
        var errors = Errors(new Dictionary<string, string?>
        {
            ["BackupMx:Azure:BlobServiceUri"] = "https://acct.blob.core.windows.net",
            ["BackupMx:Azure:TableServiceUri"] = "https://acct.table.core.windows.net",
            ["BackupMx:Azure:ServiceBusConnectionString"] = connectionString,
        });

        if (accepted)
        {
            Assert.Empty(errors);
        }
        else
        {
            Assert.StartsWith("BackupMx:Azure:ServiceBusConnectionString is for a local emulator or test only", Assert.Single(errors), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void AddBackupMxAzureStorage_DoesNotRequireServiceBus()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddBackupMxAzureStorage(Configuration(new() { ["BackupMx:Azure:StorageConnectionString"] = "UseDevelopmentStorage=true" }));
        using var provider = services.BuildServiceProvider();

        Assert.NotNull(provider.GetRequiredService<IOptions<AzureOptions>>().Value);
        Assert.IsType<TableSpoolStore>(provider.GetRequiredService<ISpoolStore>());
        Assert.Null(provider.GetService<IWakeUpQueue>());
    }

    [Fact]
    public async Task AddBackupMxAzure_RegistersEveryPortAndTheClients()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddBackupMxAzure(Configuration(new()
        {
            ["BackupMx:Azure:StorageConnectionString"] = "UseDevelopmentStorage=true",
            ["BackupMx:Azure:ServiceBusConnectionString"] = FakeServiceBus,
            ["BackupMx:Azure:ServiceBusQueue"] = "q1",
            ["BackupMx:Azure:BodiesContainer"] = "mail",
            ["BackupMx:Azure:SpoolTable"] = "myspool",
        }));
        await using var provider = services.BuildServiceProvider();

        Assert.IsType<BlobBodyStore>(provider.GetRequiredService<IBodyStore>());
        Assert.Equal("mail", provider.GetRequiredService<BlobBodyStore>().Container.Name);
        Assert.IsType<TableSpoolStore>(provider.GetRequiredService<ISpoolStore>());
        Assert.Equal("myspool", provider.GetRequiredService<TableSpoolStore>().Table.Name);
        Assert.IsType<TablePrimaryStatusStore>(provider.GetRequiredService<IPrimaryStatusStore>());
        Assert.Same(provider.GetRequiredService<IWakeUpQueue>(), provider.GetRequiredService<IWakeUpSource>());
        Assert.IsType<ServiceBusWakeUpQueue>(provider.GetRequiredService<IWakeUpQueue>());
        Assert.NotNull(provider.GetRequiredService<BlobServiceClient>());
        Assert.NotNull(provider.GetRequiredService<TableServiceClient>());
        Assert.Equal("localhost", provider.GetRequiredService<ServiceBusClient>().FullyQualifiedNamespace);
        Assert.Single(provider.GetServices<IHostedService>().OfType<AzureStorageInitializer>());
    }

    [Fact]
    public void AddBackupMxAzureStorage_ConnectionString_RegistersTheStorageInitializer()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddBackupMxAzureStorage(Configuration(new() { ["BackupMx:Azure:StorageConnectionString"] = "UseDevelopmentStorage=true" }));
        using var provider = services.BuildServiceProvider();

        Assert.Single(provider.GetServices<IHostedService>().OfType<AzureStorageInitializer>());
    }

    [Fact]
    public async Task AddBackupMxAzure_ServiceUris_RegistersNoStorageInitializer()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddBackupMxAzure(Configuration(new()
        {
            ["BackupMx:Azure:BlobServiceUri"] = "https://acct.blob.core.windows.net",
            ["BackupMx:Azure:TableServiceUri"] = "https://acct.table.core.windows.net",
            ["BackupMx:Azure:ServiceBusNamespace"] = "acct.servicebus.windows.net",
        }));
        await using var provider = services.BuildServiceProvider();

        Assert.DoesNotContain(services, d => d.ServiceType == typeof(AzureStorageInitializer));
        Assert.Empty(provider.GetServices<IHostedService>());
        Assert.IsType<TableSpoolStore>(provider.GetRequiredService<ISpoolStore>());
    }

    [Fact]
    public async Task HostStart_InvalidOptions_FailsNamingTheKey()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddBackupMxAzure(Configuration(new() { ["BackupMx:Azure:BlobServiceUri"] = "https://acct.blob.core.windows.net" }));
        using var host = builder.Build();

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("BackupMx:Azure:TableServiceUri is required", ex.Message, StringComparison.Ordinal);
    }

    private static IConfiguration Configuration(Dictionary<string, string?> settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build();

    private static AzureOptions Resolve(Dictionary<string, string?> settings)
    {
        var services = new ServiceCollection().AddLogging();
        services.AddBackupMxAzure(Configuration(settings));
        using var provider = services.BuildServiceProvider();
        return provider.GetRequiredService<IOptions<AzureOptions>>().Value;
    }

    private static IReadOnlyList<string> Errors(Dictionary<string, string?> settings)
    {
        try
        {
            Resolve(settings);
            return [];
        }
        catch (OptionsValidationException ex)
        {
            return ex.Failures.ToList();
        }
    }
}

[Collection(AzuriteFixture.CollectionName)]
public sealed class AzureStorageInitializerTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task HostStart_CreatesMissingContainerAndTables_AndToleratesExistingOnes()
    {
        var container = AzuriteFixture.UniqueName("bodies");
        var spool = AzuriteFixture.UniqueName("spool");
        var primaries = AzuriteFixture.UniqueName("primaries");
        var settings = new Dictionary<string, string?>
        {
            ["BackupMx:Azure:StorageConnectionString"] = azurite.ConnectionString,
            ["BackupMx:Azure:BodiesContainer"] = container,
            ["BackupMx:Azure:SpoolTable"] = spool,
            ["BackupMx:Azure:PrimariesTable"] = primaries,
        };

        for (var run = 0; run < 2; run++)
        {
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Services.AddBackupMxAzureStorage(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
            using var host = builder.Build();
            await host.StartAsync();
            await host.StopAsync();
        }

        Assert.True((await new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(container).ExistsAsync()).Value);
        var tables = new TableServiceClient(azurite.ConnectionString);
        Assert.Single(tables.Query(t => t.Name == spool));
        Assert.Single(tables.Query(t => t.Name == primaries));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public async Task HostStart_UnreachableStorage_FailsWithOneLineNamingTheSettingAndEndpoint(int retries)
    {
        // Nothing listens there: FreePort's ports lie outside the range outgoing connections and port-0 listeners use.
        // With retries the SDK throws an AggregateException of the tries, without them the single failure.
        var port = BackupMx.Testing.FreePort.Next();
        var unreachable = azurite.ConnectionString.Replace($":{azurite.BlobPort}/", $":{port}/", StringComparison.Ordinal);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddBackupMxAzureStorage(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["BackupMx:Azure:StorageConnectionString"] = unreachable,
        }).Build());
        builder.Services.AddSingleton(new BlobServiceClient(
            unreachable,
            new BlobClientOptions { Retry = { MaxRetries = retries, Delay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(1) } }));
        using var host = builder.Build();
        var error = new StringWriter();

        var exitCode = await HostRunner.RunAsync(host, "BackupMx receiver", error);

        Assert.Equal(HostRunner.StartupFailedExitCode, exitCode);
        var line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"BackupMx receiver cannot start: could not create or open the storage container 'bodies' (BackupMx:Azure:BodiesContainer) at http://127.0.0.1:{port}/devstoreaccount1", line, StringComparison.Ordinal);
        Assert.Contains("Connection refused", line, StringComparison.Ordinal);
    }
}
