using System.Buffers;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Smtp.Protocol;
using Microsoft.Extensions.Logging;
using SmtpServer;
using SmtpServer.Mail;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace BackupMx.Smtp.Intake;

/// <summary>
/// The end of DATA: answers the checks made on the body as it arrived, hands the message to
/// <see cref="IntakeService"/> and turns its result into the reply. 250 only after intake
/// committed body, record and wake-up (rule 1).
/// </summary>
/// <remarks>
/// Never throws: SmtpServer sends no reply for a thrown <see cref="SmtpResponseException"/> and a
/// permanent 554 for anything else, so every failure here becomes 451 4.3.0. The body, already
/// checked while it arrived, comes from the session input, not from SmtpServer's buffer; its
/// temporary copy is released when this call ends, once intake has stored it or failed.
/// <para>
/// The reply comes within <paramref name="finalDotTimeout"/> of the final dot: the client gives up
/// after 10 minutes (RFC 5321 §4.5.3.2.6) and would send the message again, so a spool that has not
/// committed by then is cancelled (intake undoes what it wrote) and the answer is 451.
/// </para>
/// </remarks>
internal sealed class IntakeMessageStore(IntakeService intake, ILogger logger, Func<TimeSpan>? finalDotTimeout = null, TimeProvider? time = null) : IMessageStore
{
    private readonly Func<TimeSpan> _finalDotTimeout = finalDotTimeout ?? (() => TimeSpan.FromMinutes(5));
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    private static readonly SmtpResponse TooBig = new(SmtpReplyCode.SizeLimitExceeded, "5.3.4 Message size exceeds fixed maximum message size");
    private static readonly SmtpResponse BareLineEndings = new(SmtpReplyCode.MailboxUnavailable, "5.6.0 Bare CR or LF or NUL in message not accepted");
    private static readonly SmtpResponse LineTooLong = new(SmtpReplyCode.CommandUnrecognized, "5.5.2 Line too long");
    private static readonly SmtpResponse HeaderTooBig = new(SmtpReplyCode.SizeLimitExceeded, "5.3.4 Message header too large");
    private static readonly SmtpResponse TooManyHops = new(SmtpReplyCode.TransactionFailed, "5.4.6 Too many hops");
    private static readonly SmtpResponse TryLater = new(SmtpReplyCode.Aborted, "4.3.0 Temporary failure, please try again later");
    private static readonly SmtpResponse NoSpace = new(SmtpReplyCode.InsufficientStorage, "4.3.1 Insufficient system storage, please try again later");

    public async Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
    {
        var client = SessionHooks.ClientAddress(context);
        var sender = string.Empty;
        try
        {
            var state = SessionState.Of(context);
            sender = state.Sender ?? transaction.From?.AsAddress() ?? string.Empty;

            // The buffer is SmtpServer's placeholder: the body was read by the session input.
            using var body = state.Input.TakeBody();
            if (body is null)
            {
                Log.IntakeFailed(logger, client, sender, "no body was read");
                return TryLater;
            }

            if (body.Oversized)
            {
                Log.MessageRefused(logger, client, sender, "message too big");
                return TooBig;
            }

            if (body.Violation != ContentViolation.None)
            {
                var (response, reason) = Refusal(body.Violation);
                Log.MessageRefused(logger, client, sender, reason);
                return response;
            }

            if (body.StorageError is { } error)
            {
                var reply = StorageErrors.IsOutOfSpace(error) ? NoSpace : TryLater;
                Log.BodyNotKept(logger, error, client, sender, (int)reply.ReplyCode);
                return reply;
            }

            if (body.Content is not { } content)
            {
                Log.IntakeFailed(logger, client, sender, "the body was not kept");
                return TryLater;
            }

            var message = new IncomingMessage
            {
                Sender = sender,
                Parameters = state.Mail,
                // A recipient given twice in the transaction was answered 250 twice, as Postfix does,
                // and is kept once.
                Recipients = transaction.To.Select(to => ToRecipient(state, to)).DistinctBy(r => EnvelopeAddress.Key(r.Address)).ToList(),
                ClientAddress = client,
                HeloName = state.HeloName,
                Extended = state.Extended,
                Secure = context.Pipe?.IsSecure ?? false,
                Content = content,
            };

            IntakeResult result;
            var finalDot = _finalDotTimeout();
            using (var timer = new CancellationTokenSource(finalDot, _time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token))
            {
                try
                {
                    result = await intake.AcceptAsync(message, linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    Log.FinalDotTimeout(logger, client, sender, finalDot);
                    return TryLater;
                }

                if (result is IntakeResult.Failed && timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    Log.FinalDotTimeout(logger, client, sender, finalDot);
                    return TryLater;
                }
            }

            switch (result)
            {
                case IntakeResult.Accepted accepted:
                    var ids = string.Join(' ', accepted.QueueIds);
                    Log.Queued(logger, client, ids);
                    return new SmtpResponse(SmtpReplyCode.Ok, "2.0.0 Ok: queued as " + ids);
                case IntakeResult.Failed failed:
                    Log.IntakeFailed(logger, client, sender, failed.Reason);
                    return failed.InsufficientStorage ? NoSpace : TryLater;
                default:
                    return TryLater;
            }
        }
        catch (Exception ex)
        {
            Log.StoreError(logger, ex, client);
            return TryLater;
        }
    }

    private static (SmtpResponse Response, string Reason) Refusal(ContentViolation violation) => violation switch
    {
        ContentViolation.BareLineEnding => (BareLineEndings, "bare CR, LF or NUL"),
        ContentViolation.LineTooLong => (LineTooLong, "line too long"),
        ContentViolation.HeaderTooLarge => (HeaderTooBig, "header section too large"),
        _ => (TooManyHops, "too many Received headers"),
    };

    // Every accepted RCPT went through SessionHooks, which kept its address as written.
    private static IncomingRecipient ToRecipient(SessionState state, IMailbox to) =>
        state.Recipients.TryGetValue(to, out var parameters)
            ? new IncomingRecipient(parameters.Address, parameters.Notify, parameters.OriginalRecipient)
            : new IncomingRecipient(to.AsAddress() ?? string.Empty);
}
