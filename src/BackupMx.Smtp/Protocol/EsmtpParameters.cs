using System.Globalization;
using System.Text;

namespace BackupMx.Smtp.Protocol;

/// <summary>ESMTP parameter parsing that SmtpServer leaves to us (RFC 3461, RFC 1870).</summary>
internal static class EsmtpParameters
{
    /// <summary>Decodes xtext (RFC 3461 §4): "+" followed by two upper-case hex digits stands for that byte.</summary>
    public static bool TryDecodeXtext(string value, out string decoded)
    {
        var sb = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '+')
            {
                if (i + 2 >= value.Length || !IsUpperHex(value[i + 1]) || !IsUpperHex(value[i + 2]))
                {
                    decoded = string.Empty;
                    return false;
                }

                sb.Append((char)int.Parse(value.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                i += 2;
            }
            else if (c is < '!' or > '~' or '=')
            {
                decoded = string.Empty;
                return false;
            }
            else
            {
                sb.Append(c);
            }
        }

        decoded = sb.ToString();
        return true;
    }

    private static bool IsUpperHex(char c) => c is (>= '0' and <= '9') or (>= 'A' and <= 'F');

    /// <summary>
    /// Reads the parameters after the forward-path of a raw RCPT line. Returns false when the line
    /// is not a RCPT command (the caller then keeps no parameters).
    /// </summary>
    public static bool TryParseRcptLine(string line, out string path, out Dictionary<string, string?> parameters)
    {
        path = string.Empty;
        parameters = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var text = line.AsSpan().TrimEnd("\r\n");
        if (!text.StartsWith("RCPT", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var open = text.IndexOf('<');
        if (open < 0)
        {
            return false;
        }

        // The forward-path ends at the first '>' outside a quoted local part.
        var quoted = false;
        var close = -1;
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
                close = i;
                break;
            }
        }

        if (close < 0)
        {
            return false;
        }

        path = text[(open + 1)..close].ToString();
        foreach (var token in text[(close + 1)..].ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = token.IndexOf('=');
            var key = eq < 0 ? token : token[..eq];
            var value = eq < 0 ? null : token[(eq + 1)..];
            parameters[key] = value;
        }

        return true;
    }

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
        return semicolon > 0 && semicolon < value.Length - 1 && TryDecodeXtext(value[(semicolon + 1)..], out _);
    }
}
