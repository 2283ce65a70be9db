using System.ComponentModel.DataAnnotations;

namespace BackupMx.Core.Configuration;

/// <summary>
/// The <c>BackupMx</c> configuration section, shared by every host. Keys are spelled
/// as in docs/configuration.md; <see cref="BackupMxOptionsValidator"/>
/// names the offending key when a value is wrong.
/// </summary>
public sealed class BackupMxOptions
{
    public const string SectionName = "BackupMx";

    /// <summary>Our MX host name: used in the greeting, Received headers, EHLO and DSNs.</summary>
    [Required]
    public string HostName { get; set; } = string.Empty;

    /// <summary>
    /// The public addresses this MX is reached at (behind NAT or a load balancer they are not the
    /// listener's). An MX host that resolves to one of them is us, whatever its name, so neither it
    /// nor any MX at or above its preference is a primary (RFC 5321 §5.1), like Postfix's
    /// inet_interfaces and proxy_interfaces.
    /// </summary>
    public List<string> PublicAddresses { get; set; } = [];

    public SmtpOptions Smtp { get; set; } = new();

    /// <summary>The domains we are backup MX for. RCPT for any other domain is refused (550 5.7.1).</summary>
    public List<DomainOptions> Domains { get; set; } = [];

    public DeliveryOptions Delivery { get; set; } = new();

    public BounceOptions Bounce { get; set; } = new();

    public SpoolOptions Spool { get; set; } = new();

    public RecipientVerificationOptions RecipientVerification { get; set; } = new();

    public DnsOptions Dns { get; set; } = new();

    // Domains a reload removed, as last configured: a field, so the configuration binder never sees it.
    private List<DomainOptions> _removedDomains = [];

    /// <summary>The configured domain named <paramref name="domain"/>, compared as A-labels (an IDN matches in either form).</summary>
    public DomainOptions? FindDomain(string domain) => Find(Domains, domain);

    /// <summary>
    /// The domain's settings for mail already accepted: the configured domain, or else the settings it
    /// had before a reload removed it (<see cref="KeepRemovedDomains"/>), so its spooled mail still
    /// goes to the primary it was accepted for. Null for a domain this process never relayed for.
    /// </summary>
    public DomainOptions? FindDomainForDelivery(string domain) => FindDomain(domain) ?? Find(_removedDomains, domain);

    /// <summary>
    /// Remembers the domains of <paramref name="previous"/> (and those it remembered) that this
    /// configuration no longer lists, for <see cref="FindDomainForDelivery"/>.
    /// </summary>
    public void KeepRemovedDomains(BackupMxOptions previous)
    {
        ArgumentNullException.ThrowIfNull(previous);
        _removedDomains = previous.Domains.Concat(previous._removedDomains)
            .Where(d => FindDomain(d.Name) is null)
            .DistinctBy(d => DomainName.ToAscii(d.Name), StringComparer.OrdinalIgnoreCase)
            .ToList();
    }

    private static DomainOptions? Find(List<DomainOptions> domains, string domain)
    {
        var ascii = DomainName.ToAscii(domain);
        return domains.Find(d => string.Equals(d.Name, domain, StringComparison.OrdinalIgnoreCase)
            || string.Equals(DomainName.ToAscii(d.Name), ascii, StringComparison.OrdinalIgnoreCase));
    }
}

public sealed class SmtpOptions
{
    /// <summary>Addresses to listen on, each <c>ip:port</c> (IPv6 as <c>[::1]:25</c>). Default 0.0.0.0:25.</summary>
    /// <remarks>Empty by default because the configuration binder appends to a list rather than replacing it.</remarks>
    public List<string> Endpoints { get; set; } = [];

    public IReadOnlyList<string> EffectiveEndpoints => Endpoints.Count > 0 ? Endpoints : ["0.0.0.0:25"];

    /// <summary>Largest message accepted, advertised with SIZE (RFC 1870). Default 50 MiB.</summary>
    [Range(1024, long.MaxValue)]
    public long MaxMessageBytes { get; set; } = 50L * 1024 * 1024;

    /// <summary>Recipients accepted per message; RFC 5321 §4.5.3.1.8 requires at least 100.</summary>
    [Range(100, 100_000)]
    public int MaxRecipients { get; set; } = 100;

