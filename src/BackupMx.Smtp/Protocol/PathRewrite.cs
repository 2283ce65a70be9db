using System.Text;
using System.Text.RegularExpressions;

namespace BackupMx.Smtp.Protocol;

/// <summary>
/// MAIL and RCPT paths that SmtpServer 11.1 cannot take as they are, and what it is handed instead.
/// </summary>
/// <remarks>
/// <para>
/// A quoted local part: SmtpServer reads it with <see cref="Regex.Unescape"/>, which throws on most
/// RFC 5321 quoted-pairs (<c>"a\q"</c>) and turns others into control characters (<c>\n</c>), and
/// the exception ends the session without a reply. The path is checked against RFC 5321 §4.1.2
/// here; SmtpServer gets the same local part in a form its reading gets right (a Dot-string where
/// the value is one, else quoted with only <c>\\</c> and <c>\"</c>), and the later stages keep the
/// path as the client wrote it.
/// </para>
/// <para>
/// A domain with a trailing dot (<c>u@example.test.</c>, the absolute form of the name): SmtpServer
/// refuses it; Postfix takes it. SmtpServer and the later stages get it without the dot.
/// </para>
/// </remarks>
internal static class PathRewrite
{
    public abstract record Result;

    /// <param name="Line">The line for SmtpServer, CRLF included.</param>
    /// <param name="Remembered">The reading of the line the later stages use (stored address, parameters).</param>
    public sealed record Rewritten(string Line, EnvelopeLine Remembered) : Result;

    /// <param name="Reply">The whole reply line.</param>
    public sealed record Refused(string Reply) : Result;

    /// <summary>Null when SmtpServer can take <paramref name="text"/> as it is.</summary>
    public static Result? Of(string text, EnvelopeLine envelope)
    {
        var path = envelope.Path;
        var route = path.StartsWith('@') && path.IndexOf(':') is var colon and > 0 ? colon + 1 : 0;
        var mailbox = path[route..];
        if (mailbox.Length == 0)
        {
            return null;
        }

        var localPart = mailbox;
        var domain = string.Empty;
        var quoted = mailbox[0] == '"';
        string? value = null;
        if (quoted)
        {
            var end = EndOfQuotedString(mailbox, out value);
            if (end < 0 || end + 1 >= mailbox.Length || mailbox[end + 1] != '@')
            {
                return new Refused(SyntaxError(envelope));
            }

            localPart = mailbox[..(end + 1)];
            domain = mailbox[(end + 2)..];
        }
        else if (mailbox.LastIndexOf('@') is var at and >= 0)
        {
            localPart = mailbox[..at];
            domain = mailbox[(at + 1)..];
        }
        else
        {
            return null;
        }

        var trimmed = domain.Length > 1 && domain[^1] == '.' && domain[0] != '[' && domain[^2] != '.' ? domain[..^1] : domain;
        if (!quoted && trimmed.Length == domain.Length)
        {
            return null;
        }

        var forServer = localPart;
        if (quoted)
        {
            forServer = ForSmtpServer(value!);
            if (forServer is null)
            {
                return new Refused(SyntaxError(envelope));
            }
        }

        var open = text.IndexOf('<', StringComparison.Ordinal);
        var close = open + 1 + path.Length;
        var newPath = path[..route] + forServer + "@" + trimmed;
        var line = string.Concat(text.AsSpan(0, open + 1), newPath, text.AsSpan(close));
        if (!line.EndsWith("\r\n", StringComparison.Ordinal))
        {
            line += "\r\n";
        }

        // The later stages keep the local part as written; the domain without its dot.
        var remembered = envelope with { Path = path[..route] + localPart + "@" + trimmed };
        return new Rewritten(line, remembered);
    }

    private static string SyntaxError(EnvelopeLine envelope) => envelope.Verb == EnvelopeVerb.Mail
        ? "501 5.1.7 Bad sender address syntax"
        : "501 5.1.3 Bad recipient address syntax";

    /// <summary>
    /// The index of the closing quote of the Quoted-string starting at 0 (RFC 5321 §4.1.2:
    /// qtextSMTP is %d32-33 / %d35-91 / %d93-126, RFC 6531 adds UTF-8, quoted-pairSMTP is "\" %d32-126), and its value
    /// with the quoted-pairs undone; -1 when it is not one.
    /// </summary>
    private static int EndOfQuotedString(string mailbox, out string value)
    {
        var sb = new StringBuilder(mailbox.Length);
        value = string.Empty;
        for (var i = 1; i < mailbox.Length; i++)
        {
            var c = mailbox[i];
            if (c == '"')
            {
                value = sb.ToString();
                return i;
            }

            if (c == '\\')
            {
                if (i + 1 >= mailbox.Length || mailbox[i + 1] is < ' ' or > '~')
                {
                    return -1;
                }

                sb.Append(mailbox[++i]);
            }
            else if (c is >= ' ' and <= '~' or >= '\u0080')
            {
                // Octets from 0x80 are RFC 6531's UTF8-non-ascii (the line is read as Latin-1).
                sb.Append(c);
            }
            else
            {
                return -1;
            }
        }

        return -1;
    }

    /// <summary>
    /// The local part <paramref name="value"/> written so that SmtpServer's reading (outer quotes
    /// trimmed, then <see cref="Regex.Unescape"/>) gives it back; null when no form does.
    /// </summary>
    private static string? ForSmtpServer(string value)
    {
        var form = EnvelopeAddress.Format(value, "x");
        form = form[..^2];
        try
        {
            return Regex.Unescape(form.Trim('"')) == value ? form : null;
        }
        catch (RegexParseException)
        {
            return null;
        }
    }
}
