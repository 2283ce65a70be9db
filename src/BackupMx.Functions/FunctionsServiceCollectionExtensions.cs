using BackupMx.Azure;
using BackupMx.Core.Configuration;
using BackupMx.Core.Expiry;
using BackupMx.Core.Hosting;
using BackupMx.Core.Notifications;
using BackupMx.Dashboard;
using BackupMx.Delivery;
using BackupMx.Telemetry;
using Microsoft.Azure.Functions.Worker.OpenTelemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Resources;

namespace BackupMx.Functions;

public static class FunctionsServiceCollectionExtensions
{
    public const string ServiceName = "backupmx-functions";

    /// <summary>
    /// Everything the function app needs: Core, the Azure adapters (Blob, Table, Service Bus),
    /// outbound delivery, the functions' own options, and telemetry.
    /// </summary>
    public static IServiceCollection AddBackupMxFunctions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddBackupMxCore(configuration);
        services.AddBackupMxAzure(configuration);
        services.AddBackupMxDelivery();
        services.AddBackupMxFunctionOptions(configuration);
        services.TryAddSingleton<OrphanBodySweeper>();
        services.TryAddSingleton<AdminRole>();
        services.TryAddSingleton<DashboardSite>();
        services.AddBackupMxNotifications(configuration);
        services.AddBackupMxTelemetry(configuration, ServiceName)
            .UseFunctionsWorkerDefaults()

            // The worker's resource detector names the service after the function app or the
            // process, overriding ours; docs/operations.md gives cloud_RoleName as backupmx-functions.
            .ConfigureResource(r => r.AddService(ServiceName, autoGenerateServiceInstanceId: false));
        return services;
    }

    /// <summary>The BackupMx:Functions section, validated at start-up.</summary>
    public static IServiceCollection AddBackupMxFunctionOptions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<FunctionsOptions>()
            .BindChecked(configuration.GetSection(FunctionsOptions.SectionName))
            .ValidateDataAnnotations()
            .Validate<IOptions<BackupMxOptions>>(
                (functions, core) => functions.ForwardTimeBudget + core.Value.Delivery.AttemptTimeout + FunctionsOptions.SettleMargin <= FunctionsOptions.FunctionTimeout,
                $"{FunctionsOptions.SectionName}:ForwardTimeBudget plus {BackupMxOptions.SectionName}:Delivery:AttemptTimeout plus {FunctionsOptions.SettleMargin:c} must fit in the function timeout ({FunctionsOptions.FunctionTimeout:c}, functionTimeout in host.json): a delivery started at the end of a run must end before the host stops the run.")
            .ValidateOnStart();
        return services;
    }
}
