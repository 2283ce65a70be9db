using System.ComponentModel.DataAnnotations;

namespace BackupMx.Smtp;

/// <summary>
/// Receiver settings that only the SMTP adapter needs. Bound from the same
/// <c>BackupMx:Smtp</c> section as Core's <c>SmtpOptions</c> (endpoints, size, recipients, timeouts).
/// </summary>
public sealed class SmtpReceiverOptions
{
    public const string SectionName = "BackupMx:Smtp";

    /// <summary>
    /// Accept bare CR or bare LF (and NUL) inside DATA and keep them as they are. Off by default: such
    /// bytes are the raw material of SMTP smuggling towards the primary, so a message with a bare CR or
    /// a NUL is refused with 550 5.6.0, and a bare LF is refused or normalised (<see cref="NormalizeBareLineFeeds"/>).
    /// </summary>
    public bool AllowBareLineEndings { get; set; }

    /// <summary>
    /// Keep a bare LF in DATA as CRLF instead of refusing the message (Postfix 3.9's
    /// <c>smtpd_forbid_bare_newline = normalize</c>). The data still ends only at CRLF.CRLF, and a dot
    /// after a bare LF is neither stuffing nor an end, so no smuggled command can come out of it; a
    /// message without bare LF is stored byte for byte (DKIM signatures stay valid). Sloppy software
    /// writes bare LF; refusing it would bounce deliverable mail while the primary is down. Default on;
    /// off refuses with 550 5.6.0.
    /// </summary>
    public bool NormalizeBareLineFeeds { get; set; } = true;

    /// <summary>A message with more Received: headers than this is refused as a loop (554 5.4.6). Default 100.</summary>
    [Range(1, 10_000)]
    public int MaxReceivedHeaders { get; set; } = 100;

    /// <summary>
    /// Consecutive refused commands (relaying denied, bad sequence, ...) before the session is closed.
    /// SmtpServer's own default of 5 would drop a client after a handful of refused recipients. Default 1000.
    /// </summary>
    [Range(5, 100_000)]
    public int MaxConsecutiveErrors { get; set; } = 1000;

    /// <summary>
    /// Longest wait, after the 354 reply to DATA, for the first bytes of the message (RFC 5321
    /// §4.5.3.2.7: at least 5 minutes). Past it the session ends with 421 4.4.2. Default 5 min.
    /// </summary>
    public TimeSpan DataInitiationTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Longest wait for the next block of message data, restarted by every block received, so a slow
    /// but moving transfer is never cut off (RFC 5321 §4.5.3.2.5, §4.5.3.2.7). Past it the session
    /// ends with 421 4.4.2 and nothing is kept. Default 5 min.
    /// </summary>
    public TimeSpan DataBlockTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Longest the spool may take, after the final dot, to commit a message before the reply. The
    /// client waits 10 minutes (RFC 5321 §4.5.3.2.6) and would then send the message again; past this
    /// the write is undone and the reply is 451 4.3.0. Default 5 min.
    /// </summary>
    public TimeSpan FinalDotTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a stop waits for sessions in progress before cutting them off. Default 5 s.</summary>
    public TimeSpan ShutdownGracePeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Open connections in total; one more is answered 421 4.7.0 and closed. Default 500.</summary>
    [Range(1, 1_000_000)]
    public int MaxConnections { get; set; } = 500;

    /// <summary>
    /// Open connections from one client IP address; one more is answered 421 4.7.0 and closed. Default 50:
    /// when a primary fails, a large sender's whole queue for it arrives here at once, and one outbound
    /// address often carries several such queues (Postfix alone opens up to 20 per destination).
    /// </summary>
    [Range(1, 1_000_000)]
    public int MaxConnectionsPerIp { get; set; } = 50;

    /// <summary>Command lines in one session; the next one is answered 421 4.7.0 and the connection closed. Default 10000.</summary>
    [Range(10, int.MaxValue)]
    public int MaxCommandsPerSession { get; set; } = 10_000;

