// Recipient policy: who may be a recipient of mail we accept (rule 5, no backscatter).
//
// Every refusal happens at RCPT time, so the sending MTA reports it to its own user and
// we never have to bounce a message for a recipient the primary would have refused.
// The checks run cheapest and most definite first: a domain we do not relay (550 5.7.1),
// a configured Recipients list (550 5.1.1), the primary being up while the domain accepts
// only when it is down (450 4.7.1), then a callout to the primary with a cache. While the
// primary cannot answer, recipients it confirmed earlier are still accepted and the others
// are deferred (450 4.1.1) unless the domain says to accept them unverified.
//
// "postmaster" (any case) must be accepted at every domain we serve (RFC 5321 §4.5.1): it is
// never refused for missing from a Recipients list, and never called out (the primary must
// accept it too, and a primary that cannot answer must not cost the postmaster its mail). With
// accept-only-when-primary-down and the primary up it still gets 450 4.7.1 like everyone else:
// that is a deferral towards the primary, which accepts it, not a refusal of the mailbox.
using System.Collections.Concurrent;
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Intake;

public enum RecipientVerdict
{
    Accepted,

    /// <summary>Not a domain we are backup MX for.</summary>
    NotRelayed,

    /// <summary>Not in the domain's Recipients list, or refused by the primary.</summary>
    UnknownRecipient,

    /// <summary>The domain accepts mail only while its primary is down, and it is up.</summary>
    PrimaryIsUp,

    /// <summary>Verification is configured but the primary could not answer.</summary>
    NotVerified,
}

/// <summary>The answer to one RCPT; <see cref="Refusal"/> is the reply to send when it is not accepted.</summary>
public sealed record RecipientDecision(RecipientVerdict Verdict, SmtpReply? Refusal)
{
    public static readonly RecipientDecision Accept = new(RecipientVerdict.Accepted, null);

    public static readonly RecipientDecision NotRelayed =
        new(RecipientVerdict.NotRelayed, new SmtpReply(550, "5.7.1", "Relaying denied", FromRemote: false));

    public static readonly RecipientDecision UnknownRecipient =
        new(RecipientVerdict.UnknownRecipient, new SmtpReply(550, "5.1.1", "Recipient address rejected: unknown user", FromRemote: false));

    public static readonly RecipientDecision PrimaryIsUp =
        new(RecipientVerdict.PrimaryIsUp, new SmtpReply(450, "4.7.1", "Not accepting mail for this domain now, use the primary MX", FromRemote: false));

    public static readonly RecipientDecision NotVerified =
        new(RecipientVerdict.NotVerified, new SmtpReply(450, "4.1.1", "Recipient cannot be verified now, try again later", FromRemote: false));

    public bool IsAccepted => Verdict == RecipientVerdict.Accepted;
}

/// <summary>Decides RCPT for the configured domains. Thread-safe; one instance per process.</summary>
public sealed partial class RecipientPolicy
{
    private readonly IOptions<BackupMxOptions> _options;
    private readonly IRecipientVerifier _verifier;
    private readonly IPrimaryStatusStore _statuses;
    private readonly TimeProvider _time;
    private readonly ILogger<RecipientPolicy> _logger;
    private readonly RecipientVerificationCache _cache;
    private readonly ConcurrentDictionary<string, Lazy<Task<VerificationResult>>> _inFlight = new(StringComparer.Ordinal);

    public RecipientPolicy(
        IOptions<BackupMxOptions> options,
        IRecipientVerifier verifier,
        IPrimaryStatusStore statuses,
        TimeProvider time,
        ILogger<RecipientPolicy> logger)
    {
        _options = options;
        _verifier = verifier;
        _statuses = statuses;
        _time = time;
        _logger = logger;
        _cache = new RecipientVerificationCache(options.Value.RecipientVerification.MaxCacheEntries);
    }

    /// <summary>Entries currently cached (for tests and diagnostics).</summary>
    public int CachedRecipients => _cache.Count;

    public async ValueTask<RecipientDecision> EvaluateAsync(string address, CancellationToken cancellationToken)
    {
        var at = address.LastIndexOf('@');
        if (at <= 0 || at == address.Length - 1)
        {
            return RecipientDecision.NotRelayed;
        }

        var localPart = address[..at];
        var domainName = address[(at + 1)..].TrimEnd('.');
        var options = _options.Value;
        var domain = options.FindDomain(domainName);
        if (domain is null)
        {
            return RecipientDecision.NotRelayed;
        }

        if (domain.Recipients.Count > 0 && !IsListed(domain, localPart))
        {
            return RecipientDecision.UnknownRecipient;
        }

        PrimaryStatus? status = null;
        if (domain.AcceptOnlyWhenPrimaryDown || domain.VerifyRecipients)
        {
            status = (await _statuses.GetAsync(domain.Name, cancellationToken).ConfigureAwait(false))?.Status;
        }

        if (domain.AcceptOnlyWhenPrimaryDown && status?.State == PrimaryState.Up)
        {
            return RecipientDecision.PrimaryIsUp;
        }

        if (!domain.VerifyRecipients || IsPostmaster(localPart))
        {
            return RecipientDecision.Accept;
        }

        return await VerifyAsync(domain, localPart, status, cancellationToken).ConfigureAwait(false);
    }

