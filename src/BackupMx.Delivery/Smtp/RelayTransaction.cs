using System.Globalization;
using System.Text;
using BackupMx.Core.Model;
using MailKit.Net.Smtp;

namespace BackupMx.Delivery.Smtp;

/// <summary>
/// One SMTP transaction with the stored envelope: MAIL FROM with the stored parameters, one RCPT
/// per recipient with its stored NOTIFY and ORCPT, DATA with the stored bytes. Each parameter
/// goes out exactly as stored, and only when the server advertised its extension (RFC 1870 SIZE,
/// RFC 6152 BODY, RFC 3461 DSN, RFC 6531 SMTPUTF8); nothing is derived from the body.
/// </summary>
internal static class RelayTransaction
{
    /// <summary>Runs the transaction; exceptions (I/O, timeouts, protocol errors) are the caller's.</summary>
    /// <param name="size">The stored length: the body as received plus our Received header.</param>
    /// <param name="smtpUtf8">Whether to send SMTPUTF8 (decided by the caller from the stored envelope and the capability).</param>
    /// <param name="replies">Filled as the replies arrive, so a caller that catches an exception knows what was answered before it.</param>
    public static async Task RunAsync(
        RelaySmtpClient client,
        string sender,
        MailParameters parameters,
        IReadOnlyList<RecipientState> recipients,
        long size,
        bool smtpUtf8,
        Stream body,
        TransactionReplies replies,
        CancellationToken cancellationToken)
    {
        var capabilities = client.Capabilities;
        var mail = MailCommand(sender, parameters, size, smtpUtf8, capabilities);
        SmtpReply data;
        if (capabilities.HasFlag(SmtpCapabilities.Pipelining) && RelaySmtpClient.CanPipeline)
        {
            if (await PipelineEnvelopeAsync(client, mail, recipients, capabilities, replies, cancellationToken).ConfigureAwait(false) is not { } pipelined)
            {
                return;
            }

            data = pipelined;
        }
        else
        {
            replies.Mail = await client.CommandAsync(mail, cancellationToken).ConfigureAwait(false);
            if (!replies.Mail.IsSuccess)
            {
                return;
            }

            foreach (var recipient in recipients)
            {
                var reply = await client.CommandAsync(RcptCommand(recipient, capabilities), cancellationToken).ConfigureAwait(false);
                replies.Recipients.Add(RelaySmtpClient.RecipientReply(reply));
            }

            if (!replies.Recipients.Any(r => r.IsSuccess))
            {
                return;
            }

            data = await client.CommandAsync("DATA", cancellationToken).ConfigureAwait(false);
        }

        if (data.Code != 354)
        {
            replies.Data = data;
            return;
        }

        body.Position = 0;
        replies.Data = await client.SendDataAsync(body, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Commands sent before their replies are read: small enough that neither side's socket buffer can fill while the other waits.</summary>
    internal const int PipelineGroup = 100;

    /// <summary>
    /// RFC 2920: MAIL, the RCPTs and DATA go out in groups of <see cref="PipelineGroup"/> commands
    /// (DATA last), and every reply is read, in order, before the next group. The replies mean what
    /// they mean one command at a time, with two exceptions the server cannot avoid: after a refused
    /// MAIL the rest is not read (the RCPT replies would only say that MAIL is missing, and the
    /// connection is not used again), and a 354 after every RCPT was refused gets an empty message,
    /// ended at once, so the server does not wait for data that never comes (§3.1).
    /// </summary>
    /// <returns>The reply to DATA, or null when the transaction ended before it (<paramref name="replies"/> says why).</returns>
    private static async Task<SmtpReply?> PipelineEnvelopeAsync(
        RelaySmtpClient client, string mail, IReadOnlyList<RecipientState> recipients, SmtpCapabilities capabilities, TransactionReplies replies, CancellationToken cancellationToken)
    {
        var commands = new List<string>(recipients.Count + 2) { mail };
        commands.AddRange(recipients.Select(r => RcptCommand(r, capabilities)));
        commands.Add("DATA");
        SmtpReply? data = null;
        for (var start = 0; start < commands.Count; start += PipelineGroup)
        {
            var count = Math.Min(PipelineGroup, commands.Count - start);
            await client.PipelineAsync(commands.Skip(start).Take(count), cancellationToken).ConfigureAwait(false);
            for (var i = start; i < start + count; i++)
            {
                var reply = await client.ReadReplyAsync(cancellationToken).ConfigureAwait(false);
                if (i == 0)
                {
                    replies.Mail = reply;
                    if (!reply.IsSuccess)
                    {
                        return null;
                    }
                }
                else if (i <= recipients.Count)
                {
                    replies.Recipients.Add(RelaySmtpClient.RecipientReply(reply));
                }
                else
                {
                    data = reply;
                }
            }
        }

        if (!replies.Recipients.Any(r => r.IsSuccess))
        {
            if (data is { Code: 354 })
            {
                await client.CommandAsync(".", cancellationToken).ConfigureAwait(false);
            }

            return null;
        }

        return data;
    }

    public static string MailCommand(string sender, MailParameters parameters, long size, bool smtpUtf8, SmtpCapabilities capabilities)
    {
        var line = new StringBuilder("MAIL FROM:<").Append(sender).Append('>');
        if (smtpUtf8)
        {
            line.Append(" SMTPUTF8");
        }

        if (capabilities.HasFlag(SmtpCapabilities.Size) && size >= 0)
        {
            line.Append(" SIZE=").Append(size.ToString(CultureInfo.InvariantCulture));
        }

        if (capabilities.HasFlag(SmtpCapabilities.EightBitMime) && parameters.Body is { Length: > 0 } bodyType)
        {
            line.Append(" BODY=").Append(bodyType.ToUpperInvariant());
        }

        if (capabilities.HasFlag(SmtpCapabilities.Dsn))
        {
            if (parameters.Ret is { Length: > 0 } ret)
            {
                line.Append(" RET=").Append(ret.ToUpperInvariant());
            }

            if (!string.IsNullOrEmpty(parameters.EnvelopeId))
            {
                line.Append(" ENVID=").Append(Xtext.Encode(parameters.EnvelopeId));
            }
        }

        return line.ToString();
    }

    public static string RcptCommand(RecipientState recipient, SmtpCapabilities capabilities)
    {
        var line = new StringBuilder("RCPT TO:<").Append(recipient.Address).Append('>');
        if (capabilities.HasFlag(SmtpCapabilities.Dsn))
        {
            if (recipient.Notify is { Length: > 0 } notify)
            {
                line.Append(" NOTIFY=").Append(notify.ToUpperInvariant());
            }

            if (recipient.OriginalRecipient is { Length: > 0 } orcpt)
            {
                // RFC 3461 §4.2: a relay passes the client's ORCPT on unchanged.
                line.Append(" ORCPT=").Append(orcpt);
            }
            else if (recipient.Notify is { Length: > 0 } && Ascii.IsValid(recipient.Address))
            {
                // Without one, a relay may add it (§4.2); with NOTIFY the primary's DSN then names
                // the address the sender used. A UTF-8 address would need utf-8 addr-type (RFC 6533).
                line.Append(" ORCPT=rfc822;").Append(Xtext.Encode(recipient.Address));
            }
        }

        return line.ToString();
    }
}

/// <summary>The replies of one transaction: to MAIL, to each RCPT (in order), and the last one of DATA (its refusal, or the reply after the body).</summary>
internal sealed class TransactionReplies
{
    public SmtpReply? Mail { get; set; }

    public List<SmtpReply> Recipients { get; } = [];

    public SmtpReply? Data { get; set; }

    /// <summary>The final reply was 2xx: the server took the message for the accepted recipients and is at the start of a new transaction.</summary>
    public bool Completed => Data is { IsSuccess: true };
}
