using BackupMx.Core.Model;

namespace BackupMx.Core.Ports;

public enum VerificationOutcome
{
    /// <summary>The primary accepted the recipient (2xx to RCPT).</summary>
    Exists,

    /// <summary>The primary refused it for good (5xx to RCPT).</summary>
    DoesNotExist,

    /// <summary>No answer could be had (primary unreachable, 4xx, timeout).</summary>
    Unknown,
}

public sealed record VerificationResult(VerificationOutcome Outcome, SmtpReply? Reply);

/// <summary>
/// Recipient verification by callout: asks the domain's primary whether it would accept
/// a recipient (MAIL FROM:&lt;&gt;, RCPT TO, then RSET/QUIT, no DATA). Caching is the caller's.
/// </summary>
public interface IRecipientVerifier
{
    Task<VerificationResult> VerifyAsync(string domain, string address, CancellationToken cancellationToken);
}
