using BackupMx.Core.Model;
using BackupMx.Smtp.Connection;
using SmtpServer;
using SmtpServer.Mail;

namespace BackupMx.Smtp.Protocol;

/// <summary>What we track per session beyond SmtpServer's own context.</summary>
internal sealed class SessionState(SessionInput input)
{
    private const string Key = "BackupMx:Session";

    public SessionInput Input { get; } = input;

    /// <summary>The name given in the last HELO or EHLO (SmtpServer does not keep it).</summary>
    public string? HeloName { get; set; }

    /// <summary>True after EHLO, false after HELO: MAIL and RCPT parameters are only valid after EHLO (RFC 5321 §4.1.1.11).</summary>
    public bool Extended { get; set; }

    /// <summary>The parameters of the last accepted MAIL, values checked and ENVID decoded.</summary>
    public MailParameters Mail { get; set; } = new();

    /// <summary>The reverse-path of the last accepted MAIL as it is stored and sent on ("" for the null sender).</summary>
    public string? Sender { get; set; }

    /// <summary>Recipients accepted since the last MAIL (SmtpServer's transaction is not public).</summary>
    public int AcceptedRecipients { get; set; }

    /// <summary>The recipients accepted since the last MAIL, by <see cref="EnvelopeAddress.Key"/>.</summary>
    public HashSet<string> AcceptedAddresses { get; } = new(StringComparer.Ordinal);

    /// <summary>Address, NOTIFY and ORCPT of each accepted RCPT, keyed by the very mailbox object SmtpServer adds to the transaction.</summary>
    public Dictionary<IMailbox, RecipientParameters> Recipients { get; } = new(ReferenceEqualityComparer.Instance);

    public static SessionState Of(ISessionContext context)
    {
        if (context.Properties.TryGetValue(Key, out var value) && value is SessionState state)
        {
            return state;
        }

        var pipe = (SessionPipe)context.Properties[ReceiverListenerFactory.SessionPipeKey];
        state = new SessionState(pipe.SessionInput);
        context.Properties[Key] = state;
        return state;
    }
}

/// <param name="Address">The forward-path as it is stored and sent on (see <see cref="EnvelopeAddress"/>).</param>
internal sealed record RecipientParameters(string Address, string? Notify, string? OriginalRecipient);
