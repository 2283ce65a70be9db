using MimeKit;

namespace BackupMx.Delivery.Smtp;

/// <summary>
/// Whether a stored envelope address can go into MAIL FROM or RCPT TO exactly as stored. The
/// transaction writes the stored text itself; an address MimeKit cannot parse, or parses into a
/// different one (a comment or a space dropped, a trailing dot removed), is no RFC 5321 mailbox a
/// primary would take as meant, so it counts as unwritable, as does any control character (which
/// could only end the command line early).
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
