// check-dns: what senders will see of this backup MX, before they see it.
//
// For this MX itself: does its host name resolve to its public addresses, and do its TLSA records
// (DANE, RFC 7672) match the certificate it serves. For each domain: its MX records (us at a
// preference strictly greater than every primary's, at least one primary, no null MX), its
// primaries (resolve, greet within the probe timeout, STARTTLS and a certificate valid for their
// name) and its MTA-STS policy (RFC 8461), which must name us or compliant senders refuse to use us.
using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using BackupMx.Core.Configuration;
using BackupMx.Delivery.Routing;
using DnsClient;
using DnsClient.Protocol;

namespace BackupMx.Delivery.DnsCheck;

/// <remarks>
/// It logs nothing: every observation, with its reason, is a finding that the caller prints.
/// </remarks>
public sealed class DnsChecker(ILookupClient lookup, MtaStsPolicyFetcher mtaSts)
{
    private readonly DnsClientResolver _resolver = new(lookup);

    /// <summary>Every finding, those about this MX first (with a null domain), then each domain's in the given order.</summary>
    public async Task<IReadOnlyList<DnsFinding>> CheckAsync(BackupMxOptions config, OwnTls tls, IReadOnlyList<DomainOptions> domains, CancellationToken cancellationToken)
    {
        var findings = new List<DnsFinding>();
        var host = config.HostName.TrimEnd('.');
        findings.Add(await CheckAddressAsync(host, config.PublicAddresses, cancellationToken).ConfigureAwait(false));
        findings.AddRange(await CheckDaneAsync(host, tls, cancellationToken).ConfigureAwait(false));
        foreach (var domain in domains)
        {
            var name = DomainName.ToAscii(domain.Name.TrimEnd('.'));
            var primaries = await CheckMxAsync(name, host, domain, config.Delivery.Port, findings, cancellationToken).ConfigureAwait(false);
            foreach (var primary in primaries)
            {
                findings.Add(await CheckPrimaryAsync(name, primary, host, domain, config.Delivery.EffectiveProbeTimeout, cancellationToken).ConfigureAwait(false));
            }

            findings.Add(await CheckMtaStsAsync(name, host, tls, cancellationToken).ConfigureAwait(false));
        }

        return findings;
    }

    internal async Task<DnsFinding> CheckAddressAsync(string host, IReadOnlyList<string> publicAddresses, CancellationToken cancellationToken)
    {
        var resolved = (await _resolver.LookupAddressesAsync(host, cancellationToken).ConfigureAwait(false)).Select(Normalize).ToList();
        if (resolved.Count == 0)
        {
            return new DnsFinding(null, "address.unresolved", FindingSeverity.ERROR, $"{host} has no A or AAAA record: senders cannot reach this MX by its name.");
        }

        var shown = string.Join(", ", resolved);
        if (publicAddresses.Count == 0)
        {
            return new DnsFinding(null, "address.not-configured", FindingSeverity.WARN,
                $"{host} resolves to {shown}; BackupMx:PublicAddresses is not set, so it cannot be checked that these are this MX's.");
        }

        var ours = publicAddresses.Select(IPAddress.Parse).Select(Normalize).ToHashSet();
        var foreign = resolved.Where(a => !ours.Contains(a)).ToList();
        return foreign.Count > 0
            ? new DnsFinding(null, "address.mismatch", FindingSeverity.ERROR,
                $"{host} resolves to {string.Join(", ", foreign)}, which is not in BackupMx:PublicAddresses ({string.Join(", ", ours)}): senders that pick it do not reach this MX.")
            : new DnsFinding(null, "address.ok", FindingSeverity.OK, $"{host} resolves to {shown}, all in BackupMx:PublicAddresses.");
    }

