using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Net;
using Microsoft.Extensions.Logging;
using SmtpServer;
using SmtpServer.Net;
using SmtpServer.Protocol;

namespace BackupMx.Smtp.Protocol;

/// <summary>
/// Runs before each command (SmtpServer's CommandExecuting event). It records what SmtpServer
/// does not keep (HELO name, RCPT parameters), checks the MAIL and RCPT parameter values of the
/// line the input parsed, and tells the input that
/// the body follows. Throwing <see cref="SmtpResponseException"/> here answers the command
/// without running it.
/// </summary>
internal sealed class SessionHooks(ILogger logger)
{
    public void OnCommandExecuting(object? sender, SmtpCommandEventArgs e)
    {
        var state = SessionState.Of(e.Context);
        switch (e.Command)
        {
            case EhloCommand ehlo:
                state.HeloName = ehlo.DomainOrAddress;
                state.Extended = true;
                break;
            case HeloCommand helo:
                state.HeloName = helo.DomainOrAddress;
                state.Extended = false;
                break;
            case MailCommand mailCommand:
                // Checked before anything is reset: a refused MAIL leaves the transaction as it was.
                var mail = ReadMailParameters(e.Context, state);
                var reversePath = EnvelopeAddress.From((state.Input.LastEnvelopeLine is { Verb: EnvelopeVerb.Mail } mailLine ? mailLine : null)?.Path, mailCommand.Address)
                    ?? throw RefuseAddress(e.Context, "MAIL", "5.1.7 Bad sender address syntax");
                state.Mail = mail;
                state.Sender = reversePath;
                state.Recipients.Clear();
                state.AcceptedRecipients = 0;
                state.AcceptedAddresses.Clear();
                break;
            case RcptCommand rcpt:
                RememberRcptParameters(e.Context, state, rcpt);
                break;
            case StartTlsCommand:
                // RFC 3207 §4.2: forget what the client said before the handshake.
                state.HeloName = null;
                state.Extended = false;
                break;
            case DataCommand:
                // SmtpServer answers 354 and reads the body exactly when there is a recipient.
                state.Input.DataAccepted = state.AcceptedRecipients > 0;
                break;
        }
    }

