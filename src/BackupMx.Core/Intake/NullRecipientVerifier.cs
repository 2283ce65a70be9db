using BackupMx.Core.Ports;

namespace BackupMx.Core.Intake;

/// <summary>
/// The verifier when no callout implementation is registered: it never knows, so a domain with
/// VerifyRecipients accepts only recipients allowed unverified (AcceptUnverifiedWhenPrimaryDown)
/// and defers the rest with 450 rather than accepting mail it might have to bounce.
/// </summary>
public sealed class NullRecipientVerifier : IRecipientVerifier
{
    public Task<VerificationResult> VerifyAsync(string domain, string address, CancellationToken cancellationToken) =>
        Task.FromResult(new VerificationResult(VerificationOutcome.Unknown, null));
}
