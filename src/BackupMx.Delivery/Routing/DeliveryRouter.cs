// Routing: where one attempt goes.
//
// Relayed mail goes to the domain's configured Primary, or else to its MX hosts
// with a lower preference number than ours (never to ourselves or another backup:
// that loops). DSNs go to the bounce smart host when one is set, else to the
// recipient domain's MX, falling back to its A/AAAA when it has no MX (RFC 5321
// §5.1). A null MX (RFC 7505) makes a DSN undeliverable for good; for relayed mail
// it is a configuration error, so the mail stays queued and the error is logged.
//
// Ports: Delivery:Port is the primaries' port (their MX hosts, and a Primary given
// without one), since a primary can be told to listen elsewhere when port 25 is blocked
// on the way out. Nobody can tell a sender's MX that, so DSNs go to port 25, and so
// does a bounce smart host given without a port (RFC 5321 §4.5.4.2 names no other).
using System.Net;
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Delivery.Routing;

/// <summary>Hosts to try in order, or the reason there are none.</summary>
public sealed record DeliveryRoute(IReadOnlyList<HostPort> Hosts, SmtpReply? Failure = null, bool Undeliverable = false)
{
    public static DeliveryRoute Fail(SmtpReply reply, bool undeliverable = false) => new([], reply, undeliverable);
}

public sealed partial class DeliveryRouter
{
    /// <summary>The SMTP port of every MX host on the internet (RFC 5321 §4.5.4.2).</summary>
    public const int SmtpPort = 25;

    private readonly IDnsResolver _dns;
    private readonly IOptions<BackupMxOptions> _options;
    private readonly ILogger<DeliveryRouter> _logger;
    private readonly int _smtpPort;
    private readonly Random _random = new();
    private readonly Lock _randomLock = new();

    public DeliveryRouter(IDnsResolver dns, IOptions<BackupMxOptions> options, ILogger<DeliveryRouter> logger)
        : this(dns, options, logger, SmtpPort)
    {
    }

    /// <param name="smtpPort">
    /// For tests only: where DSNs and a smart host without a port go instead of 25, which a test
    /// cannot listen on. Delivery:Port must never be that seam: it is the primaries' port.
    /// </param>
    internal DeliveryRouter(IDnsResolver dns, IOptions<BackupMxOptions> options, ILogger<DeliveryRouter> logger, int smtpPort)
    {
        _dns = dns;
        _options = options;
        _logger = logger;
        _smtpPort = smtpPort;
    }

    public async Task<DeliveryRoute> RouteAsync(MessageKind kind, string domain, CancellationToken cancellationToken)
    {
        var config = _options.Value;
        var port = kind == MessageKind.Relay ? config.Delivery.Port : _smtpPort;
        if (kind == MessageKind.Relay)
        {
            var primary = config.FindDomainForDelivery(domain)?.Primary;
            if (!string.IsNullOrWhiteSpace(primary))
            {
                return HostPort.TryParse(primary, port, out var configured)
                    ? new DeliveryRoute([configured.Value])
                    : DeliveryRoute.Fail(SmtpReply.LocalTransient("4.3.5", "invalid primary configured"));
            }
        }
        else if (HostPort.TryParse(config.Bounce.SmartHost, port, out var smartHost))
        {
            return new DeliveryRoute([smartHost.Value]);
        }

        var mx = await _dns.LookupMxAsync(domain, cancellationToken).ConfigureAwait(false);
        if (mx.Status == DnsLookupStatus.Failed)
        {
            LogDnsFailed(_logger, domain, mx.Error);
            return DeliveryRoute.Fail(SmtpReply.LocalTransient("4.4.3", "DNS lookup of the destination failed"));
        }

        if (mx.Status == DnsLookupStatus.NameDoesNotExist)
        {
            return kind == MessageKind.Dsn
                ? DeliveryRoute.Fail(SmtpReply.LocalPermanent("5.1.2", "destination domain does not exist"))
                : ConfigurationError(domain, "the domain does not exist in DNS");
        }

        if (mx.IsNullMx)
        {
            return kind == MessageKind.Dsn
                ? DeliveryRoute.Fail(new SmtpReply(556, "5.1.10", "recipient domain accepts no mail (null MX)", FromRemote: false), undeliverable: true)
                : ConfigurationError(domain, "the domain publishes a null MX");
        }

        var ourNames = kind == MessageKind.Relay ? await OurNamesAsync(mx.Records, config, cancellationToken).ConfigureAwait(false) : [];
        IReadOnlyList<string> hosts;
        lock (_randomLock)
        {
            hosts = kind == MessageKind.Relay
                ? RouteSelector.SelectPrimaries(mx.Records, ourNames, _random)
                : RouteSelector.SelectAll(mx.Records, _random);
        }

        if (mx.Records.Count == 0)
        {
            if (kind == MessageKind.Relay)
            {
                return ConfigurationError(domain, "the domain has no MX records");
            }

            // RFC 5321 §5.1: no MX means the domain itself is the mail host.
            hosts = [domain];
        }

        if (hosts.Count == 0)
        {
            return ConfigurationError(domain, "no MX with a lower preference than ours");
        }

        return new DeliveryRoute(hosts.Select(h => new HostPort(h, port)).ToList());
    }

    /// <summary>
    /// Our host name, and each MX host that resolves to one of our PublicAddresses: our MX record
    /// may use another name than HostName, and without this every MX (a tertiary backup at or above
    /// our preference too) would be a candidate and mail could go round between the backups.
    /// </summary>
    private async Task<IReadOnlyCollection<string>> OurNamesAsync(IReadOnlyList<MxRecord> records, BackupMxOptions config, CancellationToken cancellationToken)
    {
        var names = new List<string> { config.HostName };
        if (config.PublicAddresses.Count == 0)
        {
            return names;
        }

        var ours = config.PublicAddresses.Select(IPAddress.Parse).Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).ToHashSet();
        foreach (var host in records.Select(r => r.Host.TrimEnd('.')).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            if (host.Length == 0 || string.Equals(host, config.HostName.TrimEnd('.'), StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var addresses = await _dns.LookupAddressesAsync(host, cancellationToken).ConfigureAwait(false);
            if (addresses.Any(a => ours.Contains(a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a)))
            {
                LogOurAddress(_logger, host);
                names.Add(host);
            }
        }

        return names;
    }

    private DeliveryRoute ConfigurationError(string domain, string problem)
    {
        // Mail for a configured domain is kept: the operator can fix DNS or set a Primary.
        LogNoPrimary(_logger, domain, problem);
        return DeliveryRoute.Fail(SmtpReply.LocalTransient("4.4.4", "no primary mail server found for the domain"));
    }

    [LoggerMessage(EventId = 3302, Level = LogLevel.Debug, Message = "MX host {Host} resolves to one of our PublicAddresses: it is this backup")]
    private static partial void LogOurAddress(ILogger logger, string host);

    [LoggerMessage(EventId = 3300, Level = LogLevel.Warning, Message = "DNS lookup for {Domain} failed: {Error}")]
    private static partial void LogDnsFailed(ILogger logger, string domain, string? error);

    [LoggerMessage(EventId = 3301, Level = LogLevel.Error, Message = "No primary for {Domain}: {Problem}; mail stays queued until DNS or the Primary setting is fixed")]
    private static partial void LogNoPrimary(ILogger logger, string domain, string problem);
}
