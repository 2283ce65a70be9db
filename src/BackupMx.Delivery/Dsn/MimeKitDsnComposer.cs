// DSNs: the bounce a sender gets when we give up on some recipients, and the
// "relayed" notice for recipients that asked for NOTIFY=SUCCESS when the primary
// does not offer DSN and so will never send one (RFC 3464, RFC 3461 §5.2.2).
//
// A multipart/report with three parts: words for the person, a machine-readable
// message/delivery-status (one group for the message, one per recipient, each
// with its own Action, so one report can carry failed and relayed recipients
// side by side), and the original: only its header section
// (text/rfc822-headers) unless the sender asked for RET=FULL and the report has
// a failed recipient: RET concerns "failed" DSNs (RFC 3461 §4.3), and a report of
// success returns the headers only, so NOTIFY=SUCCESS RET=FULL with a forged
// sender cannot have us mail a copy of the message elsewhere. The original is
// copied byte for byte, not re-serialised, so what the sender sees is what we
// received.
using System.Globalization;
using System.Text;
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Delivery.Smtp;
using Microsoft.Extensions.Options;
using MimeKit;
using MimeKit.Utils;

namespace BackupMx.Delivery.Dsn;

public sealed class MimeKitDsnComposer(IOptions<BackupMxOptions> options, TimeProvider time) : IDsnComposer
{
    /// <summary>Subject of a DSN with at least one failed recipient: a failure is what the sender must notice.</summary>
    public const string Subject = "Undelivered Mail Returned to Sender";

    /// <summary>Subject of a DSN whose recipients were all relayed.</summary>
    public const string RelayedSubject = "Delivery Status Notification (Relayed)";

