using System.Globalization;
using System.Net;
using BackupMx.Core.Configuration;
using Microsoft.Extensions.Logging;
using SmtpServer;
using SmtpServer.Net;
using SmtpServer.Protocol;

namespace BackupMx.Smtp.Protocol;

/// <summary>
/// Runs before each command (SmtpServer's CommandExecuting event). It records what SmtpServer
/// does not keep (HELO name, RCPT parameters), checks MAIL parameters, and tells the input that
/// the body follows. Throwing <see cref="SmtpResponseException"/> here answers the command
/// without running it.
/// </summary>
internal sealed class SessionHooks(BackupMxOptions options, ILogger logger)
{
    public void OnCommandExecuting(object? sender, SmtpCommandEventArgs e)
    {
        var state = SessionState.Of(e.Context);
        switch (e.Command)
        {
            case EhloCommand ehlo:
                state.HeloName = ehlo.DomainOrAddress;
                break;
            case HeloCommand helo:
                state.HeloName = helo.DomainOrAddress;
                break;
            case MailCommand mail:
                state.Recipients.Clear();
                state.AcceptedRecipients = 0;
                CheckMailParameters(e.Context, mail);
                break;
            case RcptCommand rcpt:
                RememberRcptParameters(e.Context, state, rcpt);
                break;
            case StartTlsCommand:
                // RFC 3207 §4.2: forget what the client said before the handshake.
                state.HeloName = null;
                break;
            case DataCommand:
                // SmtpServer answers 354 and reads the body exactly when there is a recipient.
                state.Input.DataAccepted = state.AcceptedRecipients > 0;
                break;
        }
    }

    private void CheckMailParameters(ISessionContext context, MailCommand mail)
    {
        var parameters = mail.Parameters;
        if (parameters is null)
        {
            return;
        }

        if (parameters.TryGetValue("SIZE", out var size) && size is not null)
        {
            if (!long.TryParse(size, NumberStyles.None, CultureInfo.InvariantCulture, out var declared))
            {
                Refuse(context, "MAIL", "SIZE");
            }

            if (declared > options.Smtp.MaxMessageBytes)
            {
                Log.DeclaredSizeTooLarge(logger, ClientAddress(context), size, options.Smtp.MaxMessageBytes);
                throw new SmtpResponseException(new SmtpResponse(SmtpReplyCode.SizeLimitExceeded, "5.3.4 Message size exceeds fixed maximum message size"));
            }
        }

        if (parameters.TryGetValue("RET", out var ret) && !string.Equals(ret, "FULL", StringComparison.OrdinalIgnoreCase) && !string.Equals(ret, "HDRS", StringComparison.OrdinalIgnoreCase))
        {
            Refuse(context, "MAIL", "RET");
        }

        if (parameters.TryGetValue("ENVID", out var envid) && (envid is null || !EsmtpParameters.TryDecodeXtext(envid, out _)))
        {
            Refuse(context, "MAIL", "ENVID");
        }

        if (parameters.TryGetValue("BODY", out var body) && !string.Equals(body, "7BIT", StringComparison.OrdinalIgnoreCase) && !string.Equals(body, "8BITMIME", StringComparison.OrdinalIgnoreCase))
        {
            Refuse(context, "MAIL", "BODY");
        }
    }

    // SmtpServer parses RCPT parameters and throws them away. The input remembers the line it
    // consumed last, which at this point is this RCPT command; the path in it must name the same
    // domain as the parsed command, or we keep nothing.
    private void RememberRcptParameters(ISessionContext context, SessionState state, RcptCommand rcpt)
    {
        var line = state.Input.LastLine;
        if (line is null
            || !EsmtpParameters.TryParseRcptLine(line, out var path, out var parameters)
            || !path.EndsWith("@" + rcpt.Address.Host, StringComparison.OrdinalIgnoreCase))
        {
            Log.RcptLineMismatch(logger, context.SessionId);
            return;
        }

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
            if (orcptValue is null || !EsmtpParameters.IsValidOriginalRecipient(orcptValue))
            {
                Refuse(context, "RCPT", "ORCPT");
            }

            orcpt = orcptValue;
        }

        if (notify is not null || orcpt is not null)
        {
            state.Recipients[rcpt.Address] = new RecipientParameters(notify, orcpt);
        }
    }

    private void Refuse(ISessionContext context, string command, string parameter)
    {
        Log.InvalidParameter(logger, command, parameter, ClientAddress(context));
        throw new SmtpResponseException(new SmtpResponse(SmtpReplyCode.SyntaxError, "5.5.4 Invalid parameter " + parameter));
    }

    public static string? ClientAddress(ISessionContext context)
    {
        if (context.Properties.TryGetValue(EndpointListener.RemoteEndPointKey, out var value) && value is IPEndPoint endpoint)
        {
            var address = endpoint.Address.IsIPv4MappedToIPv6 ? endpoint.Address.MapToIPv4() : endpoint.Address;
            return address.ToString();
        }

        return null;
    }
}
