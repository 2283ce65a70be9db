using Azure.Identity;
using BackupMx.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace BackupMx.Functions.Tests;

public sealed class TelemetryTests
{
    [Theory]
    [InlineData("ClientId=00000000-0000-0000-0000-000000000001;Authorization=AAD")]
    [InlineData("Authorization=AAD")]
    [InlineData(" authorization = aad ; clientid = x ")]
    public void CredentialFrom_EntraIdAuthenticationString_UsesManagedIdentity(string value)
    {
        Assert.IsType<ManagedIdentityCredential>(TelemetryServiceCollectionExtensions.CredentialFrom(value));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("Authorization=Key")]
    [InlineData("ClientId=abc")]
    public void CredentialFrom_AnythingElse_LeavesKeyBasedIngestion(string? value)
    {
        Assert.Null(TelemetryServiceCollectionExtensions.CredentialFrom(value));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/")]
    public void AddBackupMxTelemetry_ListensToTheBackupMxSourceAndMeter(string? connectionString)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { [TelemetryServiceCollectionExtensions.ConnectionStringKey] = connectionString })
            .Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(TimeProvider.System);
        services.AddBackupMxTelemetry(configuration, "backupmx-test");
        using var provider = services.BuildServiceProvider();

        Assert.NotNull(provider.GetRequiredService<TracerProvider>());
        Assert.NotNull(provider.GetRequiredService<MeterProvider>());
        Assert.NotNull(provider.GetRequiredService<SpoolGauges>());
        Assert.True(Core.Telemetry.ActivitySource.HasListeners());
    }
}
