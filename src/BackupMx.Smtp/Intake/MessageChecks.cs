using System.Buffers;

namespace BackupMx.Smtp.Intake;

/// <summary>Why a received message is refused before intake, most serious first.</summary>
internal enum ContentViolation
{
    None,

    /// <summary>
    /// A CR not followed by LF, an LF not preceded by CR, or a NUL. These are what SMTP smuggling is
    /// built from: we would not split on them, but the primary might.
    /// </summary>
    BareLineEnding,

    /// <summary>A line, CRLF included, longer than MaxDataLineLength.</summary>
    LineTooLong,

    /// <summary>A header section (up to and including the empty line that ends it) over MaxHeaderBytes.</summary>
    HeaderTooLarge,

    /// <summary>More Received: header fields than MaxReceivedHeaders: a mail loop.</summary>
    TooManyHops,
}

/// <summary>Checks on the received bytes that decide whether a message is refused before intake.</summary>
internal static class MessageChecks
{
    /// <summary>
    /// Reads the message once, line by line, and returns the most serious violation in it (the order
    /// of <see cref="ContentViolation"/>), so the reply does not depend on where in the message each
    /// problem sits. Stops early once nothing more serious can turn up.
    /// </summary>
    public static ContentViolation FindViolation(ReadOnlySequence<byte> content, SmtpReceiverOptions options)
    {
        var checkBare = !options.AllowBareLineEndings;
        var lineTooLong = false;
        var headerTooLarge = false;
        var inHeader = true;
        var received = 0;
        var reader = new SequenceReader<byte>(content);
        while (reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n'))
        {
            if (checkBare && (line.IsEmpty || Last(line) != '\r' || ContainsCrOrNul(line.Slice(0, line.Length - 1))))
            {
                return ContentViolation.BareLineEnding;
            }

            if (line.Length + 1 > options.MaxDataLineLength)
            {
                if (!checkBare)
                {
                    return ContentViolation.LineTooLong;
                }

                lineTooLong = true;
            }

            if (!inHeader)
            {
                continue;
            }

            if (reader.Consumed > options.MaxHeaderBytes)
            {
                headerTooLarge = true;
                inHeader = false;
            }
            else if (line.Length == 0 || (line.Length == 1 && line.FirstSpan[0] == '\r'))
            {
                inHeader = false;
            }
            else if (IsReceived(line))
            {
                received++;
            }
        }

        var rest = reader.UnreadSequence;
        if (checkBare && ContainsCrOrNul(rest))
        {
            return ContentViolation.BareLineEnding;
        }

        return lineTooLong || rest.Length > options.MaxDataLineLength ? ContentViolation.LineTooLong
            : headerTooLarge || (inHeader && content.Length > options.MaxHeaderBytes) ? ContentViolation.HeaderTooLarge
            : received > options.MaxReceivedHeaders ? ContentViolation.TooManyHops
            : ContentViolation.None;
    }

    private static byte Last(ReadOnlySequence<byte> line) => line.Slice(line.Length - 1).FirstSpan[0];

    private static bool ContainsCrOrNul(ReadOnlySequence<byte> bytes)
    {
        foreach (var memory in bytes)
        {
            if (memory.Span.IndexOfAny((byte)'\r', (byte)0) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    // "Received", optional spaces then tabs, ":" (within the first 16 octets of the line).
    private static bool IsReceived(ReadOnlySequence<byte> line)
    {
        if (line.Length < 9)
        {
            return false;
        }

        Span<byte> head = stackalloc byte[16];
        var start = line.Slice(0, Math.Min(line.Length, head.Length));
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
