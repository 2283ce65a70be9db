using BackupMx.Core.Configuration;
using SmtpServer.Mail;

namespace BackupMx.Smtp.Protocol;

/// <summary>
/// The address of a MAIL or RCPT path as we store and later send it. SmtpServer's mailbox has the
/// quotes of a quoted local part stripped and its backslashes read as .NET regex escapes, so
/// <c>"a b"@d</c> becomes <c>a b@d</c> and <c>"a\nb"@d</c> (RFC 5321: "anb") gets a line feed. Such
/// an address cannot be sent on (MimeKit refuses it and the whole message stays deferred) and must
/// never reach a command line to the primary. The path as the client wrote it is used instead.
/// </summary>
internal static class EnvelopeAddress
{
    /// <summary>
    /// The mailbox of <paramref name="path"/> (the text between the angle brackets, source route
    /// dropped, RFC 5321 §4.1.1.3) when it names the same domain as SmtpServer's parse; otherwise
    /// SmtpServer's mailbox, its local part quoted again where it needs quotes. Null when the
    /// address holds a control character. "" for the null reverse-path.
    /// </summary>
    public static string? From(string? path, IMailbox mailbox)
    {
        if (string.IsNullOrEmpty(mailbox.User) && string.IsNullOrEmpty(mailbox.Host))
        {
            return string.Empty;
        }

        var written = path is null ? null : WithoutSourceRoute(path);
        var address = written is not null && NamesDomain(written, mailbox.Host ?? string.Empty)
            ? written
            : Format(mailbox.User ?? string.Empty, mailbox.Host ?? string.Empty);
        return address.Any(c => c < ' ' || c == '\x7f') ? null : address;
    }

    /// <summary>
    /// What makes two stored addresses the same recipient: the local part as written (RFC 5321
    /// §2.4: it may be case-sensitive) and the domain in any case.
    /// </summary>
    public static string Key(string address)
    {
        var at = address.LastIndexOf('@');
        return at < 0 ? address : string.Concat(address.AsSpan(0, at + 1), address[(at + 1)..].ToLowerInvariant());
    }

    // A-d-l ":" Mailbox; the route holds no quotes, so its end is the first colon.
    private static string WithoutSourceRoute(string path) =>
        path.StartsWith('@') && path.IndexOf(':') is var colon and > 0 ? path[(colon + 1)..] : path;

    // An internationalized path (RFC 6531, read as UTF-8 by the input) reached SmtpServer as an
    // ASCII stand-in with the domain as A-labels (SessionInput), so its domain is compared in that form.
    public static bool NamesDomain(string written, string host)
    {
        if (written.All(c => c < 0x80))
        {
            return written.EndsWith("@" + host, StringComparison.OrdinalIgnoreCase);
        }

        var at = written.LastIndexOf('@');
        return at > 0 && string.Equals(DomainName.ToAscii(written[(at + 1)..]), host, StringComparison.OrdinalIgnoreCase);
    }

    internal static string Format(string user, string host)
    {
        if (IsDotString(user))
        {
            return user + "@" + host;
        }

        var quoted = user.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);
        return "\"" + quoted + "\"@" + host;
    }

    // Dot-string = Atom *("." Atom) (RFC 5321 §4.1.2), UTF-8 letters counted as atext (RFC 6531).
    private static bool IsDotString(string user)
    {
        if (user.Length == 0 || user[0] == '.' || user[^1] == '.' || user.Contains("..", StringComparison.Ordinal))
        {
            return false;
        }

        foreach (var c in user)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '.' || c >= 0x80 || "!#$%&'*+-/=?^_`{|}~".Contains(c, StringComparison.Ordinal)))
            {
                return false;
            }
        }

        return true;
    }
}
