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

            for (var j = 0; j < domain.Recipients.Count; j++)
            {
                var entry = domain.Recipients[j] ?? string.Empty;
                var at = entry.LastIndexOf('@');
                if (at <= 0 || !string.Equals(entry[(at + 1)..], domain.Name, StringComparison.OrdinalIgnoreCase) || entry.Any(char.IsWhiteSpace))
                {
                    errors.Add($"{Prefix}:Domains:{i}:Recipients:{j} '{entry}' is not an address at {domain.Name} (user@{domain.Name} or *@{domain.Name}).");
                }
            }

            for (var j = 0; j < domain.EtrnClients.Count; j++)
            {
                var entry = domain.EtrnClients[j] ?? string.Empty;
                if (!IPAddress.TryParse(entry, out _) && !IPNetwork.TryParse(entry, out _))
                {
                    errors.Add($"{Prefix}:Domains:{i}:EtrnClients:{j} '{entry}' is not an IP address or CIDR range (for example 192.0.2.10 or 2001:db8::/32).");
                }
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

        if (options.Delivery.AttemptTimeout <= TimeSpan.Zero)
        {
            errors.Add($"{Prefix}:Delivery:AttemptTimeout must be a positive TimeSpan (for example 00:05:00).");
        }
        else
        {
            if (options.Delivery.Timeout > options.Delivery.AttemptTimeout)
            {
                // One slow command would use up the whole attempt.
                errors.Add($"{Prefix}:Delivery:AttemptTimeout {options.Delivery.AttemptTimeout:c} must not be shorter than {Prefix}:Delivery:Timeout ({options.Delivery.Timeout:c}).");
            }

            var leastLease = options.Delivery.AttemptTimeout + DeliveryOptions.LeaseMargin;
            if (options.Delivery.LeaseDuration > TimeSpan.Zero && options.Delivery.LeaseDuration < leastLease)
            {
                // A lease that runs out while its attempt is still under way lets a second worker claim
                // the message and deliver it at the same time.
                errors.Add($"{Prefix}:Delivery:LeaseDuration {options.Delivery.LeaseDuration:c} must be at least {Prefix}:Delivery:AttemptTimeout ({options.Delivery.AttemptTimeout:c}) plus {DeliveryOptions.LeaseMargin:c}, or two deliveries of one message could run at once.");
            }
        }

        if (options.Delivery.IdleConnectionTimeout < TimeSpan.Zero || options.Delivery.IdleConnectionTimeout > TimeSpan.FromMinutes(5))
        {
            errors.Add($"{Prefix}:Delivery:IdleConnectionTimeout must be between 00:00:00 (no reuse) and 00:05:00.");
        }

        if (options.Delivery.Timeout <= TimeSpan.Zero)
        {
            errors.Add($"{Prefix}:Delivery:Timeout must be a positive TimeSpan.");
        }

        if (options.Delivery.ProbeTimeout is { } probeTimeout)
        {
            if (probeTimeout <= TimeSpan.Zero)
            {
                errors.Add($"{Prefix}:Delivery:ProbeTimeout must be a positive TimeSpan (for example 00:00:10).");
            }
            else if (probeTimeout > options.Delivery.Timeout && options.Delivery.Timeout > TimeSpan.Zero)
            {
                // A probe that waits longer than a delivery would call a primary up that every delivery
                // then gives up on: each probe would flush the domain into attempts that all time out.
                errors.Add($"{Prefix}:Delivery:ProbeTimeout {probeTimeout:c} must not be longer than {Prefix}:Delivery:Timeout ({options.Delivery.Timeout:c}).");
            }
        }

        if (options.Delivery.MxSessionLimit is < 1 or > 6)
        {
            errors.Add($"{Prefix}:Delivery:MxSessionLimit must be between 1 and 6.");
        }

        for (var i = 0; i < options.PublicAddresses.Count; i++)
        {
            if (!IPAddress.TryParse(options.PublicAddresses[i] ?? string.Empty, out _))
            {
                errors.Add($"{Prefix}:PublicAddresses:{i} '{options.PublicAddresses[i]}' is not an IP address.");
            }
        }

        for (var i = 0; i < options.Dns.Servers.Count; i++)
        {
            if (!HostPort.TryParse(options.Dns.Servers[i], DnsOptions.DefaultPort, out _))
            {
                errors.Add($"{Prefix}:Dns:Servers:{i} '{options.Dns.Servers[i]}' is not a host[:port] (for example 192.0.2.53, [2001:db8::53]:53 or resolver.example.net:5353).");
            }
        }

        if (options.Delivery.MaxConcurrentDeliveries is < 1 or > 256)
        {
            errors.Add($"{Prefix}:Delivery:MaxConcurrentDeliveries must be between 1 and 256.");
        }

        if (options.Delivery.Port is < 1 or > 65535)
        {
            errors.Add($"{Prefix}:Delivery:Port {options.Delivery.Port} is not a port number (1 to 65535).");
        }

        if (options.RecipientVerification.PositiveCacheDuration <= TimeSpan.Zero)
        {
            errors.Add($"{Prefix}:RecipientVerification:PositiveCacheDuration must be a positive TimeSpan (for example 7.00:00:00).");
        }

        if (options.RecipientVerification.NegativeCacheDuration <= TimeSpan.Zero)
        {
            errors.Add($"{Prefix}:RecipientVerification:NegativeCacheDuration must be a positive TimeSpan (for example 01:00:00).");
        }

        if (options.RecipientVerification.MaxCacheEntries < 1)
        {
            errors.Add($"{Prefix}:RecipientVerification:MaxCacheEntries must be at least 1.");
        }

        if (!string.IsNullOrWhiteSpace(options.Bounce.SmartHost) && !HostPort.TryParse(options.Bounce.SmartHost, 25, out _))
        {
            errors.Add($"{Prefix}:Bounce:SmartHost '{options.Bounce.SmartHost}' is not host[:port].");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
