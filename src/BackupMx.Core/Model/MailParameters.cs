namespace BackupMx.Core.Model;

/// <summary>
/// MAIL FROM parameters kept from intake and passed on unchanged to the primary.
/// </summary>
public sealed record MailParameters
{
    /// <summary>BODY=7BIT or BODY=8BITMIME (RFC 6152), as the client declared it.</summary>
    public string? Body { get; init; }

    /// <summary>RET=FULL or RET=HDRS (RFC 3461 §4.3).</summary>
    public string? Ret { get; init; }

    /// <summary>ENVID, already decoded from xtext (RFC 3461 §4.4).</summary>
    public string? EnvelopeId { get; init; }

    /// <summary>SIZE as declared by the client (RFC 1870).</summary>
    public long? DeclaredSize { get; init; }

    /// <summary>SMTPUTF8 was given (RFC 6531): addresses or header fields may be UTF-8.</summary>
    public bool SmtpUtf8 { get; init; }

    public bool ReturnFullMessage => string.Equals(Ret, "FULL", StringComparison.OrdinalIgnoreCase);
}
