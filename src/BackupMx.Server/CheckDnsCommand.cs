using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using BackupMx.Core.Configuration;
using BackupMx.Core.Hosting;
using BackupMx.Delivery.DnsCheck;
using BackupMx.Delivery.Routing;
using BackupMx.Smtp;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace BackupMx.Server;

/// <summary>
/// <c>check-dns [DOMAIN...] [--json]</c>: what senders will see of this backup, from the DNS
/// (BackupMx:Dns:Servers or the system's resolvers) and the network. Needs no spool and no
/// running relay. Exit 0 when nothing is an ERROR, 1 otherwise. See docs/check-dns.md.
/// </summary>
internal static class CheckDnsCommand
{
    public const int ExitFindingError = 1;

    /// <summary>Changes only by adding members; a removal or a change of meaning gets a new number.</summary>
    public const int JsonSchemaVersion = 1;

    public const string JsonFlag = "--json";

    /// <summary>How long one MTA-STS policy fetch may take (senders give it about a minute; an operator less).</summary>
    private static readonly TimeSpan PolicyTimeout = TimeSpan.FromSeconds(20);

    public static async Task<int> RunAsync(string[] domainNames, string[] options)
    {
        var json = options.Contains(JsonFlag, StringComparer.Ordinal);
        var settings = options.Where(o => o != JsonFlag).ToArray();
        var configuration = CommandServices.LoadConfiguration(settings);
        using var services = CommandServices.Build(configuration, s => s.AddBackupMxCore(configuration));
        var config = services.GetRequiredService<IOptions<BackupMxOptions>>().Value;
        var receiver = configuration.GetSection(SmtpReceiverOptions.SectionName).Get<SmtpReceiverOptions>() ?? new SmtpReceiverOptions();

        var domains = domainNames.Length == 0
            ? config.Domains
            : domainNames.Select(n => config.FindDomain(n) ?? new DomainOptions { Name = n }).ToList();

        var findings = new List<DnsFinding>();
        var tls = LoadOwnTls(receiver, findings);
        var lookup = LookupClientFactory.Create(config.Dns, cache: false);
        using var fetcher = new MtaStsPolicyFetcher(MtaStsPolicyFetcher.CreateHandler(new DnsClientResolver(lookup)), PolicyTimeout);
        var checker = new DnsChecker(lookup, fetcher);
        findings.AddRange(await checker.CheckAsync(config, tls, domains, CancellationToken.None).ConfigureAwait(false));

        Console.Out.Write(json ? ToJson(config.HostName, findings) : ToText(findings));
        return findings.Any(f => f.Severity == FindingSeverity.ERROR) ? ExitFindingError : 0;
    }

    internal static string ToText(IReadOnlyList<DnsFinding> findings)
    {
        var text = new StringBuilder();
        foreach (var f in findings)
        {
            text.Append($"{f.Severity,-5} {f.Domain ?? "-",-24} {f.Code,-24} {f.Message}\n");
        }

        var errors = findings.Count(f => f.Severity == FindingSeverity.ERROR);
        var warnings = findings.Count(f => f.Severity == FindingSeverity.WARN);
        text.Append($"{errors} error(s), {warnings} warning(s)\n");
        return text.ToString();
    }

    /// <summary>The schema is documented in docs/check-dns.md.</summary>
    internal static string ToJson(string hostName, IReadOnlyList<DnsFinding> findings)
    {
        var document = new
        {
            schema = JsonSchemaVersion,
            hostName,
            errors = findings.Count(f => f.Severity == FindingSeverity.ERROR),
            warnings = findings.Count(f => f.Severity == FindingSeverity.WARN),
            findings = findings.Select(f => new { domain = f.Domain, check = f.Check, code = f.Code, severity = f.Severity.ToString(), message = f.Message }),
        };
        return JsonSerializer.Serialize(document, new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    /// <summary>
    /// The certificate the relay serves for STARTTLS, read from the same file (its certificates
    /// only: the key is not needed to compare with TLSA records). None when TLS is not configured.
    /// </summary>
    private static OwnTls LoadOwnTls(SmtpReceiverOptions receiver, List<DnsFinding> findings)
    {
        if (string.IsNullOrWhiteSpace(receiver.TlsCertificatePath))
        {
            return OwnTls.None;
        }

        try
        {
            var content = File.ReadAllBytes(receiver.TlsCertificatePath);
            X509Certificate2Collection certificates;
            if (content.AsSpan().IndexOf("-----BEGIN "u8) >= 0)
            {
                certificates = [];
                certificates.ImportFromPem(Encoding.ASCII.GetString(content));
            }
            else
            {
                // PKCS#12, raw or as the base64 text a Key Vault secret holds.
                var der = content.Length > 0 && content[0] == 0x30 ? content : Convert.FromBase64String(Encoding.ASCII.GetString(content).Trim());
                certificates = X509CertificateLoader.LoadPkcs12Collection(der, receiver.TlsCertificatePassword);
            }

            if (certificates.Count == 0)
            {
                throw new CryptographicException("the file holds no certificate");
            }

            // The leaf first, as the relay serves it: in PKCS#12 it is the one with the key.
            var leaf = certificates.FirstOrDefault(c => c.HasPrivateKey) ?? certificates[0];
            return new OwnTls(leaf, certificates.Where(c => !ReferenceEquals(c, leaf)).ToList());
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or FormatException)
        {
            findings.Add(new DnsFinding(null, "tls.unreadable", FindingSeverity.ERROR,
                $"{SmtpReceiverOptions.SectionName}:TlsCertificatePath '{receiver.TlsCertificatePath}' cannot be read: {ex.Message}. The relay will not start with it."));
            return OwnTls.None;
        }
    }
}
