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

    /// <summary>
    /// A message of at least <paramref name="size"/> bytes with lines of every kind of length, a good
    /// share of them starting with one or more dots, and 8-bit bytes.
    /// </summary>
    public static byte[] MakeLarge(int n, int size)
    {
        var random = new Random(n);
        using var output = new MemoryStream(size + 1024);
        output.Write(Make(n));
        var line = new byte[400];
        while (output.Length < size)
        {
            var length = random.Next(line.Length - 2);
            for (var i = 0; i < length; i++)
            {
                line[i] = (byte)random.Next(32, 256);
            }

            if (length > 0 && random.Next(4) == 0)
            {
                line.AsSpan(0, random.Next(1, Math.Min(length, 3) + 1)).Fill((byte)'.');
            }

            line[length] = (byte)'\r';
            line[length + 1] = (byte)'\n';
            output.Write(line, 0, length + 2);
        }

        return output.ToArray();
    }

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
