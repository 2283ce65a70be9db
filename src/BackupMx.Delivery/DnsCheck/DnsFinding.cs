using System.Security.Cryptography.X509Certificates;

namespace BackupMx.Delivery.DnsCheck;

/// <summary>How bad a finding is. The names are what check-dns prints and its JSON carries.</summary>
public enum FindingSeverity
{
    OK = 0,
    WARN = 1,
    ERROR = 2,
}

/// <summary>
/// One result of a DNS check. <paramref name="Domain"/> is null for what concerns this MX itself
/// (its address, its TLSA records); <paramref name="Code"/> is stable (<c>check.name</c>, see
/// docs/check-dns.md) and the message is for people.
/// </summary>
public sealed record DnsFinding(string? Domain, string Code, FindingSeverity Severity, string Message)
{
    /// <summary>The check that produced it: the code up to its first dot (mx, address, primary, mta-sts, dane).</summary>
    public string Check => Code[..Code.IndexOf('.', StringComparison.Ordinal)];
}

/// <summary>
/// What this MX serves to senders: whether it offers STARTTLS and with which certificate (the leaf,
/// then the rest of the chain as served), for the MTA-STS and DANE checks.
/// </summary>
public sealed record OwnTls(X509Certificate2? Certificate, IReadOnlyList<X509Certificate2> Chain)
{
    public static OwnTls None { get; } = new(null, []);

    public bool OffersStartTls => Certificate is not null;
}
