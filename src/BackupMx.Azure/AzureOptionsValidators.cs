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

        if (string.IsNullOrWhiteSpace(options.BodiesContainer) || !ContainerName().IsMatch(options.BodiesContainer))
        {
            errors.Add($"{Prefix}:BodiesContainer '{options.BodiesContainer}' is not a valid container name (3-63 lower-case letters, digits and single hyphens).");
        }

        CheckTableName(errors, "SpoolTable", options.SpoolTable);
        CheckTableName(errors, "PrimariesTable", options.PrimariesTable);

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

        if (string.IsNullOrWhiteSpace(options.ServiceBusQueue) || options.ServiceBusQueue.Length > 260)
        {
            errors.Add($"{Prefix}:ServiceBusQueue is required (default 'wakeups').");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    [GeneratedRegex(@"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$")]
    private static partial Regex NamespaceName();
}
