using System.ComponentModel.DataAnnotations;

namespace BackupMx.Core.Configuration;

/// <summary>
/// The <c>BackupMx</c> configuration section, shared by every host. Keys are spelled
/// as in the README's configuration reference; <see cref="BackupMxOptionsValidator"/>
/// names the offending key when a value is wrong.
/// </summary>
public sealed class BackupMxOptions
{
    public const string SectionName = "BackupMx";

    /// <summary>Our MX host name: used in the greeting, Received headers, EHLO and DSNs.</summary>
    [Required]
    public string HostName { get; set; } = string.Empty;

    public SmtpOptions Smtp { get; set; } = new();

    /// <summary>The domains we are backup MX for. RCPT for any other domain is refused (550 5.7.1).</summary>
    public List<DomainOptions> Domains { get; set; } = [];

    public DeliveryOptions Delivery { get; set; } = new();

    public BounceOptions Bounce { get; set; } = new();

    public SpoolOptions Spool { get; set; } = new();

    public DomainOptions? FindDomain(string domain) =>
        Domains.Find(d => string.Equals(d.Name, domain, StringComparison.OrdinalIgnoreCase));
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

    /// <summary>Longest a whole SMTP session may last.</summary>
    public TimeSpan SessionTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Longest we wait for the next command.</summary>
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
}

public sealed class DeliveryOptions
{
    /// <summary>Waits between attempts; the last one repeats. Default 5m, 10m, 20m, 40m, then hourly.</summary>
    public List<TimeSpan> RetryIntervals { get; set; } = [];

    /// <summary>How long a message is kept before undelivered recipients are bounced. Default 5 days.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(5);

    /// <summary>How often each primary is probed. Default 30 s.</summary>
    public TimeSpan ProbeInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a worker owns a message it claimed; longer than any single delivery attempt.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>Messages delivered at the same time.</summary>
    [Range(1, 256)]
    public int MaxConcurrentDeliveries { get; set; } = 16;

    /// <summary>Remote port used for MX hosts (and a Primary given without a port).</summary>
    [Range(1, 65535)]
    public int Port { get; set; } = 25;

    /// <summary>Timeout for connecting and for each SMTP command.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(60);

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
    /// <summary>Optional <c>host[:port]</c> that DSNs are sent through instead of the sender domain's MX.</summary>
    public string? SmartHost { get; set; }
}

public sealed class SpoolOptions
{
    /// <summary>Folder of the embedded spool (bodies and the SQLite state database).</summary>
    public string Path { get; set; } = "spool";
}