    /// <summary>
    /// Longest command line in octets, CRLF included (RFC 5321 §4.5.3.1.4: 512). Longer lines get
    /// 500 5.5.2 and are not executed. MAIL lines may be 150 octets longer and RCPT lines 500 longer,
    /// the room the advertised SIZE, BODY and DSN parameters need (RFC 1870, RFC 3461 §4).
    /// </summary>
    [Range(512, 65_536)]
    public int MaxCommandLineLength { get; set; } = 512;

    /// <summary>
    /// Longest line of message text in octets, CRLF included. A message with a longer line is refused
    /// after the final dot with 500 5.5.2 (RFC 5321 §4.5.3.1.10 "Line too long"). RFC 5321 §4.5.3.1.6
    /// sets 1000, but longer lines are common in real mail and primaries usually take them; a backup MX
    /// that refused them would turn an outage of the primary into bounces. Default 65536; 1000 is strict.
    /// </summary>
    [Range(1000, int.MaxValue)]
    public int MaxDataLineLength { get; set; } = 65_536;

    /// <summary>Largest header section in octets; a message with a larger one is refused with 552 5.3.4. Default 1 MiB.</summary>
    [Range(1024, int.MaxValue)]
    public int MaxHeaderBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// Messages (MAIL commands) one client IP may start per minute, as a token bucket that also
    /// allows a burst of this size; past it MAIL is answered 450 4.7.1. 0 turns the limit off. Default 3000:
    /// high enough not to slow a real sender emptying its queue into us during an outage, low enough to
    /// stop one address from filling the spool.
    /// </summary>
    [Range(0, 1_000_000)]
    public int MaxMessagesPerMinutePerIp { get; set; } = 3000;

    /// <summary>
    /// Folder for the temporary copy of a message body past its first 64 KiB while it arrives, so that
    /// a session never holds a large message in memory. The file is unlinked as soon as it is created,
    /// so nothing is ever left there. Default: the system's temporary folder (mind a memory-backed
    /// /tmp); embedded mode uses the spool's <c>incoming</c> folder, on the same disk as the bodies.
    /// </summary>
    public string? SpillPath { get; set; }

    /// <summary>
    /// Certificate for inbound STARTTLS, which is offered only when this is set. Either PEM (the
    /// certificate, then any intermediates; the key in <see cref="TlsKeyPath"/> or in this file) or
    /// PKCS#12, raw (.pfx, .p12) or as base64 text (what a Key Vault certificate's secret holds). The
    /// format is told from the content. The file is re-read every <see cref="TlsCertificateCheckInterval"/>:
    /// new sessions get a renewed certificate without a restart.
    /// </summary>
    public string? TlsCertificatePath { get; set; }

    /// <summary>PEM private key of a PEM <see cref="TlsCertificatePath"/>, when the key is in a file of its own.</summary>
    public string? TlsKeyPath { get; set; }

    /// <summary>Password of a PKCS#12 <see cref="TlsCertificatePath"/>, if it has one (a Key Vault PFX has none).</summary>
    public string? TlsCertificatePassword { get; set; }

    /// <summary>How often the certificate file is checked for a change. Default 30 s.</summary>
    public TimeSpan TlsCertificateCheckInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The domain that <c>RCPT TO:&lt;Postmaster&gt;</c> (no domain, RFC 5321 §4.5.1) is delivered to, as
    /// <c>postmaster@</c> this domain. Must be one of <c>BackupMx:Domains</c>. Default: the first of them.
    /// </summary>
    public string? PostmasterDomain { get; set; }

    /// <summary>
    /// How long an ETRN waits for its flush to finish so that the reply can say how many messages were
    /// started (251/253); a longer flush goes on in the background and the reply is 250. Default 5 s.
    /// </summary>
    public TimeSpan EtrnReplyWait { get; set; } = TimeSpan.FromSeconds(5);
}