    // The domain part compares case-insensitively (RFC 5321 §2.4); the local part exactly as
    // configured, because only the primary knows whether its mailboxes are case-sensitive.
    // Postmaster is always listed, in any case (RFC 5321 §4.5.1).
    private static bool IsListed(DomainOptions domain, string localPart)
    {
        if (IsPostmaster(localPart))
        {
            return true;
        }

        foreach (var entry in domain.Recipients)
        {
            var at = entry.LastIndexOf('@');
            if (at <= 0 || !string.Equals(entry[(at + 1)..], domain.Name, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var listed = entry.AsSpan(0, at);
            if (listed is "*" || listed.SequenceEqual(localPart))
            {
                return true;
            }
        }

        return false;
    }

    // The reserved mailbox; as a quoted string it names the same mailbox (RFC 5321 §4.1.2).
    private static bool IsPostmaster(string localPart) =>
        localPart.Equals("postmaster", StringComparison.OrdinalIgnoreCase)
        || localPart.Equals("\"postmaster\"", StringComparison.OrdinalIgnoreCase);

    private async ValueTask<RecipientDecision> VerifyAsync(DomainOptions domain, string localPart, PrimaryStatus? status, CancellationToken cancellationToken)
    {
        var key = localPart + "@" + domain.Name.ToLowerInvariant();
        var now = _time.GetUtcNow();
        var cached = _cache.Get(key, now);
        if (cached is not null)
        {
            return cached.Value ? RecipientDecision.Accept : RecipientDecision.UnknownRecipient;
        }

        VerificationResult result;
        if (status?.State == PrimaryState.Down)
        {
            // The monitor already knows the primary is unreachable: a callout would only add a
            // connect timeout to every RCPT before ending up Unknown anyway.
            result = new VerificationResult(VerificationOutcome.Unknown, null);
        }
        else
        {
            result = await CallOutOnceAsync(domain.Name, key, cancellationToken).ConfigureAwait(false);
        }

        var verification = _options.Value.RecipientVerification;
        switch (result.Outcome)
        {
            case VerificationOutcome.Exists:
                _cache.Set(key, exists: true, _time.GetUtcNow() + verification.PositiveCacheDuration);
                return RecipientDecision.Accept;
            case VerificationOutcome.DoesNotExist:
                LogRefusedByPrimary(_logger, key, result.Reply?.ToString());
                _cache.Set(key, exists: false, _time.GetUtcNow() + verification.NegativeCacheDuration);
                return RecipientDecision.UnknownRecipient;
            default:
                LogUnverified(_logger, key, domain.AcceptUnverifiedWhenPrimaryDown);
                return domain.AcceptUnverifiedWhenPrimaryDown ? RecipientDecision.Accept : RecipientDecision.NotVerified;
        }
    }

    // Parallel sessions asking about the same address share one callout, so a burst of RCPTs
    // does not turn into a burst of connections to the primary. The shared callout is not tied
    // to any one session's token; the verifier's own timeout bounds it.
    private async Task<VerificationResult> CallOutOnceAsync(string domain, string key, CancellationToken cancellationToken)
    {
        var lazy = _inFlight.GetOrAdd(key, _ => new Lazy<Task<VerificationResult>>(() => CallOutAsync(domain, key)));
        try
        {
            return await lazy.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<VerificationResult>>>(key, lazy));
        }
    }

    private async Task<VerificationResult> CallOutAsync(string domain, string address)
    {
        try
        {
            return await _verifier.VerifyAsync(domain, address, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            LogVerifierFailed(_logger, ex, address);
            return new VerificationResult(VerificationOutcome.Unknown, null);
        }
    }

    [LoggerMessage(EventId = 1150, Level = LogLevel.Information, Message = "Primary refused recipient {Recipient}: {Reply}")]
    private static partial void LogRefusedByPrimary(ILogger logger, string recipient, string? reply);

    [LoggerMessage(EventId = 1151, Level = LogLevel.Information, Message = "Recipient {Recipient} could not be verified; accepted unverified: {AcceptUnverified}")]
    private static partial void LogUnverified(ILogger logger, string recipient, bool acceptUnverified);

    [LoggerMessage(EventId = 1152, Level = LogLevel.Warning, Message = "Recipient verifier failed for {Recipient}")]
    private static partial void LogVerifierFailed(ILogger logger, Exception exception, string recipient);
}