    /// <summary>The MX findings of <paramref name="domain"/>, and the primaries to probe.</summary>
    internal async Task<IReadOnlyList<HostPort>> CheckMxAsync(string domain, string host, DomainOptions options, int port, List<DnsFinding> findings, CancellationToken cancellationToken)
    {
        var lookupResult = await _resolver.LookupMxAsync(domain, cancellationToken).ConfigureAwait(false);
        var configured = HostPort.TryParse(options.Primary, port, out var explicitPrimary) ? [explicitPrimary.Value] : new List<HostPort>();
        if (lookupResult.Status != DnsLookupStatus.Ok)
        {
            findings.Add(new DnsFinding(domain, "mx.lookup-failed", FindingSeverity.ERROR, lookupResult.Status == DnsLookupStatus.NameDoesNotExist
                ? $"{domain} does not exist (NXDOMAIN)."
                : $"the MX lookup of {domain} failed: {lookupResult.Error}"));
            return configured;
        }

        if (lookupResult.IsNullMx)
        {
            findings.Add(new DnsFinding(domain, "mx.null", FindingSeverity.ERROR,
                $"{domain} publishes a null MX (RFC 7505): it accepts no mail, and senders will not use this backup either."));
            return configured;
        }

        var records = lookupResult.Records.OrderBy(r => r.Preference).ToList();
        var listed = string.Join(", ", records.Select(r => $"{r.Preference} {r.Host}"));
        var ourRecords = records.Where(r => string.Equals(r.Host.TrimEnd('.'), host, StringComparison.OrdinalIgnoreCase)).ToList();
        if (ourRecords.Count == 0)
        {
            findings.Add(new DnsFinding(domain, "mx.missing-backup", FindingSeverity.ERROR,
                records.Count == 0
                    ? $"{domain} has no MX record; add one for {host} at a preference greater than the primary's."
                    : $"{host} is not among the MX hosts of {domain} ({listed}): senders never try this backup."));
            return configured.Count > 0 ? configured : records.Select(r => new HostPort(r.Host.TrimEnd('.'), port)).ToList();
        }

        var ourPreference = ourRecords.Min(r => r.Preference);
        var others = records.Where(r => !ourRecords.Contains(r)).ToList();
        var primaries = others.Where(r => r.Preference < ourPreference).ToList();
        var tied = others.Where(r => r.Preference == ourPreference).ToList();
        if (tied.Count > 0)
        {
            findings.Add(new DnsFinding(domain, "mx.preference", FindingSeverity.ERROR,
                $"{host} shares preference {ourPreference} with {string.Join(", ", tied.Select(r => r.Host))}: senders use this backup while the primary is up. Give {host} a greater number."));
        }

        if (primaries.Count == 0)
        {
            findings.Add(new DnsFinding(domain, "mx.no-primary", FindingSeverity.ERROR, tied.Count > 0
                ? $"no MX host of {domain} has a preference lower than {host}'s {ourPreference} ({listed}): no primary is preferred to this backup."
                : $"{host} is the most preferred MX host of {domain} ({listed}): there is no primary, so senders deliver to this backup first."));
        }
        else if (tied.Count == 0)
        {
            findings.Add(new DnsFinding(domain, "mx.ok", FindingSeverity.OK,
                $"{host} is MX at {ourPreference}, after the primary {string.Join(", ", primaries.Select(r => $"{r.Host} at {r.Preference}"))}."));
        }

        return configured.Count > 0 ? configured : primaries.Select(r => new HostPort(r.Host.TrimEnd('.'), port)).ToList();
    }

    internal async Task<DnsFinding> CheckPrimaryAsync(string domain, HostPort primary, string ourHost, DomainOptions options, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var addresses = await _resolver.LookupAddressesAsync(primary.Host, cancellationToken).ConfigureAwait(false);
        if (addresses.Count == 0)
        {
            return new DnsFinding(domain, "primary.unresolved", FindingSeverity.ERROR, $"the primary {primary.Host} has no A or AAAA record.");
        }

        var required = options.OutboundTls == OutboundTlsMode.Required;
        SmtpGreetingResult? result = null;
        IPAddress? reached = null;
        var failures = new List<string>();
        foreach (var address in addresses)
        {
            result = await SmtpGreetingCheck.RunAsync(new IPEndPoint(address, primary.Port), primary.Host, ourHost, options.OutboundTls != OutboundTlsMode.Disabled, timeout, cancellationToken).ConfigureAwait(false);
            if (result.Greeted)
            {
                reached = address;
                break;
            }

            failures.Add($"{address}: {result.Failure}");
        }

        if (result is null || reached is null)
        {
            return new DnsFinding(domain, "primary.unreachable", FindingSeverity.ERROR,
                $"the primary {primary} does not greet ({string.Join("; ", failures)}).");
        }

        var where = $"the primary {primary.Host} ({new IPEndPoint(reached, primary.Port)}) greets in {result.Elapsed.TotalMilliseconds:0} ms";
        var severity = required ? FindingSeverity.ERROR : FindingSeverity.WARN;
        var consequence = required
            ? " and this domain's BackupMx:Domains OutboundTls is Required: mail to it stays queued."
            : "; mail to it is relayed without a verified TLS session (OutboundTls is not Required).";
        if (options.OutboundTls == OutboundTlsMode.Disabled)
        {
            return new DnsFinding(domain, "primary.ok", FindingSeverity.OK, $"{where}, {(result.OffersStartTls ? "offers" : "does not offer")} STARTTLS (not used: OutboundTls is Disabled).");
        }

        if (!result.OffersStartTls)
        {
            return new DnsFinding(domain, "primary.no-starttls", severity, $"{where} but does not offer STARTTLS{consequence}");
        }

        if (result.TlsFailure is not null)
        {
            return new DnsFinding(domain, "primary.certificate", severity, $"{where}, offers STARTTLS, but {result.TlsFailure}{consequence}");
        }

        if (result.CertificateErrors is { } errors && errors != SslPolicyErrors.None)
        {
            return new DnsFinding(domain, "primary.certificate", severity,
                $"{where}, offers STARTTLS, but its certificate is not valid for {primary.Host} ({Describe(errors)}){consequence}");
        }

        return new DnsFinding(domain, "primary.ok", FindingSeverity.OK, $"{where}, offers STARTTLS with a certificate valid for its name.");
    }