    /// <summary>
    /// Session length after which the receiver closes the connection with 421 4.4.2, checked only
    /// between transactions: a message in progress is never cut off by it. Default 1 hour.
    /// </summary>
    public TimeSpan SessionTimeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Longest wait for each command line, and for a STARTTLS handshake (RFC 5321 §4.5.3.2.7: at
    /// least 5 minutes); past it the session ends with 421 4.4.2. Default 5 min.
    /// </summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(5);
}

public sealed class DomainOptions
{
    /// <summary>The domain name, e.g. <c>example.com</c>.</summary>
    [Required]
    public string Name { get; set; } = string.Empty;

    /// <summary>
    /// Explicit primary as <c>host[:port]</c>. When empty, the primary is the domain's
    /// MX hosts with a lower preference number than ours.
    /// </summary>
    public string? Primary { get; set; }

    /// <summary>
    /// Accepted recipient addresses. Empty: any address of the domain. <c>*@domain</c> is a
    /// catch-all that must be listed explicitly. Others get 550 5.1.1 at RCPT time.
    /// </summary>
    public List<string> Recipients { get; set; } = [];

    /// <summary>Verify recipients by callout to the primary (MAIL FROM:&lt;&gt;, RCPT TO, RSET), with a cache.</summary>
    public bool VerifyRecipients { get; set; }

    /// <summary>
    /// With <see cref="VerifyRecipients"/>, while the primary is unreachable: accept recipients never
    /// verified before (true), or answer 450 4.1.1 so the sender retries later (false, the default).
    /// </summary>
    public bool AcceptUnverifiedWhenPrimaryDown { get; set; }

    /// <summary>While the monitor sees the primary up, answer RCPT with 450 4.7.1 so senders go to the primary.</summary>
    public bool AcceptOnlyWhenPrimaryDown { get; set; }

    /// <summary>Client addresses (IP or CIDR) allowed to ETRN this domain. Empty: the primary's addresses.</summary>
    public List<string> EtrnClients { get; set; } = [];

    /// <summary>Outbound STARTTLS to the primary: Opportunistic (default), Required or Disabled.</summary>
    public OutboundTlsMode OutboundTls { get; set; } = OutboundTlsMode.Opportunistic;

    /// <summary>Validate the primary's certificate (chain and host name). Default: only when TLS is required.</summary>
    public bool? ValidateCertificate { get; set; }
}

public enum OutboundTlsMode
{
    /// <summary>Use STARTTLS when offered; fall back to plain text if the handshake fails.</summary>
    Opportunistic = 0,

    /// <summary>Never deliver without TLS 1.2 or newer; a primary that does not offer it is a temporary failure.</summary>
    Required = 1,

    /// <summary>Never use STARTTLS.</summary>
    Disabled = 2,
}

public sealed class DeliveryOptions
{
    /// <summary>Waits between attempts; the last one repeats. Default 5m, 10m, 20m, 40m, then hourly.</summary>
    public List<TimeSpan> RetryIntervals { get; set; } = [];

    /// <summary>How long a message is kept before undelivered recipients are bounced. Default 5 days.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(5);

