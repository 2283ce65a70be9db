using System.Buffers;

namespace BackupMx.Smtp.Intake;

/// <summary>Builds a sequence over existing memory plus a suffix, without copying the message.</summary>
internal static class ContentSequence
{
    private static readonly byte[] Crlf = "\r\n"u8.ToArray();

    /// <summary>
    /// The message as the client sent it: SmtpServer's buffer without our leading CRLF, plus the CRLF
    /// that ended the last line (SmtpServer counts it as part of the terminator).
    /// </summary>
    public static ReadOnlySequence<byte> Restore(ReadOnlySequence<byte> buffer, bool leadingCrlf)
    {
        if (buffer.IsEmpty)
        {
            return buffer;
        }

        if (leadingCrlf)
        {
            buffer = buffer.Slice(2);
        }
        else if (buffer.FirstSpan[0] == '.')
        {
            // SmtpServer only unstuffs after a CRLF, so a stuffed first line still has its extra dot.
            buffer = buffer.Slice(1);
        }

        Segment? first = null;
        Segment? last = null;
        foreach (var memory in buffer)
        {
            if (!memory.IsEmpty)
            {
                Append(ref first, ref last, memory);
            }
        }

        Append(ref first, ref last, Crlf);
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private static void Append(ref Segment? first, ref Segment? last, ReadOnlyMemory<byte> memory)
    {
        var segment = new Segment(memory, last is null ? 0 : last.RunningIndex + last.Memory.Length);
        if (last is null)
        {
            first = segment;
        }
        else
        {
            last.SetNext(segment);
        }

        last = segment;
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public void SetNext(Segment next) => Next = next;
    }
}