    public async Task ComposeAsync(SpoolRecord original, IReadOnlyList<DsnRecipient> recipients, Stream? originalBody, Stream output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(recipients);
        var hostName = options.Value.HostName;
        var now = time.GetUtcNow();

        byte[]? originalBytes = null;
        if (originalBody is not null)
        {
            var copy = new MemoryStream();
            await originalBody.CopyToAsync(copy, cancellationToken).ConfigureAwait(false);
            originalBytes = copy.ToArray();
        }

        var message = new MimeMessage();
        message.From.Add(new MailboxAddress("Mail Delivery System", $"MAILER-DAEMON@{hostName}"));

        // Only a sender we could not write stays out of To: MimeKit would throw, and that DSN's own
        // delivery then fails here with 5.1.3 rather than leave the message retrying its DSN forever.
        if (EnvelopeMailbox.From(original.Sender) is { } sender)
        {
            message.To.Add(sender);
        }

        message.Subject = recipients.Any(r => r.Action == DsnAction.Failed) ? Subject : RelayedSubject;
        message.Date = now;
        message.MessageId = MimeUtils.GenerateMessageId(hostName);
        message.Headers.Add("Auto-Submitted", "auto-replied");

        var returnFull = ReturnsFullMessage(original, recipients);
        var words = HumanReadable(original, recipients, hostName, now, originalBytes is null ? null : returnFull);
        var report = new MultipartReport("delivery-status")
        {
            new TextPart("plain")
            {
                Text = words,

                // Replies and addresses may carry 8-bit text; the DSN itself must pass any relay.
                ContentTransferEncoding = words.All(char.IsAscii) ? ContentEncoding.SevenBit : ContentEncoding.QuotedPrintable,
            },
            DeliveryStatus(original, recipients, hostName),
        };

        // The third part is optional (RFC 6522 §3): a DSN about a message whose body is gone is still owed.
        if (originalBytes is not null)
        {
            report.Add(OriginalPart(originalBytes, returnFull));
        }

        message.Body = report;

        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        await message.WriteToAsync(format, output, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The whole message only for RET=FULL in a report that has a failure; headers otherwise.</summary>
    private static bool ReturnsFullMessage(SpoolRecord original, IReadOnlyList<DsnRecipient> recipients) =>
        original.Parameters.ReturnFullMessage && recipients.Any(r => r.Action == DsnAction.Failed);

    /// <param name="returnFull">Whether the whole original is attached; null when it could not be included at all.</param>
    private static string HumanReadable(SpoolRecord original, IReadOnlyList<DsnRecipient> recipients, string hostName, DateTimeOffset now, bool? returnFull)
    {
        var failed = recipients.Where(r => r.Action == DsnAction.Failed).Select(r => r.Recipient).ToList();
        var relayed = recipients.Where(r => r.Action == DsnAction.Relayed).Select(r => r.Recipient).ToList();
        var attached = returnFull switch
        {
            true => "It is attached below.\r\n",
            false => "Its headers are attached below.\r\n",
            null => "Its content could not be included: our copy of it is no longer available.\r\n",
        };
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"This is the mail system at host {hostName}.\r\n\r\n");
        if (failed.Count > 0)
        {
            text.Append("Your message could not be delivered to one or more recipients.\r\n");
            text.Append(attached).Append("\r\n");
            Failures(text, original, failed, now);
        }

        if (relayed.Count > 0)
        {
            if (failed.Count > 0)
            {
                text.Append("\r\n");
            }

            text.Append(CultureInfo.InvariantCulture, $"Your message was delivered to the mail server of {original.Domain} for the\r\n");
            text.Append("recipients below, as you asked to be told. That server does not send delivery\r\n");
            text.Append("notifications, so this does not confirm delivery to their mailboxes, and no\r\n");
            text.Append("further notice of success will follow.\r\n");
            if (failed.Count == 0)
            {
                text.Append(attached);
            }

            text.Append("\r\n");
            foreach (var recipient in relayed)
            {
                text.Append(CultureInfo.InvariantCulture, $"<{recipient.Address}>: delivered to {recipient.RemoteHost ?? "the server"}");
                text.Append(recipient.LastReply is { } reply ? $", which said: {reply}\r\n" : ".\r\n");
            }
        }

        return text.ToString();
    }

    private static void Failures(StringBuilder text, SpoolRecord original, List<RecipientState> failed, DateTimeOffset now)
    {
        foreach (var recipient in failed)
        {
            text.Append(CultureInfo.InvariantCulture, $"<{recipient.Address}>: ");
            if (recipient.FailureStatus == "4.4.7")
            {
                var tried = (recipient.CompletedAt ?? now) - original.ReceivedAt;
                text.Append(CultureInfo.InvariantCulture, $"we tried to deliver it for {Describe(tried)} without success and gave up.");
                if (recipient.LastReply is { } last)
                {
                    text.Append(last.FromRemote
                        ? $" The last attempt, at {recipient.RemoteHost ?? "the recipient's server"}, was answered: {last}"
                        : $" The last attempt failed: {last.Text}");
                }
                else
                {
                    text.Append(" No attempt reached a server.");
                }
            }
            else if (recipient.LastReply is { } reply)
            {
                text.Append(reply.FromRemote
                    ? $"the server {recipient.RemoteHost ?? "of the recipient"} refused it: {reply}"
                    : $"this mail system could not send it on: {reply}");
            }
            else
            {
                text.Append("it could not be delivered.");
            }

            text.Append("\r\n");
        }
    }

    /// <summary>How long we tried, exact to the minute (rounded down): "less than a minute", "2 hours 5 minutes", "5 days".</summary>
    internal static string Describe(TimeSpan span)
    {
        var total = (long)Math.Floor(Math.Max(0, span.TotalMinutes));
        if (total == 0)
        {
            return "less than a minute";
        }

        var parts = new List<string>(3);
        Add(parts, total / (24 * 60), "day");
        Add(parts, total / 60 % 24, "hour");
        Add(parts, total % 60, "minute");
        return string.Join(' ', parts);

        static void Add(List<string> parts, long count, string unit)
        {
            if (count > 0)
            {
                parts.Add(string.Create(CultureInfo.InvariantCulture, $"{count} {unit}{(count == 1 ? string.Empty : "s")}"));
            }
        }
    }

    private static MessageDeliveryStatus DeliveryStatus(SpoolRecord original, IReadOnlyList<DsnRecipient> recipients, string hostName)
    {
        var status = new MessageDeliveryStatus();
        var perMessage = new HeaderList
        {
            { "Reporting-MTA", $"dns; {hostName}" },
        };
        if (!string.IsNullOrEmpty(original.HeloName))
        {
            perMessage.Add("Received-From-MTA", $"dns; {original.HeloName}");
        }

        if (!string.IsNullOrEmpty(original.Parameters.EnvelopeId))
        {
            perMessage.Add("Original-Envelope-Id", original.Parameters.EnvelopeId);
        }

        perMessage.Add("Arrival-Date", DateUtils.FormatDate(original.ReceivedAt));
        status.StatusGroups.Add(perMessage);

        foreach (var (recipient, action) in recipients)
        {
            var relayed = action == DsnAction.Relayed;
            var group = new HeaderList();
            if (OriginalRecipient(recipient.OriginalRecipient) is { } orcpt)
            {
                group.Add("Original-Recipient", orcpt);
            }

            group.Add("Final-Recipient", $"rfc822; {recipient.Address}");
            group.Add("Action", relayed ? "relayed" : "failed");
            group.Add("Status", relayed
                ? (recipient.LastReply is { IsSuccess: true } accepted ? accepted.StatusCode : "2.0.0")
                : recipient.FailureStatus ?? recipient.LastReply?.StatusCode ?? "5.0.0");
            if (!string.IsNullOrEmpty(recipient.RemoteHost))
            {
                group.Add("Remote-MTA", $"dns; {recipient.RemoteHost}");
            }

            // A remote server's words are an SMTP diagnostic. A connection failure of ours (what the
            // last attempt met before the retention ran out) is the diagnostic of its own type, as
            // Postfix writes "X-Postfix; connect to ...: Connection refused". A refusal we decided
            // ourselves (an address we cannot write) is in Status and the text.
            if (recipient.LastReply is { FromRemote: true } reply)
            {
                group.Add("Diagnostic-Code", $"smtp; {reply}");
            }
            else if (recipient.LastReply is { IsTransient: true } local)
            {
                group.Add("Diagnostic-Code", $"X-BackupMx; {local.Text}");
            }

            // A relayed recipient's attempt is the one that delivered it; a later attempt may have
            // been for other recipients, while it waited for this DSN to be queued.
            if ((relayed ? recipient.CompletedAt ?? original.LastAttemptAt : original.LastAttemptAt ?? recipient.CompletedAt) is { } lastAttempt)
            {
                group.Add("Last-Attempt-Date", DateUtils.FormatDate(lastAttempt));
            }

            status.StatusGroups.Add(group);
        }

        return status;
    }

    /// <summary>ORCPT is "addr-type;xtext" (RFC 3461 §4.2); the DSN field carries it decoded (RFC 3464 §2.3.1).</summary>
    internal static string? OriginalRecipient(string? orcpt)
    {
        if (string.IsNullOrWhiteSpace(orcpt))
        {
            return null;
        }

        var semicolon = orcpt.IndexOf(';');
        var type = semicolon < 0 ? "rfc822" : orcpt[..semicolon].Trim();
        var address = semicolon < 0 ? orcpt.Trim() : orcpt[(semicolon + 1)..].Trim();
        // Intake accepted only valid xtext; anything else is shown as it was given.
        var decoded = Xtext.TryDecode(address, out var text) ? text : address;
        return $"{type}; {decoded}";
    }

    private static MimePart OriginalPart(byte[] original, bool full)
    {
        // Copied as raw content rather than parsed and written again, so nothing is re-encoded.
        var bytes = full ? original : HeaderSection(original);
        var part = full ? new MimePart("message", "rfc822") : new MimePart("text", "rfc822-headers");
        part.Content = new MimeContent(new MemoryStream(bytes));
        part.ContentTransferEncoding = Array.Exists(bytes, b => b >= 0x80) ? ContentEncoding.EightBit : ContentEncoding.SevenBit;
        return part;
    }

    /// <summary>The header section of a message: everything before the first empty line.</summary>
    internal static byte[] HeaderSection(byte[] message)
    {
        for (var i = 0; i < message.Length; i++)
        {
            if (message[i] != '\n')
            {
                continue;
            }

            if (i + 1 < message.Length && message[i + 1] == '\n')
            {
                return message[..(i + 1)];
            }

            if (i + 2 < message.Length && message[i + 1] == '\r' && message[i + 2] == '\n')
            {
                return message[..(i + 1)];
            }
        }

        return message;
    }
}