    /// <summary>How often each primary is probed. Default 30 s.</summary>
    public TimeSpan ProbeInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a worker owns a message it claimed. At least <see cref="AttemptTimeout"/> plus
    /// <see cref="LeaseMargin"/> (validated): a lease that ran out while its attempt was still
    /// talking to the primary would let a second worker deliver the same message at the same time.
    /// Default 15 minutes.
    /// </summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>
    /// Longest one delivery attempt may take as a whole (connecting, every command, the body), however
    /// many recipients and however slow the primary; then it is cancelled and the recipients without an
    /// answer retry. At least <see cref="Timeout"/>. Default 5 minutes, which also fits a Forward run
    /// into the Functions timeout (see BackupMx:Functions:ForwardTimeBudget).
    /// </summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// What a lease must leave after <see cref="AttemptTimeout"/>: the claim's own write before the
    /// attempt starts, and clock differences between the machines that claim. What follows the
    /// attempt needs no room: the answers are committed first, and a worker that then finds its lease
    /// taken leaves the message to the new holder without delivering anything.
    /// </summary>
    public static readonly TimeSpan LeaseMargin = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Messages delivered at the same time. Default 32: one delivery mostly waits (for the
    /// primary's replies and the spool's commits), so a backlog drains faster with more in flight.
    /// </summary>
    [Range(1, 256)]
    public int MaxConcurrentDeliveries { get; set; } = 32;

    /// <summary>
    /// How long an open SMTP connection to a destination is kept after a message, for the next
    /// one (no new TCP and TLS handshake, greeting and EHLO per message). At most
    /// <see cref="MaxConcurrentDeliveries"/> are kept per destination address. Zero: one
    /// connection per message. Default 5 s.
    /// </summary>
    public TimeSpan IdleConnectionTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// SMTP sessions one delivery attempt may use: recipients a host deferred (4xx, or a connection
    /// lost before the data was sent) are tried at the next address of the route in the same
    /// attempt, up to this many sessions, like Postfix's smtp_mx_session_limit. Default 2.
    /// </summary>
    [Range(1, 6)]
    public int MxSessionLimit { get; set; } = 2;

    /// <summary>
    /// Port of the primaries: their MX hosts, and a Primary given without a port. Not used for
    /// DSNs: a sender's MX is always reached on 25.
    /// </summary>
    [Range(1, 65535)]
    public int Port { get; set; } = 25;

    /// <summary>Timeout for connecting and for each SMTP command.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Embedded relay: shortly after start, deliver one synthetic message to a loopback sink inside the
    /// process, so the first real delivery does not wait for the delivery path to be compiled. Default true.
    /// </summary>
    public bool WarmUp { get; set; } = true;

    /// <summary>
    /// Timeout of each step of a probe (connect, greeting, EHLO, QUIT), per address of the primary.
    /// Unset: <see cref="DefaultProbeTimeout"/>, or <see cref="Timeout"/> when that is shorter. See
    /// <see cref="EffectiveProbeTimeout"/>.
    /// </summary>
    public TimeSpan? ProbeTimeout { get; set; }

    /// <summary>
    /// 10 s. A probe carries no mail, so it need not wait like a sender with mail in hand (RFC 5321
    /// §4.5.3.2 gives those 5 minutes for the greeting): a healthy MTA greets within a second or two,
    /// and deliberate greeting delays (Postfix postscreen's 6 s, sendmail's greet_pause, slow DNS
    /// checks before the banner) stay under 10 s. A primary that accepts TCP but never greets (still
    /// starting, a load balancer without a healthy backend, a firewall that blackholes) is then seen
    /// down within 10 s per address rather than Timeout's 60 s, and its recovery within about
    /// ProbeInterval + 10 s.
    /// </summary>
    public static readonly TimeSpan DefaultProbeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The configured probe timeout, or the default capped at <see cref="Timeout"/>.</summary>
    /// <remarks>
    /// The cap keeps a configuration with a short Timeout (and no ProbeTimeout) valid and consistent;
    /// an explicit ProbeTimeout longer than Timeout is refused by the validator instead.
    /// </remarks>
    public TimeSpan EffectiveProbeTimeout => ProbeTimeout ?? (Timeout < DefaultProbeTimeout ? Timeout : DefaultProbeTimeout);

    public static readonly IReadOnlyList<TimeSpan> DefaultRetryIntervals =
    [
        TimeSpan.FromMinutes(5),
        TimeSpan.FromMinutes(10),
        TimeSpan.FromMinutes(20),
        TimeSpan.FromMinutes(40),
        TimeSpan.FromHours(1),
    ];

    /// <summary>The configured intervals, or the defaults when none are configured.</summary>
    public IReadOnlyList<TimeSpan> EffectiveRetryIntervals => RetryIntervals.Count > 0 ? RetryIntervals : DefaultRetryIntervals;
}

public sealed class BounceOptions
{
    /// <summary>
    /// Optional <c>host[:port]</c> that DSNs are sent through instead of the sender domain's MX;
    /// without a port, 25 (not Delivery:Port, which is the primaries').
    /// </summary>
    public string? SmartHost { get; set; }
}

public sealed class RecipientVerificationOptions
{
    /// <summary>How long a recipient the primary accepted stays known. Default 7 days.</summary>
    public TimeSpan PositiveCacheDuration { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How long a recipient the primary refused stays refused. Default 1 hour.</summary>
    public TimeSpan NegativeCacheDuration { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Most callout results kept; the least recently used go first. Default 100000.</summary>
    public int MaxCacheEntries { get; set; } = 100_000;
}

public sealed class DnsOptions
{
    /// <summary>The port of a server given without one.</summary>
    public const int DefaultPort = 53;

    /// <summary>
    /// Resolvers for MX, address, MTA-STS and TLSA lookups (routing and check-dns), each
    /// <c>host[:port]</c>, port 53 by default; a host name is resolved once at start by the system.
    /// Empty: the system's resolvers.
    /// </summary>
    public List<string> Servers { get; set; } = [];
}

public sealed class SpoolOptions
{
    /// <summary>Folder of the embedded spool (bodies and the SQLite state database).</summary>
    public string Path { get; set; } = "spool";
}
