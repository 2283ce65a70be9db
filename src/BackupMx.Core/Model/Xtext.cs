using System.Text;

namespace BackupMx.Core.Model;

/// <summary>
/// xtext (RFC 3461 §4), the encoding of ENVID and of the address in ORCPT: printable ASCII
/// except "+" and "=", with any other octet written as "+" and two upper-case hex digits.
/// </summary>
public static class Xtext
{
    /// <summary>Decodes <paramref name="value"/>; false when it is not valid xtext.</summary>
    public static bool TryDecode(ReadOnlySpan<char> value, out string decoded)
    {
        var sb = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '+')
            {
                if (i + 2 >= value.Length || HexValue(value[i + 1]) is not { } high || HexValue(value[i + 2]) is not { } low)
                {
                    decoded = string.Empty;
                    return false;
                }

                sb.Append((char)((high << 4) | low));
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

    /// <summary>Encodes a decoded value (one octet per char, as <see cref="TryDecode"/> gives it) as xtext.</summary>
    public static string Encode(string value)
    {
        var sb = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            if (c is < '!' or > '~' or '+' or '=')
            {
                sb.Append('+').Append(((int)c & 0xFF).ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }

    // RFC 3461 §4 allows upper-case hex digits only.
    private static int? HexValue(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => null,
    };
}
