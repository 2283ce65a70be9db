namespace BackupMx.Azure;

/// <summary>
/// The <c>BackupMx:Azure</c> configuration section. In Azure the services are reached by
/// URI with a managed identity (no shared keys); the connection strings exist only for the
/// local emulator (Azurite) and tests. <see cref="AzureStorageOptionsValidator"/> and
/// <see cref="AzureServiceBusOptionsValidator"/> name the offending key at start-up.
/// </summary>
public sealed class AzureOptions
{
    public const string SectionName = "BackupMx:Azure";

    /// <summary>Blob endpoint, for example <c>https://account.blob.core.windows.net</c>. Required unless <see cref="StorageConnectionString"/> is set.</summary>
    public Uri? BlobServiceUri { get; set; }

    /// <summary>Table endpoint, for example <c>https://account.table.core.windows.net</c>. Required unless <see cref="StorageConnectionString"/> is set.</summary>
    public Uri? TableServiceUri { get; set; }

    /// <summary>Fully qualified Service Bus namespace, for example <c>x.servicebus.windows.net</c>. Required unless <see cref="ServiceBusConnectionString"/> is set.</summary>
    public string? ServiceBusNamespace { get; set; }

    /// <summary>Queue that carries scheduled wake-ups. Default <c>wakeups</c>.</summary>
    public string ServiceBusQueue { get; set; } = "wakeups";

    /// <summary>Blob container holding message bodies, one block blob per queue id. Default <c>bodies</c>.</summary>
    public string BodiesContainer { get; set; } = "bodies";

    /// <summary>Table holding spool records. Default <c>spool</c>.</summary>
    public string SpoolTable { get; set; } = "spool";

    /// <summary>Table holding each primary's last seen state. Default <c>primaries</c>.</summary>
    public string PrimariesTable { get; set; } = "primaries";

    /// <summary>Table the receiver replicas share recipient callout answers in. Default <c>verifications</c>.</summary>
    public string VerificationsTable { get; set; } = "verifications";

    /// <summary>Client id of a user-assigned managed identity; empty for the system-assigned one or developer credentials.</summary>
    public string? ManagedIdentityClientId { get; set; }

    /// <summary>Local emulator only: an Azure Storage connection string (Blob and Table endpoints). Takes precedence over the URIs.</summary>
    public string? StorageConnectionString { get; set; }

    /// <summary>Local tests only: a Service Bus connection string. Takes precedence over <see cref="ServiceBusNamespace"/>.</summary>
    public string? ServiceBusConnectionString { get; set; }
}
