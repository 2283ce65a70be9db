using BackupMx.Core.Configuration;
using BackupMx.Smtp.Protocol;
using Microsoft.Extensions.Logging;
using SmtpServer;
using SmtpServer.Mail;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace BackupMx.Smtp.Intake;

/// <summary>
/// RCPT policy: only configured domains (never an open relay), at most MaxRecipients per message.
/// Refusals are thrown as <see cref="SmtpResponseException"/> to carry their own code and text;
/// SmtpServer counts them towards MaxRetryCount, which the receiver raises accordingly.
/// </summary>
internal sealed class RecipientFilter(BackupMxOptions options, ILogger logger) : IMailboxFilter
{
    private static readonly SmtpResponse RelayDenied = new(SmtpReplyCode.MailboxUnavailable, "5.7.1 Relaying denied");
    private static readonly SmtpResponse TooManyRecipients = new(SmtpReplyCode.InsufficientStorage, "4.5.3 Too many recipients");

    public Task<bool> CanAcceptFromAsync(ISessionContext context, IMailbox from, int size, CancellationToken cancellationToken) =>
        Task.FromResult(true);

    public Task<bool> CanDeliverToAsync(ISessionContext context, IMailbox to, IMailbox from, CancellationToken cancellationToken)
    {
        var domain = (to.Host ?? string.Empty).TrimEnd('.');
        if (domain.Length == 0 || options.FindDomain(domain) is null)
        {
            Log.RelayDenied(logger, to.AsAddress(), SessionHooks.ClientAddress(context));
            throw new SmtpResponseException(RelayDenied);
        }

        var state = SessionState.Of(context);
        if (state.AcceptedRecipients >= options.Smtp.MaxRecipients)
        {
            Log.TooManyRecipients(logger, to.AsAddress(), SessionHooks.ClientAddress(context), options.Smtp.MaxRecipients);
            throw new SmtpResponseException(TooManyRecipients);
        }

        state.AcceptedRecipients++;
        return Task.FromResult(true);
    }
}