    internal async Task<DnsFinding> CheckMtaStsAsync(string domain, string host, OwnTls tls, CancellationToken cancellationToken)
    {
        var name = "_mta-sts." + domain;
        IDnsQueryResponse response;
        try
        {
            response = await lookup.QueryAsync(name, QueryType.TXT, QueryClass.IN, cancellationToken).ConfigureAwait(false);
        }
        catch (DnsResponseException ex)
        {
            return new DnsFinding(domain, "mta-sts.lookup-failed", FindingSeverity.WARN, $"the TXT lookup of {name} failed: {ex.Message}");
        }

        if (response.HasError && response.Header.ResponseCode != DnsHeaderResponseCode.NotExistentDomain)
        {
            return new DnsFinding(domain, "mta-sts.lookup-failed", FindingSeverity.WARN, $"the TXT lookup of {name} failed: {response.ErrorMessage}");
        }

        var records = response.Answers.TxtRecords().Select(t => string.Concat(t.Text))
            .Where(t => t.StartsWith("v=STSv1", StringComparison.Ordinal)).ToList();
        if (records.Count == 0)
        {
            return new DnsFinding(domain, "mta-sts.none", FindingSeverity.OK, $"{domain} publishes no MTA-STS policy ({name} has no v=STSv1 TXT record).");
        }

        var (policy, error) = await mtaSts.FetchAsync(domain, cancellationToken).ConfigureAwait(false);
        if (policy is null)
        {
            return new DnsFinding(domain, "mta-sts.fetch-failed", FindingSeverity.WARN,
                $"{name} announces a policy, but it cannot be fetched: {error}. Senders then keep a policy they cached before, or none.");
        }

        if (!policy.IsActive)
        {
            return new DnsFinding(domain, "mta-sts.ok", FindingSeverity.OK, $"the MTA-STS policy of {domain} is in mode none: senders do not apply it.");
        }

        if (!policy.Matches(host))
        {
            return new DnsFinding(domain, "mta-sts.not-listed", FindingSeverity.ERROR,
                $"the MTA-STS policy of {domain} (mode {policy.Mode}) has no mx line matching {host} ({string.Join(", ", policy.MxPatterns)}): " +
                (policy.Mode == "enforce" ? "compliant senders refuse to deliver to this backup." : "compliant senders report every delivery to this backup as a failure.") +
                $" Add 'mx: {host}' to the policy and change its id in {name}.");
        }

        if (!tls.OffersStartTls)
        {
            return new DnsFinding(domain, "mta-sts.no-starttls", FindingSeverity.ERROR,
                $"the MTA-STS policy of {domain} (mode {policy.Mode}) names {host}, but this MX offers no STARTTLS (BackupMx:Smtp:TlsCertificatePath is not set): compliant senders refuse to deliver to it.");
        }

        return new DnsFinding(domain, "mta-sts.ok", FindingSeverity.OK, $"the MTA-STS policy of {domain} (mode {policy.Mode}) names {host}.");
    }

