using System.Globalization;
using System.Net;
using BackupMx.Core.Configuration;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Smtp.Limits;
using BackupMx.Smtp.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SmtpServer;
using SmtpServer.Mail;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace BackupMx.Smtp.Intake;

/// <summary>
/// MAIL and RCPT policy. MAIL: the per-client message rate. RCPT: at most MaxRecipients per
/// message, then Core's <see cref="RecipientPolicy"/> (only configured domains, so never an open
/// relay; recipient lists, callouts, accept-only-when-primary-down).
/// Refusals are thrown as <see cref="SmtpResponseException"/> to carry their own code and text;
/// SmtpServer counts them towards MaxRetryCount, which the receiver raises accordingly.
/// </summary>
internal sealed class RecipientFilter(
    IOptions<BackupMxOptions> options,
    RecipientPolicy policy,
    MessageRateLimiter rateLimiter,
    ILogger logger) : IMailboxFilter
{
    private static readonly SmtpResponse TooManyRecipients = new(SmtpReplyCode.InsufficientStorage, "4.5.3 Too many recipients");
    private static readonly SmtpResponse RateExceeded = new(SmtpReplyCode.Unavailable, "4.7.1 Too many messages, slow down and try again later");

    public Task<bool> CanAcceptFromAsync(ISessionContext context, IMailbox from, int size, CancellationToken cancellationToken)
    {
        var client = SessionHooks.ClientAddress(context);
        if (!rateLimiter.TryAcquire(client is null ? null : IPAddress.Parse(client)))
        {
            Log.RateLimited(logger, client, rateLimiter.PerMinute);
            throw new SmtpResponseException(RateExceeded);
        }

        return Task.FromResult(true);
    }

    public async Task<bool> CanDeliverToAsync(ISessionContext context, IMailbox to, IMailbox from, CancellationToken cancellationToken)
    {
        var state = SessionState.Of(context);

        // A recipient already accepted in this transaction: 250 again, as Postfix answers, without
        // counting it twice; the store keeps it once.
        var key = state.Recipients.TryGetValue(to, out var written) ? EnvelopeAddress.Key(written.Address) : EnvelopeAddress.Key(to.User + "@" + to.Host);
        if (state.AcceptedAddresses.Contains(key))
        {
            return true;
        }

        // Read per RCPT: a reload changes the limit for open sessions too.
        var maxRecipients = options.Value.Smtp.MaxRecipients;
        if (state.AcceptedRecipients >= maxRecipients)
        {
            Log.TooManyRecipients(logger, to.AsAddress(), SessionHooks.ClientAddress(context), maxRecipients);
            throw new SmtpResponseException(TooManyRecipients);
        }

        // The policy refuses any domain that is not configured (550 5.7.1): that one check is what
        // keeps this from being an open relay.
        // An internationalized address reached SmtpServer as an ASCII stand-in: the client's is the one to judge.
        var address = state.Input.LastEnvelopeLine is { Verb: EnvelopeVerb.Rcpt } line && !System.Text.Ascii.IsValid(line.Path)
            ? EnvelopeAddress.From(line.Path, to) ?? to.User + "@" + to.Host
            : to.User + "@" + to.Host;
        var decision = await policy.EvaluateAsync(address, cancellationToken).ConfigureAwait(false);
        if (decision.Verdict == RecipientVerdict.NotRelayed)
        {
            Log.RelayDenied(logger, to.AsAddress(), SessionHooks.ClientAddress(context));
            throw new SmtpResponseException(ToResponse(decision.Refusal!));
        }

        if (!decision.IsAccepted)
        {
            Log.RecipientRefused(logger, address, SessionHooks.ClientAddress(context), decision.Verdict.ToString());
            throw new SmtpResponseException(ToResponse(decision.Refusal!));
        }

        state.AcceptedRecipients++;
        state.AcceptedAddresses.Add(key);
        return true;
    }

    private static SmtpResponse ToResponse(SmtpReply reply) =>
        new((SmtpReplyCode)reply.Code, string.Create(CultureInfo.InvariantCulture, $"{reply.StatusCode} {reply.Text}"));
}
