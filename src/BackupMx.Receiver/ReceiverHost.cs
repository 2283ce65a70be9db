using BackupMx.Azure;
using BackupMx.Core.Hosting;
using BackupMx.Receiver.Callouts;
using BackupMx.Smtp;
using BackupMx.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace BackupMx.Receiver;

public static class ReceiverHost
{
    public const string ServiceName = "backupmx-receiver";

    /// <summary>
    /// The Azure-mode receiver: SMTP in, Core's intake, the Azure adapters for bodies, state and
    /// wake-ups. No forwarding, probing or sweeping here: the function app does those. Recipient
    /// callouts (VerifyRecipients) are asked for at RCPT time, through the function app when
    /// BackupMx:Receiver:CalloutUrl is set, else directly; their answers are shared by all
    /// replicas through a table.
    /// </summary>
    public static IServiceCollection AddBackupMxReceiver(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddBackupMxCoreIntake(configuration);
        services.AddBackupMxAzure(configuration);
        services.AddBackupMxReceiverCallouts(configuration);
        services.AddBackupMxSmtpReceiver(configuration);
        services.AddBackupMxTelemetry(configuration, ServiceName);

        // Container Apps allows 30 s after SIGTERM; sessions in progress get the receiver's grace period within that.
        services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));
        return services;
    }

    public static HostApplicationBuilder CreateBuilder(string[] args)
    {
        var builder = Host.CreateApplicationBuilder(args);

        builder.UseBackupMxDefaults();
        builder.Services.AddBackupMxReceiver(builder.Configuration);
        return builder;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        using var host = CreateBuilder(args).Build();
        return await HostRunner.RunAsync(host, "BackupMx receiver", Console.Error).ConfigureAwait(false);
    }
}