    internal async Task<IReadOnlyList<DnsFinding>> CheckDaneAsync(string host, OwnTls tls, CancellationToken cancellationToken)
    {
        var name = "_25._tcp." + host;
        IDnsQueryResponse response;
        try
        {
            response = await lookup.QueryAsync(name, QueryType.TLSA, QueryClass.IN, cancellationToken).ConfigureAwait(false);
        }
        catch (DnsResponseException ex)
        {
            return [new DnsFinding(null, "dane.lookup-failed", FindingSeverity.WARN, $"the TLSA lookup of {name} failed: {ex.Message}")];
        }

        if (response.HasError && response.Header.ResponseCode != DnsHeaderResponseCode.NotExistentDomain)
        {
            return [new DnsFinding(null, "dane.lookup-failed", FindingSeverity.WARN, $"the TLSA lookup of {name} failed: {response.ErrorMessage}")];
        }

        var records = response.Answers.TlsaRecords().ToList();
        if (records.Count == 0)
        {
            return [new DnsFinding(null, "dane.none", FindingSeverity.OK, $"{name} has no TLSA record: DANE does not apply.")];
        }

        if (tls.Certificate is null)
        {
            return [new DnsFinding(null, "dane.no-starttls", FindingSeverity.ERROR,
                $"{name} has {records.Count} TLSA record(s), but this MX offers no STARTTLS (BackupMx:Smtp:TlsCertificatePath is not set): DANE senders do not deliver to it.")];
        }

        // RFC 7672 §3.1.3: SMTP senders treat PKIX-TA(0) and PKIX-EE(1) as unusable.
        var usable = records.Where(r => r.CertificateUsage is TlsaCertificateUsage.DANEEE or TlsaCertificateUsage.DANETA).ToList();
        if (usable.Count == 0)
        {
            return [new DnsFinding(null, "dane.unusable", FindingSeverity.WARN,
                $"{name} has only PKIX-TA/PKIX-EE TLSA records, which DANE SMTP senders treat as unusable (RFC 7672 §3.1.3); publish DANE-EE(3) or DANE-TA(2) records.")];
        }

        var matching = usable.Where(r => Matches(r, tls)).ToList();
        return matching.Count > 0
            ? [new DnsFinding(null, "dane.ok", FindingSeverity.OK,
                $"{name}: {matching.Count} of {records.Count} TLSA record(s) match the certificate this MX serves ({tls.Certificate.Subject}).")]
            : [new DnsFinding(null, "dane.mismatch", FindingSeverity.ERROR,
                $"no TLSA record of {name} matches the certificate this MX serves ({tls.Certificate.Subject}, SHA-256 {tls.Certificate.GetCertHashString(HashAlgorithmName.SHA256)}): DANE senders refuse to deliver. Publish the new record before changing the certificate.")];
    }

    /// <summary>Whether a TLSA record names the certificate served (DANE-EE) or one of its chain (DANE-TA).</summary>
    internal static bool Matches(TlsaRecord record, OwnTls tls)
    {
        IEnumerable<X509Certificate2> candidates = record.CertificateUsage == TlsaCertificateUsage.DANEEE
            ? [tls.Certificate!]
            : tls.Chain;
        return candidates.Any(c => Associate(c, record.Selector, record.MatchingType) is { } data && data.SequenceEqual(record.CertificateAssociationData));
    }

    internal static byte[]? Associate(X509Certificate2 certificate, TlsaSelector selector, TlsaMatchingType matching)
    {
        var selected = selector switch
        {
            TlsaSelector.FullCertificate => certificate.RawData,
            TlsaSelector.PublicKey => certificate.PublicKey.ExportSubjectPublicKeyInfo(),
            _ => null,
        };
        return selected is null ? null : matching switch
        {
            TlsaMatchingType.ExactMatch => selected,
            TlsaMatchingType.SHA256 => SHA256.HashData(selected),
            TlsaMatchingType.SHA512 => SHA512.HashData(selected),
            _ => null,
        };
    }

    private static string Describe(SslPolicyErrors errors)
    {
        var parts = new List<string>();
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            parts.Add("the name does not match");
        }

        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors))
        {
            parts.Add("the chain is not trusted or has expired");
        }

        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            parts.Add("no certificate");
        }

        return string.Join(", ", parts);
    }

    private static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
