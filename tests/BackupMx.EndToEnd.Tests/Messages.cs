using System.Text;

namespace BackupMx.EndToEnd.Tests;

internal static class Messages
{
    public static byte[] Make(int n, string from = "alice@sender.test", string to = "bob@example.test") => Encoding.ASCII.GetBytes(
        $"From: Alice <{from}>\r\n" +
        $"To: <{to}>\r\n" +
        $"Subject: backlog message {n}\r\n" +
        $"Message-ID: <msg{n}@sender.test>\r\n" +
        "Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n" +
        "X-Long-Header: " + new string('x', 100) + "\r\n\tfolded continuation\r\n" +
        "\r\n" +
        $"Body of message {n}.\r\n" +
        ".a line that starts with a dot\r\n" +
        "..and one with two\r\n" +
        "trailing spaces   \r\n");

    /// <summary>Splits what the primary received into our one Received header and the rest.</summary>
    public static (string ReceivedHeader, byte[] Original) SplitReceived(byte[] data)
    {
        var text = Encoding.Latin1.GetString(data);
        Assert.StartsWith("Received: from ", text);
        var end = 0;
        do
        {
            end = text.IndexOf("\r\n", end, StringComparison.Ordinal) + 2;
        }
        while (end < text.Length && (text[end] == '\t' || text[end] == ' '));

        return (text[..end], data[end..]);
    }
}
