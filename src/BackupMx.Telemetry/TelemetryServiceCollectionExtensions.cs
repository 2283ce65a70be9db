// Telemetry for the Azure-mode hosts.
//
// Core emits everything under the one name "BackupMx" (ActivitySource and Meter);
// this wires that name, plus the logs, into OpenTelemetry. The Azure Monitor
// exporter is added only when APPLICATIONINSIGHTS_CONNECTION_STRING is set, so a
// host run on a laptop or in a test exports nothing and needs no network. When
// APPLICATIONINSIGHTS_AUTHENTICATION_STRING asks for Entra ID ("Authorization=AAD;
// ClientId=..."), the same setting the Functions host reads, the exporter signs in
// with that managed identity, so Application Insights can have local auth disabled.
using Azure.Core;
using Azure.Identity;
using Azure.Monitor.OpenTelemetry.Exporter;
using BackupMx.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace BackupMx.Telemetry;

public static class TelemetryServiceCollectionExtensions
{
    public const string ConnectionStringKey = "APPLICATIONINSIGHTS_CONNECTION_STRING";

    public const string AuthenticationStringKey = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING";

    /// <summary>
    /// Traces from the "BackupMx" ActivitySource, metrics from the "BackupMx" Meter (including
    /// the <see cref="SpoolGauges"/>) and logs, exported to Azure Monitor when a connection string is configured.
    /// </summary>
    /// <param name="serviceName">The cloud role name shown in Application Insights, e.g. "backupmx-receiver".</param>
    /// <returns>The builder, so a host can add its own instrumentation (the Functions worker adds its defaults).</returns>
    public static IOpenTelemetryBuilder AddBackupMxTelemetry(this IServiceCollection services, IConfiguration configuration, string serviceName)
    {
        services.AddMetrics();
        services.TryAddSingleton<SpoolGauges>();

        var builder = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(serviceName))
            .WithTracing(t => t.AddSource(Core.Telemetry.Name))
            .WithMetrics(m => m.AddMeter(Core.Telemetry.Name))
            .WithLogging(configureBuilder: null, configureOptions: o =>
            {
                o.IncludeFormattedMessage = true;
                o.IncludeScopes = true;
            });

        var connectionString = configuration[ConnectionStringKey];
        if (!string.IsNullOrWhiteSpace(connectionString))
        {
            var credential = CredentialFrom(configuration[AuthenticationStringKey]);
            builder.UseAzureMonitorExporter(o =>
            {
                o.ConnectionString = connectionString;

                // Every message's story, not a sample of it. The exporter's defaults keep at most
                // 5 traces a second (fewer still right after start) and drop the log lines of the
                // traces they leave out, so a burst of mail would lose the Intake and Forward spans
                // and the "Accepted"/"Delivered" lines that the queries in docs/operations.md read. A relay's
                // volume is small enough to keep all of it.
                o.TracesPerSecond = null;
                o.SamplingRatio = 1F;
                o.EnableTraceBasedLogsSampler = false;
                if (credential is not null)
                {
                    o.Credential = credential;
                }
            });
        }

        return builder;
    }

    /// <summary>Parses "Authorization=AAD[;ClientId=...]"; null for anything else (key-based ingestion).</summary>
    internal static TokenCredential? CredentialFrom(string? authenticationString)
    {
        if (string.IsNullOrWhiteSpace(authenticationString))
        {
            return null;
        }

        var parts = authenticationString
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => p.Split('=', 2, StringSplitOptions.TrimEntries))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1], StringComparer.OrdinalIgnoreCase);
        if (!parts.TryGetValue("Authorization", out var kind) || !string.Equals(kind, "AAD", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        return parts.TryGetValue("ClientId", out var clientId) && clientId.Length > 0
            ? new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(clientId))
            : new ManagedIdentityCredential(ManagedIdentityId.SystemAssigned);
    }
}
