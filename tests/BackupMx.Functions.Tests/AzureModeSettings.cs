using BackupMx.Testing.Azurite;

namespace BackupMx.Functions.Tests;

/// <summary>
/// The configuration the Azure-mode tests share: one relayed domain, storage in Azurite under
/// names of their own, and a Service Bus connection string that is never contacted (the tests
/// replace the wake-up ports).
/// </summary>
internal static class AzureModeSettings
{
    public static Dictionary<string, string?> Create(AzuriteFixture azurite, string domain, string primaryHostPort, int? smtpPort = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["BackupMx:HostName"] = "mx.backup.test",
            ["BackupMx:Domains:0:Name"] = domain,
            ["BackupMx:Domains:0:Primary"] = primaryHostPort,
            ["BackupMx:Delivery:Timeout"] = "00:00:10",
            ["BackupMx:Azure:StorageConnectionString"] = azurite.ConnectionString,
            ["BackupMx:Azure:BodiesContainer"] = AzuriteFixture.UniqueName("bodies"),
            ["BackupMx:Azure:SpoolTable"] = AzuriteFixture.UniqueName("spool"),
            ["BackupMx:Azure:PrimariesTable"] = AzuriteFixture.UniqueName("primaries"),
            ["BackupMx:Azure:ServiceBusConnectionString"] = "Endpoint=sb://localhost/;SharedAccessKeyName=test;SharedAccessKey=dGVzdA==",
        };
        if (smtpPort is { } port)
        {
            settings["BackupMx:Smtp:Endpoints:0"] = $"127.0.0.1:{port}";
        }

        return settings;
    }
}
