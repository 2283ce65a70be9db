using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace BackupMx.Azure;

/// <summary>
/// Storage settings. Checked at start-up so that a missing endpoint stops the host with the
/// key to fix rather than failing on the first message (which would answer 451 forever).
/// </summary>
public sealed partial class AzureStorageOptionsValidator : IValidateOptions<AzureOptions>
{
    private const string Prefix = AzureOptions.SectionName;

    public ValidateOptionsResult Validate(string? name, AzureOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.StorageConnectionString))
        {
            CheckServiceUri(errors, "BlobServiceUri", options.BlobServiceUri);
            CheckServiceUri(errors, "TableServiceUri", options.TableServiceUri);
        }
        else if (!EmulatorConnectionString.IsStorageEmulator(options.StorageConnectionString))
        {
            errors.Add($"{Prefix}:StorageConnectionString is for the local emulator only (UseDevelopmentStorage=true, the devstoreaccount1 account or loopback endpoints); in Azure set {Prefix}:BlobServiceUri and {Prefix}:TableServiceUri and use a managed identity.");
        }

        if (string.IsNullOrWhiteSpace(options.BodiesContainer) || !ContainerName().IsMatch(options.BodiesContainer))
        {
            errors.Add($"{Prefix}:BodiesContainer '{options.BodiesContainer}' is not a valid container name (3-63 lower-case letters, digits and single hyphens).");
        }

        CheckTableName(errors, "SpoolTable", options.SpoolTable);
        CheckTableName(errors, "PrimariesTable", options.PrimariesTable);
        CheckTableName(errors, "VerificationsTable", options.VerificationsTable);

        if (!string.IsNullOrWhiteSpace(options.ManagedIdentityClientId) && !Guid.TryParse(options.ManagedIdentityClientId, out _))
        {
            errors.Add($"{Prefix}:ManagedIdentityClientId '{options.ManagedIdentityClientId}' is not a client id (a GUID).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void CheckServiceUri(List<string> errors, string key, Uri? uri)
    {
        if (uri is null)
        {
            errors.Add($"{Prefix}:{key} is required when no {Prefix}:StorageConnectionString is set.");
        }
        else if (!uri.IsAbsoluteUri || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            errors.Add($"{Prefix}:{key} '{uri}' must be an absolute https:// URI.");
        }
    }

    private static void CheckTableName(List<string> errors, string key, string? value)
    {
        if (string.IsNullOrWhiteSpace(value) || !TableName().IsMatch(value) || value.Equals("tables", StringComparison.OrdinalIgnoreCase))
        {
            errors.Add($"{Prefix}:{key} '{value}' is not a valid table name (3-63 letters and digits, starting with a letter).");
        }
    }

    [GeneratedRegex("^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")]
    private static partial Regex ContainerName();

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9]{2,62}$")]
    private static partial Regex TableName();
}

/// <summary>Service Bus settings; only registered by hosts that schedule or receive wake-ups.</summary>
public sealed partial class AzureServiceBusOptionsValidator : IValidateOptions<AzureOptions>
{
    private const string Prefix = AzureOptions.SectionName;

    public ValidateOptionsResult Validate(string? name, AzureOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ServiceBusConnectionString))
        {
            if (string.IsNullOrWhiteSpace(options.ServiceBusNamespace))
            {
                errors.Add($"{Prefix}:ServiceBusNamespace is required when no {Prefix}:ServiceBusConnectionString is set (for example x.servicebus.windows.net).");
            }
            else if (!NamespaceName().IsMatch(options.ServiceBusNamespace))
            {
                // The SDK wants the bare host name; a URL or connection string here is the usual mistake.
                errors.Add($"{Prefix}:ServiceBusNamespace '{options.ServiceBusNamespace}' must be a fully qualified host name such as x.servicebus.windows.net, without scheme or path.");
            }
        }
        else if (!EmulatorConnectionString.IsServiceBusEmulator(options.ServiceBusConnectionString))
        {
            errors.Add($"{Prefix}:ServiceBusConnectionString is for a local emulator or test only (UseDevelopmentEmulator=true or a loopback endpoint); in Azure set {Prefix}:ServiceBusNamespace and use a managed identity.");
        }

        if (string.IsNullOrWhiteSpace(options.ServiceBusQueue) || options.ServiceBusQueue.Length > 260)
        {
            errors.Add($"{Prefix}:ServiceBusQueue is required (default 'wakeups').");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    [GeneratedRegex(@"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$")]
    private static partial Regex NamespaceName();
}

/// <summary>
/// Connection strings carry keys, and in Azure every service is reached with the managed identity
/// (shared keys are disabled there). So a connection string is accepted only when it points at a
/// local emulator, which keeps a key-based setup from reaching production by accident.
/// </summary>
internal static class EmulatorConnectionString
{
    /// <summary>The account name every storage emulator (Azurite, the old Storage Emulator) uses.</summary>
    private const string EmulatorAccount = "devstoreaccount1";

    public static bool IsStorageEmulator(string connectionString)
    {
        var parts = Parse(connectionString);
        if (parts.TryGetValue("UseDevelopmentStorage", out var dev) && bool.TryParse(dev, out var isDev) && isDev)
        {
            return true;
        }

        if (parts.TryGetValue("AccountName", out var account) && string.Equals(account, EmulatorAccount, StringComparison.Ordinal))
        {
            return true;
        }

        var endpoints = parts.Where(p => p.Key.EndsWith("Endpoint", StringComparison.OrdinalIgnoreCase)).Select(p => p.Value).ToList();
        return endpoints.Count > 0 && endpoints.All(IsLoopback);
    }

    public static bool IsServiceBusEmulator(string connectionString)
    {
        var parts = Parse(connectionString);
        if (parts.TryGetValue("UseDevelopmentEmulator", out var dev) && bool.TryParse(dev, out var isDev) && isDev)
        {
            return true;
        }

        return parts.TryGetValue("Endpoint", out var endpoint) && IsLoopback(endpoint);
    }

    private static bool IsLoopback(string endpoint)
    {
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri))
        {
            return false;
        }

        return uri.IsLoopback || string.Equals(uri.Host, "localhost", StringComparison.OrdinalIgnoreCase);
    }

    private static Dictionary<string, string> Parse(string connectionString) =>
        connectionString
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => p.Split('=', 2, StringSplitOptions.TrimEntries))
            .Where(p => p.Length == 2)
            .GroupBy(p => p[0], StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.Last()[1], StringComparer.OrdinalIgnoreCase);
}
