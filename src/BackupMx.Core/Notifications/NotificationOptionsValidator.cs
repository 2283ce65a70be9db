using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Notifications;

/// <summary>Checks the notification settings at start-up; each failure names its key.</summary>
public sealed class NotificationOptionsValidator(IConfiguration configuration) : IValidateOptions<NotificationOptions>
{
    public ValidateOptionsResult Validate(string? name, NotificationOptions options)
    {
        var errors = new List<string>();
        const string Section = NotificationOptions.SectionName;
        if (!string.IsNullOrWhiteSpace(options.Webhook)
            && !(Uri.TryCreate(options.Webhook, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)))
        {
            errors.Add($"{Section}:Webhook '{options.Webhook}' is not an http or https URL.");
        }

        if (options.After < TimeSpan.Zero)
        {
            errors.Add($"{Section}:After must not be negative.");
        }

        if (options.Reminder < TimeSpan.FromMinutes(1))
        {
            errors.Add($"{Section}:Reminder must be at least 00:01:00.");
        }

        if (options.CheckInterval < TimeSpan.FromSeconds(1) || options.CheckInterval > TimeSpan.FromHours(1))
        {
            errors.Add($"{Section}:CheckInterval must be between 00:00:01 and 01:00:00.");
        }

        if (options.MaxAttempts is < 1 or > 50)
        {
            errors.Add($"{Section}:MaxAttempts must be between 1 and 50.");
        }

        // An owner's address in the domain itself would be mail for the server that is down.
        var domains = configuration.GetSection("BackupMx:Domains").GetChildren().ToList();
        foreach (var domain in domains)
        {
            var domainName = domain["Name"] ?? "";
            foreach (var address in domain.GetSection("NotifyAddresses").GetChildren())
            {
                var value = address.Value ?? "";
                var at = value.LastIndexOf('@');
                var key = $"BackupMx:Domains:{domain.Key}:NotifyAddresses:{address.Key}";
                if (at <= 0 || at == value.Length - 1)
                {
                    errors.Add($"{key} '{value}' is not an e-mail address.");
                }
                else if (domainName.Length > 0 && InDomain(value[(at + 1)..], domainName))
                {
                    errors.Add($"{key} '{value}' is an address of {domainName}: its mail would wait for the primary that is down. Give an address in another domain.");
                }
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static bool InDomain(string host, string domain) =>
        string.Equals(host, domain, StringComparison.OrdinalIgnoreCase)
        || host.EndsWith("." + domain, StringComparison.OrdinalIgnoreCase);
}
