using System.Buffers;
using System.IO.Pipelines;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// The session's output as SmtpServer writes it, with two repairs. SmtpServer appends
/// ", N retry(ies) remaining." to every refusal it sends for a thrown reply (relaying denied,
/// bad sequence, unknown command). That text is not ours to send: it would end up quoted in
/// other servers' bounces ("550 5.7.1 Relaying denied, 999 retry(ies) remaining.") and tells a
/// client how many more errors it may make. And a command out of order (RCPT before MAIL, DATA
/// before RCPT) gets "501 expected MAIL/RSET/..." from its state machine, where RFC 5321 §4.3.2
/// asks for 503. Replies are held until SmtpServer flushes them, then passed on repaired;
/// everything else goes out byte for byte.
/// </summary>
internal sealed class ReplyWriter(PipeWriter inner) : PipeWriter
{
    private static ReadOnlySpan<byte> Suffix => " retry(ies) remaining."u8;

    private static ReadOnlySpan<byte> OutOfSequence => "501 expected "u8;

    private static ReadOnlySpan<byte> BadSequence => "503 5.5.1 Bad sequence of commands"u8;

    private readonly ArrayBufferWriter<byte> _pending = new(256);

    public override void Advance(int bytes) => _pending.Advance(bytes);

    public override Memory<byte> GetMemory(int sizeHint = 0) => _pending.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) => _pending.GetSpan(sizeHint);

    public override void CancelPendingFlush() => inner.CancelPendingFlush();

    public override void Complete(Exception? exception = null)
    {
        PassOn();
        inner.Complete(exception);
    }

    public override ValueTask CompleteAsync(Exception? exception = null)
    {
        PassOn();
        return inner.CompleteAsync(exception);
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        PassOn();
        return inner.FlushAsync(cancellationToken);
    }

    /// <summary>Copies what was written since the last flush to the inner writer, line by line.</summary>
    private void PassOn()
    {
        var rest = _pending.WrittenSpan;
        while (!rest.IsEmpty)
        {
            var end = rest.IndexOf("\r\n"u8);
            var line = end < 0 ? rest : rest[..end];
            inner.Write(Repaired(line));
            if (end < 0)
            {
                break;
            }

            inner.Write("\r\n"u8);
            rest = rest[(end + 2)..];
        }

        _pending.Clear();
    }

    /// <summary>A reply line repaired as described above; any other line unchanged.</summary>
    internal static ReadOnlySpan<byte> Repaired(ReadOnlySpan<byte> line)
    {
        line = WithoutRetryCount(line);
        return line.StartsWith(OutOfSequence) ? BadSequence : line;
    }

    private static ReadOnlySpan<byte> WithoutRetryCount(ReadOnlySpan<byte> line)
    {
        if (line.Length < 4 || (line[0] != (byte)'4' && line[0] != (byte)'5') || !line.EndsWith(Suffix))
        {
            return line;
        }

        var head = line[..^Suffix.Length];
        var digits = head.Length;
        while (digits > 0 && char.IsAsciiDigit((char)head[digits - 1]))
        {
            digits--;
        }

        if (digits == head.Length || !head[..digits].EndsWith(", "u8))
        {
            return line;
        }

        return head[..(digits - 2)];
    }
}
