using System.Buffers;

namespace BackupMx.Smtp.Intake;

/// <summary>Checks on the received bytes that decide whether a message is refused before intake.</summary>
internal static class MessageChecks
{
    /// <summary>
    /// True when the content holds a CR not followed by LF, an LF not preceded by CR, or a NUL.
    /// These are what SMTP smuggling is built from: we would not split on them, but the primary might.
    /// </summary>
    public static bool HasBareLineEndingOrNul(ReadOnlySequence<byte> content)
    {
        var previous = (byte)0;
        foreach (var memory in content)
        {
            var span = memory.Span;
            var i = 0;
            while (i < span.Length)
            {
                if (previous == '\r')
                {
                    if (span[i] != '\n')
                    {
                        return true;
                    }

                    previous = span[i++];
                    continue;
                }

                var next = span[i..].IndexOfAny((byte)'\r', (byte)'\n', (byte)0);
                if (next < 0)
                {
                    previous = span[^1];
                    break;
                }

                i += next;
                var b = span[i];
                if (b == 0 || (b == '\n' && (i == 0 ? previous : span[i - 1]) != '\r'))
                {
                    return true;
                }

                previous = b;
                i++;
            }
        }

        return previous == '\r';
    }

    /// <summary>True when a line, CRLF included, is longer than <paramref name="maxLineLength"/> octets.</summary>
    public static bool HasLineLongerThan(ReadOnlySequence<byte> content, int maxLineLength)
    {
        long lineLength = 0;
        foreach (var memory in content)
        {
            var span = memory.Span;
            while (!span.IsEmpty)
            {
                var lf = span.IndexOf((byte)'\n');
                if (lf < 0)
                {
                    lineLength += span.Length;
                    break;
                }

                if (lineLength + lf + 1 > maxLineLength)
                {
                    return true;
                }

                lineLength = 0;
                span = span[(lf + 1)..];
            }

            if (lineLength > maxLineLength)
            {
                return true;
            }
        }

        return lineLength > maxLineLength;
    }

    /// <summary>
    /// Length of the header section: up to and including the empty line that ends it, or the whole
    /// message when there is none. Stops counting past <paramref name="stopAfter"/>.
    /// </summary>
    public static long HeaderSectionLength(ReadOnlySequence<byte> content, long stopAfter)
    {
        var reader = new SequenceReader<byte>(content);
        while (reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n'))
        {
            if (line.Length == 0 || (line.Length == 1 && line.FirstSpan[0] == '\r'))
            {
                return reader.Consumed;
            }

            if (reader.Consumed > stopAfter)
            {
                return reader.Consumed;
            }
        }

        return content.Length;
    }

    /// <summary>Counts Received: header fields in the header section (up to the first empty line).</summary>
    public static int CountReceivedHeaders(ReadOnlySequence<byte> content, int stopAfter)
    {
        var count = 0;
        var reader = new SequenceReader<byte>(content);
        while (reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n'))
        {
            if (line.Length == 0 || (line.Length == 1 && line.FirstSpan[0] == '\r'))
            {
                break;
            }

            if (line.Length >= 9 && IsReceived(line.Slice(0, Math.Min(line.Length, 16))) && ++count > stopAfter)
            {
                break;
            }
        }

        return count;
    }

    private static bool IsReceived(ReadOnlySequence<byte> start)
    {
        Span<byte> head = stackalloc byte[16];
        start.CopyTo(head);
        var text = head[..(int)start.Length];
        if (!System.Text.Ascii.EqualsIgnoreCase(text[..8], "received"u8))
        {
            return false;
        }

        var rest = text[8..].TrimStart((byte)' ').TrimStart((byte)'\t');
        return rest.Length > 0 && rest[0] == ':';
    }
}