    // Parameters come from the line as the input read it (EnvelopeLine), which has already
    // refused repeated and unknown ones; here the values are checked.
    private MailParameters ReadMailParameters(ISessionContext context, SessionState state)
    {
        if (state.Input.LastEnvelopeLine is not { Verb: EnvelopeVerb.Mail } line)
        {
            Log.EnvelopeLineMismatch(logger, context.SessionId, "MAIL");
            return new MailParameters();
        }

        RefuseParametersWithoutEhlo(context, state, line);
        var parameters = line.Parameters;
        long? declared = null;
        if (parameters.TryGetValue("SIZE", out var size))
        {
            // A number too large for a long is still a size, and larger than any limit (RFC 1870 §6: 552).
            var tooLarge = size is { Length: > 0 } && size.All(char.IsAsciiDigit) && !long.TryParse(size, NumberStyles.None, CultureInfo.InvariantCulture, out _);
            if (!long.TryParse(size, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && !tooLarge)
            {
                Refuse(context, "MAIL", "SIZE");
            }

            // The limit this session advertised in EHLO, whatever a reload has set since.
            var maxBytes = state.Input.Limits.Body.MaxContentBytes;
            if (tooLarge || value > maxBytes)
            {
                Log.DeclaredSizeTooLarge(logger, ClientAddress(context), size!, maxBytes);
                throw new SmtpResponseException(new SmtpResponse(SmtpReplyCode.SizeLimitExceeded, "5.3.4 Message size exceeds fixed maximum message size"));
            }

            declared = value;
        }

        if (parameters.TryGetValue("RET", out var ret) && !string.Equals(ret, "FULL", StringComparison.OrdinalIgnoreCase) && !string.Equals(ret, "HDRS", StringComparison.OrdinalIgnoreCase))
        {
            Refuse(context, "MAIL", "RET");
        }

        string? envelopeId = null;
        // RFC 3461 §4.4: at most 100 characters (as sent, xtext).
        // Decoded, it must be printable US-ASCII (§4.4): it is written into the DSN's header
        // Original-Envelope-Id, where a CR or LF would start a header of the client's choosing.
        if (parameters.TryGetValue("ENVID", out var envid)
            && (envid is null or { Length: > 100 } || !Xtext.TryDecode(envid, out envelopeId) || envelopeId.Any(c => c is < ' ' or > '~')))
        {
            Refuse(context, "MAIL", "ENVID");
        }

        if (parameters.TryGetValue("BODY", out var body) && !string.Equals(body, "7BIT", StringComparison.OrdinalIgnoreCase) && !string.Equals(body, "8BITMIME", StringComparison.OrdinalIgnoreCase))
        {
            Refuse(context, "MAIL", "BODY");
        }

        // RFC 6531 §3.4: SMTPUTF8 takes no value.
        if (parameters.TryGetValue("SMTPUTF8", out var utf8) && utf8 is not null)
        {
            Refuse(context, "MAIL", "SMTPUTF8");
        }

        return new MailParameters
        {
            SmtpUtf8 = parameters.ContainsKey("SMTPUTF8"),
            Body = body?.ToUpperInvariant(),
            Ret = ret?.ToUpperInvariant(),
            EnvelopeId = string.IsNullOrEmpty(envelopeId) ? null : envelopeId,
            DeclaredSize = declared,
        };
    }

    // SmtpServer parses RCPT parameters and throws them away; the input kept the line it handed
    // over, and its path must name the same domain as SmtpServer's parse, or we keep nothing.
    private void RememberRcptParameters(ISessionContext context, SessionState state, RcptCommand rcpt)
    {
        if (state.Input.LastEnvelopeLine is not { Verb: EnvelopeVerb.Rcpt } line
            || !EnvelopeAddress.NamesDomain(line.Path, rcpt.Address.Host ?? string.Empty))
        {
            Log.EnvelopeLineMismatch(logger, context.SessionId, "RCPT");
            state.Recipients[rcpt.Address] = new RecipientParameters(
                EnvelopeAddress.From(null, rcpt.Address) ?? throw RefuseAddress(context, "RCPT", "5.1.3 Bad recipient address syntax"),
                null,
                null);
            return;
        }

        RefuseParametersWithoutEhlo(context, state, line);
        var parameters = line.Parameters;
        string? notify = null;
        if (parameters.TryGetValue("NOTIFY", out var notifyValue))
        {
            if (notifyValue is null || !EsmtpParameters.TryNormalizeNotify(notifyValue, out notify))
            {
                Refuse(context, "RCPT", "NOTIFY");
            }
        }

        string? orcpt = null;
        if (parameters.TryGetValue("ORCPT", out var orcptValue))
        {
            // RFC 3461 §4.2: at most 500 characters.
            if (orcptValue is null or { Length: > 500 } || !EsmtpParameters.IsValidOriginalRecipient(orcptValue))
            {
                Refuse(context, "RCPT", "ORCPT");
            }

            orcpt = orcptValue;
        }

        var address = EnvelopeAddress.From(line.Path, rcpt.Address) ?? throw RefuseAddress(context, "RCPT", "5.1.3 Bad recipient address syntax");
        state.Recipients[rcpt.Address] = new RecipientParameters(address, notify, orcpt);
    }

    // Service extensions, and so their parameters, exist only in a session opened with EHLO.
    private void RefuseParametersWithoutEhlo(ISessionContext context, SessionState state, EnvelopeLine line)
    {
        if (!state.Extended && line.Parameters.Count > 0)
        {
            Log.ParametersAfterHelo(logger, line.Verb == EnvelopeVerb.Mail ? "MAIL" : "RCPT", string.Join(' ', line.Parameters.Keys), ClientAddress(context));
            throw new SmtpResponseException(new SmtpResponse((SmtpReplyCode)555, "5.5.4 Parameters not recognised after HELO, use EHLO"));
        }
    }

    private SmtpResponseException RefuseAddress(ISessionContext context, string command, string text)
    {
        Log.InvalidParameter(logger, command, "address", ClientAddress(context));
        return new SmtpResponseException(new SmtpResponse(SmtpReplyCode.MailboxNameNotAllowed, text));
    }

    [DoesNotReturn]
    private void Refuse(ISessionContext context, string command, string parameter)
    {
        Log.InvalidParameter(logger, command, parameter, ClientAddress(context));
        throw new SmtpResponseException(new SmtpResponse(SmtpReplyCode.SyntaxError, "5.5.4 Invalid parameter " + parameter));
    }

    public static string? ClientAddress(ISessionContext context)
    {
        if (context.Properties.TryGetValue(EndpointListener.RemoteEndPointKey, out var value) && value is IPEndPoint endpoint)
        {
            return endpoint.Address.Unmapped().ToString();
        }

        return null;
    }
}
