using Azure.Core;
using Azure.Data.Tables;
using Azure.Identity;
using Azure.Messaging.ServiceBus;
using Azure.Storage.Blobs;
using BackupMx.Core.Configuration;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Azure;

public static class AzureServiceCollectionExtensions
{
    /// <summary>
    /// Azure mode: Blob bodies, Table spool and primary status, Service Bus wake-ups (both
    /// <see cref="IWakeUpQueue"/> and <see cref="IWakeUpSource"/>), options from
    /// <c>BackupMx:Azure</c> validated at start-up, and creation of missing storage at start when
    /// a storage connection string is configured.
    /// </summary>
    public static IServiceCollection AddBackupMxAzure(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddBackupMxAzureStorage(configuration);

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AzureOptions>, AzureServiceBusOptionsValidator>());
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<AzureOptions>>().Value;
            return string.IsNullOrWhiteSpace(o.ServiceBusConnectionString)
                ? new ServiceBusClient(o.ServiceBusNamespace, sp.GetRequiredService<TokenCredential>())
                : new ServiceBusClient(o.ServiceBusConnectionString);
        });
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<AzureOptions>>().Value;
            var client = sp.GetRequiredService<ServiceBusClient>();

            // Links open on first use, so a host that only schedules never attaches a receiver.
            var receiver = client.CreateReceiver(o.ServiceBusQueue, new ServiceBusReceiverOptions
            {
                ReceiveMode = ServiceBusReceiveMode.PeekLock,

                // Prefetched messages' locks tick while they wait; a short-lived function must not hold them.
                PrefetchCount = 0,
            });
            return new ServiceBusWakeUpQueue(client.CreateSender(o.ServiceBusQueue), receiver, sp.GetRequiredService<ILogger<ServiceBusWakeUpQueue>>());
        });
        services.AddSingleton<IWakeUpQueue>(sp => sp.GetRequiredService<ServiceBusWakeUpQueue>());
        services.AddSingleton<IWakeUpSource>(sp => sp.GetRequiredService<ServiceBusWakeUpQueue>());
        return services;
    }

    /// <summary>
    /// Only the storage half of <see cref="AddBackupMxAzure"/>: bodies, spool, primary status,
    /// their clients and, with a storage connection string, the start-up creation. No Service Bus
    /// settings are required.
    /// </summary>
    public static IServiceCollection AddBackupMxAzureStorage(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<AzureOptions>()
            .BindChecked(configuration.GetSection(AzureOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AzureOptions>, AzureStorageOptionsValidator>());

        // Managed identity in Azure, developer credentials on a workstation; never shared keys.
        services.TryAddSingleton<TokenCredential>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<AzureOptions>>().Value;
            return new DefaultAzureCredential(new DefaultAzureCredentialOptions
            {
                ManagedIdentityClientId = string.IsNullOrWhiteSpace(o.ManagedIdentityClientId) ? null : o.ManagedIdentityClientId,
            });
        });
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<AzureOptions>>().Value;
            return string.IsNullOrWhiteSpace(o.StorageConnectionString)
                ? new BlobServiceClient(o.BlobServiceUri, sp.GetRequiredService<TokenCredential>())
                : new BlobServiceClient(o.StorageConnectionString);
        });
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<AzureOptions>>().Value;
            return string.IsNullOrWhiteSpace(o.StorageConnectionString)
                ? new TableServiceClient(o.TableServiceUri, sp.GetRequiredService<TokenCredential>())
                : new TableServiceClient(o.StorageConnectionString);
        });

        services.TryAddSingleton(sp => new BlobBodyStore(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(sp.GetRequiredService<IOptions<AzureOptions>>().Value.BodiesContainer),
            sp.GetRequiredService<ILogger<BlobBodyStore>>()));
        services.TryAddSingleton(sp => new TableSpoolStore(
            sp.GetRequiredService<TableServiceClient>().GetTableClient(sp.GetRequiredService<IOptions<AzureOptions>>().Value.SpoolTable),
            sp.GetRequiredService<ILogger<TableSpoolStore>>()));
        services.TryAddSingleton(sp => new TablePrimaryStatusStore(
            sp.GetRequiredService<TableServiceClient>().GetTableClient(sp.GetRequiredService<IOptions<AzureOptions>>().Value.PrimariesTable)));

        services.TryAddSingleton<BackupMx.Core.Notifications.INoticeStateStore>(sp => new TableNoticeStateStore(
            sp.GetRequiredService<TableServiceClient>().GetTableClient(sp.GetRequiredService<IOptions<AzureOptions>>().Value.PrimariesTable)));

        services.AddSingleton<IBodyStore>(sp => sp.GetRequiredService<BlobBodyStore>());
        services.TryAddSingleton<IBodyInventory>(sp => sp.GetRequiredService<BlobBodyStore>());
        services.AddSingleton<ISpoolStore>(sp => sp.GetRequiredService<TableSpoolStore>());
        services.AddSingleton<IPrimaryStatusStore>(sp => sp.GetRequiredService<TablePrimaryStatusStore>());

        // With service URIs (managed identity, in Azure) the infrastructure has created the
        // container and tables and the identity may not create them: three calls answered 403 on
        // every start. Only a connection string (the emulator, a developer's account) gets them
        // created. Decided from the configuration as it stands now, which for the hosts includes
        // appsettings, environment variables and arguments.
        if (!string.IsNullOrWhiteSpace(configuration.GetSection(AzureOptions.SectionName)[nameof(AzureOptions.StorageConnectionString)]))
        {
            services.TryAddSingleton<AzureStorageInitializer>();
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, AzureStorageInitializer>(sp => sp.GetRequiredService<AzureStorageInitializer>()));
        }

        return services;
    }
}
