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
    /// <see cref="FileBodyStore"/> as <see cref="IBodyStore"/>, <see cref="SqliteSpoolStore"/> as
    /// <see cref="ISpoolStore"/>, <see cref="SqlitePrimaryStatusStore"/> as <see cref="IPrimaryStatusStore"/>
    /// and <see cref="LocalSpoolInitializer"/>, which does its work
    /// before any hosted service starts.
    /// </summary>
    public static IServiceCollection AddBackupMxLocalSpool(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new FileBodyStore(SpoolPath(sp), sp.GetService<ILogger<FileBodyStore>>()));
        services.TryAddSingleton(sp => new SqliteSpoolStore(SpoolPath(sp), sp.GetService<ILogger<SqliteSpoolStore>>()));
        services.AddSingleton<IBodyStore>(sp => sp.GetRequiredService<FileBodyStore>());
        services.AddSingleton<ISpoolStore>(sp => sp.GetRequiredService<SqliteSpoolStore>());
        services.TryAddSingleton(sp => new SqlitePrimaryStatusStore(sp.GetRequiredService<SqliteSpoolStore>(), sp.GetService<ILogger<SqlitePrimaryStatusStore>>()));
        services.AddSingleton<IPrimaryStatusStore>(sp => sp.GetRequiredService<SqlitePrimaryStatusStore>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, LocalSpoolInitializer>());

        return services;
    }

    private static string SpoolPath(IServiceProvider services)
    {
        var path = Path.GetFullPath(services.GetRequiredService<IOptions<BackupMxOptions>>().Value.Spool.Path);
        Directory.CreateDirectory(path);
        return path;
    }
}
