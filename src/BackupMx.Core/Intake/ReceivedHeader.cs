using System.Globalization;
using System.Text;

namespace BackupMx.Core.Intake;

/// <summary>The one header we add (RFC 5321 §4.4); everything after it is left as received.</summary>
public static class ReceivedHeader
{
    /// <param name="extended">False after HELO: "with SMTP" (RFC 3848 names ESMTP and ESMTPS for EHLO sessions only).</param>
    public static byte[] Build(string hostName, string? heloName, string? clientAddress, string queueId, string? forRecipient, bool secure, DateTimeOffset date, bool extended = true)
    {
        var helo = Sanitize(string.IsNullOrWhiteSpace(heloName) ? "unknown" : heloName);
        var ip = Sanitize(string.IsNullOrWhiteSpace(clientAddress) ? "unknown" : clientAddress);

        // An IPv6 address literal carries its tag (RFC 5321 §4.1.3).
        var literal = ip.Contains(':', StringComparison.Ordinal) ? "IPv6:" + ip : ip;
        var protocol = !extended ? "SMTP" : secure ? "ESMTPS" : "ESMTP";
        var sb = new StringBuilder(256);
        sb.Append("Received: from ").Append(helo).Append(" ([").Append(literal).Append("])\r\n");
        sb.Append("\tby ").Append(Sanitize(hostName)).Append(" (BackupMx) with ").Append(protocol)
          .Append(" id ").Append(queueId);
        if (forRecipient is not null)
        {
            sb.Append("\r\n\tfor <").Append(Sanitize(forRecipient)).Append('>');
        }

        sb.Append("; ").Append(FormatDate(date)).Append("\r\n");
        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    /// <summary>RFC 5322 date-time, e.g. <c>Fri, 27 Nov 2026 18:27:46 +0000</c>.</summary>
    public static string FormatDate(DateTimeOffset date)
    {
        var offset = date.Offset;
        var sign = offset < TimeSpan.Zero ? '-' : '+';
        offset = offset.Duration();
        return date.ToString("ddd, d MMM yyyy HH:mm:ss ", CultureInfo.InvariantCulture) + sign + offset.Hours.ToString("00", CultureInfo.InvariantCulture) + offset.Minutes.ToString("00", CultureInfo.InvariantCulture);
    }

    // The HELO name and addresses come from the client: keep only what is safe inside a header.
    private static string Sanitize(string value)
    {
        var sb = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            if (c is > ' ' and < (char)127 && c is not ('(' or ')' or ';' or '<' or '>' or '[' or ']' or '\\' or '"'))
            {
                sb.Append(c);
            }
        }

        return sb.Length == 0 ? "unknown" : sb.ToString(0, Math.Min(sb.Length, 255));
    }
}
