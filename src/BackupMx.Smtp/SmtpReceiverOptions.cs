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
    /// Accept bare CR or bare LF (and NUL) inside DATA. Off by default: such bytes are the raw
    /// material of SMTP smuggling towards the primary, so the message is refused with 550 5.6.0.
    /// </summary>
    public bool AllowBareLineEndings { get; set; }

    /// <summary>A message with more Received: headers than this is refused as a loop (554 5.4.6). Default 100.</summary>
    [Range(1, 10_000)]
    public int MaxReceivedHeaders { get; set; } = 100;

    /// <summary>
    /// Consecutive refused commands (relaying denied, bad sequence, ...) before the session is closed.
    /// SmtpServer's own default of 5 would drop a client after a handful of refused recipients. Default 1000.
    /// </summary>
    [Range(5, 100_000)]
    public int MaxConsecutiveErrors { get; set; } = 1000;

    /// <summary>How long a stop waits for sessions in progress before cutting them off. Default 5 s.</summary>
    public TimeSpan ShutdownGracePeriod { get; set; } = TimeSpan.FromSeconds(5);
}
