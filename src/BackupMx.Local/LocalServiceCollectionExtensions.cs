using BackupMx.Core.Configuration;
using BackupMx.Core.Ports;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Local;

public static class LocalServiceCollectionExtensions
{
    /// <summary>
    /// The embedded spool in <c>BackupMx:Spool:Path</c> (relative to the current directory):
    /// <see cref="LocalBodyStore"/> as <see cref="IBodyStore"/>, <see cref="SqliteSpoolStore"/> as
    /// <see cref="ISpoolStore"/> and <see cref="IFlushEpochStore"/>, <see cref="SqlitePrimaryStatusStore"/> as <see cref="IPrimaryStatusStore"/>
    /// and <see cref="LocalSpoolInitializer"/>, which does its work
    /// before any hosted service starts.
    /// </summary>
    public static IServiceCollection AddBackupMxLocalSpool(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new FileBodyStore(SpoolPath(sp), sp.GetService<ILogger<FileBodyStore>>()));
        services.TryAddSingleton(sp => new SqliteSpoolStore(SpoolPath(sp), sp.GetService<ILogger<SqliteSpoolStore>>()));
        services.AddSingleton<IBodyStore>(sp => new LocalBodyStore(sp.GetRequiredService<FileBodyStore>(), sp.GetRequiredService<SqliteSpoolStore>()));
        services.AddSingleton<ISpoolStore>(sp => sp.GetRequiredService<SqliteSpoolStore>());
        services.AddSingleton<IFlushEpochStore>(sp => sp.GetRequiredService<SqliteSpoolStore>());
        services.TryAddSingleton(sp => new SqlitePrimaryStatusStore(sp.GetRequiredService<SqliteSpoolStore>(), sp.GetService<ILogger<SqlitePrimaryStatusStore>>()));
        services.AddSingleton<IPrimaryStatusStore>(sp => sp.GetRequiredService<SqlitePrimaryStatusStore>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, LocalSpoolInitializer>());

        return services;
    }

    /// <summary>
    /// Opens the registered spool stores without the relay's start-up recovery, for an operator
    /// command that runs beside the relay and never starts its host. It creates what is missing,
    /// so the caller checks first that the spool exists.
    /// </summary>
    public static Task OpenLocalSpoolAsync(this IServiceProvider services, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(services);
        return LocalSpoolInitializer.OpenStoresAsync(
            services.GetRequiredService<SqliteSpoolStore>(),
            services.GetRequiredService<FileBodyStore>(),
            services.GetRequiredService<SqlitePrimaryStatusStore>(),
            cancellationToken);
    }

    // Only resolves the path: the folder is created by the stores' start-up step.
    private static string SpoolPath(IServiceProvider services) =>
        Path.GetFullPath(services.GetRequiredService<IOptions<BackupMxOptions>>().Value.Spool.Path);
}
