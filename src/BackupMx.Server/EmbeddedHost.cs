using BackupMx.Admin;
using BackupMx.Core.Configuration;
using BackupMx.Core.Hosting;
using BackupMx.Delivery;
using BackupMx.Delivery.WarmUp;
using BackupMx.Local;
using BackupMx.Smtp;
using BackupMx.Smtp.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Server;

public static class EmbeddedHost
{
    /// <summary>Everything embedded mode needs, composed from Core and the adapters.</summary>
    public static IServiceCollection AddBackupMxEmbedded(this IServiceCollection services, IConfiguration configuration)
    {
        // The spool registers its start-up recovery first, so it runs before anything reads the spool.
        services.AddBackupMxLocalSpool();
        services.AddBackupMxCore(configuration);

        // Settings follow appsettings.json and SIGHUP without a restart (docs/operations.md, "Reload").
        services.AddBackupMxConfigurationReload(configuration);
        services.AddHostedService(sp => new HangupReload(
            configuration, sp.GetRequiredService<ConfigurationReload>(), sp.GetRequiredService<SmtpReceiverStatus>(), sp.GetRequiredService<ILogger<HangupReload>>()));
        services.AddBackupMxDelivery();
        services.AddHostedService<DeliveryWarmUp>();
        services.AddBackupMxInProcessScheduling();
        services.AddHostedService<SpoolFlushWatcher>();
        services.AddBackupMxSmtpReceiver(configuration);
        services.AddBackupMxAdmin(configuration);

        // Large bodies wait in the spool's folder while they arrive, on the disk they are stored to.
        services.AddOptions<SmtpReceiverOptions>().PostConfigure<IOptions<BackupMxOptions>>(
            (receiver, core) => receiver.SpillPath ??= Path.Combine(Path.GetFullPath(core.Value.Spool.Path), "incoming"));
        services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(8));
        return services;
    }

    public static HostApplicationBuilder CreateBuilder(string[] args)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.UseBackupMxDefaults();
        builder.Services.AddBackupMxEmbedded(builder.Configuration);
        return builder;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        var positional = args.Where(a => !a.StartsWith("--", StringComparison.Ordinal) && !a.Contains('=')).ToArray();
        var options = args.Except(positional).ToArray();
        if (positional.Length == 0)
        {
            var builder = CreateBuilder(options);
            using var host = builder.Build();
            return await HostRunner.RunAsync(host, "BackupMx", Console.Error).ConfigureAwait(false);
        }

        if (positional[0] == "check-dns")
        {
            return await HostRunner.RunAsync(() => CheckDnsCommand.RunAsync(positional[1..], options), "BackupMx", Console.Error).ConfigureAwait(false);
        }

        if (MessageCommands.Names.Contains(positional[0]))
        {
            return await HostRunner.RunAsync(() => MessageCommands.RunAsync(positional, options), "BackupMx", Console.Error).ConfigureAwait(false);
        }

        return await HostRunner.RunAsync(() => AdminCommands.RunAsync(positional, options), "BackupMx", Console.Error).ConfigureAwait(false);
    }
}
