using BackupMx.Core.Model;

namespace BackupMx.Smtp.Protocol;

internal enum EnvelopeVerb
{
    Mail,
    Rcpt,
}

internal enum EnvelopeLineProblem
{
    None,

    /// <summary>A parameter named twice (RFC 5321 §4.1.1.11 allows each once): 501 5.5.4.</summary>
    RepeatedParameter,

    /// <summary>A parameter we do not advertise for this command (RFC 5321 §4.1.1.11): 555 5.5.4.</summary>
    UnknownParameter,
}

/// <summary>
/// A MAIL or RCPT command line as the client sent it: the path between the angle brackets and the
/// ESMTP parameters after it. SmtpServer keeps no RCPT parameters, and 11.1 drops the session on a
/// repeated MAIL parameter, so the line is read here once and every later stage uses this.
/// </summary>
/// <param name="Path">The path without its angle brackets, exactly as given (quotes and source route kept).</param>
/// <param name="Parameters">Keyword (any case) → value, null for a keyword given without "=".</param>
internal sealed record EnvelopeLine(EnvelopeVerb Verb, string Path, IReadOnlyDictionary<string, string?> Parameters, EnvelopeLineProblem Problem)
{
    /// <summary>
    /// Reads a MAIL or RCPT line (CRLF optional). Null when it is neither, or has no complete
    /// &lt;path&gt;: SmtpServer then refuses it with its own syntax error.
    /// </summary>
    public static EnvelopeLine? Parse(string line)
    {
        var text = line.AsSpan().TrimEnd("\r\n");
        EnvelopeVerb verb;
        if (StartsWithVerb(text, "MAIL"))
        {
            verb = EnvelopeVerb.Mail;
        }
        else if (StartsWithVerb(text, "RCPT"))
        {
            verb = EnvelopeVerb.Rcpt;
        }
        else
        {
            return null;
        }

        var open = text.IndexOf('<');
        var close = open < 0 ? -1 : EndOfPath(text, open);
        if (close < 0)
        {
            return null;
        }

        var parameters = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var problem = EnvelopeLineProblem.None;
        var rest = text[(close + 1)..];
        foreach (var range in rest.Split(' '))
        {
            var token = rest[range];
            if (token.IsEmpty)
            {
                continue;
            }

            var eq = token.IndexOf('=');
            var key = (eq < 0 ? token : token[..eq]).ToString();
            if (!parameters.TryAdd(key, eq < 0 ? null : token[(eq + 1)..].ToString()))
            {
                problem = EnvelopeLineProblem.RepeatedParameter;
            }
            else if (problem == EnvelopeLineProblem.None && !IsKnown(verb, key))
            {
                problem = EnvelopeLineProblem.UnknownParameter;
            }
        }

        return new EnvelopeLine(verb, text[(open + 1)..close].ToString(), parameters, problem);
    }

    // The extensions we advertise: SIZE (RFC 1870), 8BITMIME (RFC 6152), DSN (RFC 3461), SMTPUTF8 (RFC 6531).
    private static bool IsKnown(EnvelopeVerb verb, string key) => verb switch
    {
        EnvelopeVerb.Mail => key.ToUpperInvariant() is "SIZE" or "BODY" or "RET" or "ENVID" or "SMTPUTF8",
        _ => key.ToUpperInvariant() is "NOTIFY" or "ORCPT",
    };

    private static bool StartsWithVerb(ReadOnlySpan<char> text, string verb) =>
        text.StartsWith(verb, StringComparison.OrdinalIgnoreCase) && (text.Length == verb.Length || text[verb.Length] == ' ');

    // The path ends at the first '>' outside a quoted local part; a quoted local part may hold
    // '>', spaces and text that looks like parameters, and backslash escapes its next character.
    private static int EndOfPath(ReadOnlySpan<char> text, int open)
    {
        var quoted = false;
        for (var i = open + 1; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted && c == '\\')
            {
                i++;
            }
            else if (c == '"')
            {
                quoted = !quoted;
            }
            else if (c == '>' && !quoted)
            {
                return i;
            }
        }

        return -1;
    }
}

/// <summary>Checks and decodings of the DSN parameter values (RFC 3461).</summary>
internal static class EsmtpParameters
{
    /// <summary>NOTIFY=NEVER or a list of SUCCESS, FAILURE and DELAY (RFC 3461 §4.1), normalised to upper case.</summary>
    public static bool TryNormalizeNotify(string value, out string normalized)
    {
        var parts = value.Split(',');
        normalized = string.Join(',', parts.Select(p => p.ToUpperInvariant()));
        if (parts.Length == 1 && parts[0].Equals("NEVER", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        return parts.All(p => p.ToUpperInvariant() is "SUCCESS" or "FAILURE" or "DELAY" && seen.Add(p));
    }

    /// <summary>ORCPT=addr-type ";" xtext (RFC 3461 §4.2); kept as the client gave it.</summary>
    public static bool IsValidOriginalRecipient(string value)
    {
        var semicolon = value.IndexOf(';');
        return semicolon > 0 && semicolon < value.Length - 1 && Xtext.TryDecode(value.AsSpan(semicolon + 1), out _);
    }
}
