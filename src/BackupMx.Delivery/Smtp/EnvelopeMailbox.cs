using MimeKit;

namespace BackupMx.Delivery.Smtp;

/// <summary>
/// A stored envelope address as the mailbox MailKit writes into MAIL FROM or RCPT TO. MailKit has
/// no raw-address send: it writes what MimeKit parsed, so an address MimeKit refuses cannot go
/// out at all, and one it normalises (a comment or a space dropped, a trailing dot removed) would
/// go out as a different address than the client gave. Both count as unwritable, as does any
/// control character (which could only end the command line early).
/// </summary>
internal static class EnvelopeMailbox
{
    /// <summary>The mailbox that is written exactly as <paramref name="address"/>, or null.</summary>
    public static MailboxAddress? From(string address)
    {
        if (address.Any(char.IsControl))
        {
            return null;
        }

        try
        {
            var mailbox = new MailboxAddress(string.Empty, address);
            return string.Equals(mailbox.Address, address, StringComparison.Ordinal) ? mailbox : null;
        }
        catch (ParseException)
        {
            return null;
        }
    }
}
