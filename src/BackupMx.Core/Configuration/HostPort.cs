using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;

namespace BackupMx.Core.Configuration;

/// <summary>A <c>host[:port]</c> value from configuration (a primary or a smart host).</summary>
public readonly record struct HostPort(string Host, int Port)
{
    public static bool TryParse(string? value, int defaultPort, [NotNullWhen(true)] out HostPort? result)
    {
        result = null;
        if (string.IsNullOrWhiteSpace(value))
        {
            return false;
        }

        value = value.Trim();
        string host;
        int port = defaultPort;
        if (value.StartsWith('['))
        {
            var close = value.IndexOf(']');
            if (close < 0)
            {
                return false;
            }

            host = value[1..close];
            var rest = value[(close + 1)..];
            if (rest.Length > 0 && (!rest.StartsWith(':') || !TryParsePort(rest[1..], out port)))
            {
                return false;
            }
        }
        else if (value.Count(c => c == ':') == 1)
        {
            var colon = value.IndexOf(':');
            host = value[..colon];
            if (!TryParsePort(value[(colon + 1)..], out port))
            {
                return false;
            }
        }
        else if (value.Contains(':') && IPAddress.TryParse(value, out _))
        {
            host = value;
        }
        else if (!value.Contains(':'))
        {
            host = value;
        }
        else
        {
            return false;
        }

        if (host.Length == 0 || host.Any(char.IsWhiteSpace))
        {
            return false;
        }

        result = new HostPort(host, port);
        return true;
    }

    private static bool TryParsePort(string text, out int port) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is > 0 and <= 65535;

    public override string ToString() => Host.Contains(':') ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}
