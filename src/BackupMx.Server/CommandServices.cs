using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupMx.Server;

/// <summary>
/// The configuration and services of an operator command, composed without the generic host.
/// A command is a short process whose start-up is most of its time: building a host brings file
/// watchers, logging providers and the relay's whole composition, all compiled before the first
/// answer (the runtime compiles every method fully optimised, see the project file). A command
/// composes only what it uses.
/// </summary>
internal static class CommandServices
{
    /// <summary>
    /// The relay's configuration sources in the generic host's order, so that a command reads the
    /// same settings as the relay: DOTNET_-prefixed environment variables, appsettings.json and
    /// appsettings.{environment}.json next to the program (the content root), environment
    /// variables, the command line. Read once: a command does not follow changes.
    /// </summary>
    public static IConfigurationRoot LoadConfiguration(string[] args)
    {
        var builder = new ConfigurationBuilder().AddEnvironmentVariables(prefix: "DOTNET_").AddCommandLine(args);
        var environment = builder.Build()[HostDefaults.EnvironmentKey] is { Length: > 0 } name ? name : Environments.Production;
        return builder
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true, reloadOnChange: false)
            .AddJsonFile($"appsettings.{environment}.json", optional: true, reloadOnChange: false)
            .AddEnvironmentVariables()
            .AddCommandLine(args)
            .Build();
    }

    /// <summary>
    /// A service provider over <paramref name="configuration"/> with what <paramref name="compose"/>
    /// adds. Loggers log nothing: a command's output is its answer, and what went wrong is said on
    /// standard error by the command itself.
    /// </summary>
    public static ServiceProvider Build(IConfiguration configuration, Action<IServiceCollection> compose)
    {
        var services = new ServiceCollection();
        services.AddSingleton(configuration);
        services.TryAddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.TryAdd(ServiceDescriptor.Singleton(typeof(ILogger<>), typeof(NullLogger<>)));
        compose(services);
        return services.BuildServiceProvider();
    }
}
