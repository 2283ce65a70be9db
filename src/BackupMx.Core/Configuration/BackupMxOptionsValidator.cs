using System.Net;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Configuration;

/// <summary>
/// Checks what data annotations cannot: lists, nested items and formats. Every
/// message names the full configuration key, so a bad setting is found at once.
/// </summary>
public sealed class BackupMxOptionsValidator : IValidateOptions<BackupMxOptions>
{
    private const string Prefix = BackupMxOptions.SectionName;

    public ValidateOptionsResult Validate(string? name, BackupMxOptions options)
    {
        var errors = new List<string>();

        if (string.IsNullOrWhiteSpace(options.HostName))
        {
            errors.Add($"{Prefix}:HostName is required: the host name of this MX.");
        }

        for (var i = 0; i < options.Smtp.Endpoints.Count; i++)
        {
            if (!IPEndPoint.TryParse(options.Smtp.Endpoints[i] ?? string.Empty, out var endpoint) || endpoint.Port == 0)
            {
                errors.Add($"{Prefix}:Smtp:Endpoints:{i} '{options.Smtp.Endpoints[i]}' is not an ip:port (for example 0.0.0.0:25 or [::]:25).");
            }
        }

        if (options.Smtp.MaxMessageBytes < 1024)
        {
            errors.Add($"{Prefix}:Smtp:MaxMessageBytes must be at least 1024.");
        }

        if (options.Smtp.MaxRecipients < 100)
        {
            errors.Add($"{Prefix}:Smtp:MaxRecipients must be at least 100 (RFC 5321 §4.5.3.1.8).");
        }

        if (options.Smtp.SessionTimeout <= TimeSpan.Zero)
        {
            errors.Add($"{Prefix}:Smtp:SessionTimeout must be positive.");
        }

        if (options.Smtp.CommandTimeout <= TimeSpan.Zero)
        {
            errors.Add($"{Prefix}:Smtp:CommandTimeout must be positive.");
        }

        if (options.Domains.Count == 0)
        {
            errors.Add($"{Prefix}:Domains must list at least one domain to relay for.");
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < options.Domains.Count; i++)
        {
            var domain = options.Domains[i];
            if (string.IsNullOrWhiteSpace(domain.Name) || domain.Name.Contains('@') || domain.Name.Any(char.IsWhiteSpace) || !domain.Name.Contains('.'))
            {
                errors.Add($"{Prefix}:Domains:{i}:Name '{domain.Name}' is not a domain name.");
            }
            else if (!seen.Add(domain.Name))
            {
                errors.Add($"{Prefix}:Domains:{i}:Name '{domain.Name}' is listed twice.");
            }

            if (!string.IsNullOrWhiteSpace(domain.Primary) && !HostPort.TryParse(domain.Primary, 25, out _))
            {
                errors.Add($"{Prefix}:Domains:{i}:Primary '{domain.Primary}' is not host[:port].");
            }
        }

        var intervals = options.Delivery.RetryIntervals;
        for (var i = 0; i < intervals.Count; i++)
        {
            if (intervals[i] <= TimeSpan.Zero)
            {
                errors.Add($"{Prefix}:Delivery:RetryIntervals:{i} must be a positive TimeSpan (for example 00:05:00).");
            }
        }

        if (options.Delivery.Retention <= TimeSpan.Zero)
        {
            errors.Add($"{Prefix}:Delivery:Retention must be a positive TimeSpan (for example 5.00:00:00).");
        }

        if (options.Delivery.ProbeInterval <= TimeSpan.Zero)
        {
            errors.Add($"{Prefix}:Delivery:ProbeInterval must be a positive TimeSpan (for example 00:00:30).");
        }

        if (options.Delivery.LeaseDuration <= TimeSpan.Zero)
        {
            errors.Add($"{Prefix}:Delivery:LeaseDuration must be a positive TimeSpan.");
        }

        if (options.Delivery.Timeout <= TimeSpan.Zero)
        {
            errors.Add($"{Prefix}:Delivery:Timeout must be a positive TimeSpan.");
        }

        if (options.Delivery.MaxConcurrentDeliveries is < 1 or > 256)
        {
            errors.Add($"{Prefix}:Delivery:MaxConcurrentDeliveries must be between 1 and 256.");
        }

        if (!string.IsNullOrWhiteSpace(options.Bounce.SmartHost) && !HostPort.TryParse(options.Bounce.SmartHost, 25, out _))
        {
            errors.Add($"{Prefix}:Bounce:SmartHost '{options.Bounce.SmartHost}' is not host[:port].");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
