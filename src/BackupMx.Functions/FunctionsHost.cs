using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace BackupMx.Functions;

public static class FunctionsHost
{
    /// <summary>
    /// The function app's host: the Functions worker, BackupMx's services, and a service provider
    /// that checks at build time, in every environment, that each registered service can be
    /// constructed, as the other hosts do (<c>HostDefaults.UseBackupMxDefaults</c>).
    /// </summary>
    public static IHostBuilder CreateBuilder() => new HostBuilder()
        .ConfigureFunctionsWorkerDefaults()
        .UseDefaultServiceProvider(o =>
        {
            o.ValidateScopes = true;
            o.ValidateOnBuild = true;
        })
        .ConfigureServices((context, services) => services.AddBackupMxFunctions(context.Configuration));
}
