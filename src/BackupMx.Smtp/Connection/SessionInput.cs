using System.Buffers;
using System.IO.Pipelines;
using System.Text;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// The session's input as SmtpServer reads it, with three repairs for the DATA phase.
/// </summary>
/// <remarks>
/// SmtpServer ends DATA only at <c>&lt;CRLF&gt;.&lt;CRLF&gt;</c> and unstuffs only <c>&lt;CRLF&gt;..</c>, so
/// a message consisting of just "." never ends and a first line starting with ".." keeps both dots.
/// Both come from the CRLF of the "DATA" command line having been consumed: when a DATA line is
/// consumed we keep its CRLF back, and if DATA is then accepted (354) the body is read with that
/// CRLF in front of it. If DATA is refused the CRLF is dropped unseen.
///
/// The body is handed over only once its terminator has arrived, and never beyond it, so
/// commands pipelined after the dot do not count against the size limit. A body larger than the
/// limit is read to its end and thrown away while the client is still sending, and an empty body
/// is handed over instead with <see cref="Oversized"/> set: the store then answers 552 and the
/// session goes on (SmtpServer's own strict check would close the connection without a reply).
/// All buffers handed out are the inner pipe's own (positions stay valid across reads), except that
/// one fixed empty body.
/// </remarks>
internal sealed class SessionInput(PipeReader inner, long maxContentBytes) : PipeReader
{
    /// <summary>Longest command line remembered for <see cref="LastLine"/>.</summary>
    private const int MaxRememberedLine = 2048;

    private static readonly byte[] EmptyBody = "\r\n.\r\n"u8.ToArray();

    private ReadOnlySequence<byte> _last;
    private bool _synthetic;
    private bool _heldCrlf;

    private static ReadOnlySpan<byte> EndOfData => "\r\n.\r\n"u8;

    /// <summary>The last command line consumed (with its CRLF), for parameters SmtpServer throws away.</summary>
    public string? LastLine { get; private set; }

    /// <summary>Set when DATA is about to be answered with 354, so the next read is the body.</summary>
    public bool DataAccepted { get; set; }

    /// <summary>Set when the last body exceeded the limit and was discarded; the store clears it.</summary>
    public bool Oversized { get; set; }

    /// <summary>True when the body last handed over starts with the kept-back CRLF.</summary>
    public bool BodyHasLeadingCrlf { get; private set; }

    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        var dataAccepted = DataAccepted;
        DataAccepted = false;
        if (_heldCrlf)
        {
            _heldCrlf = false;
            if (dataAccepted)
            {
                return await ReadBodyAsync(leadingCrlf: true, cancellationToken).ConfigureAwait(false);
            }

            // DATA was refused: the kept-back CRLF must not show up as an empty command line.
            var pending = await inner.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (pending.IsCanceled || pending.Buffer.Length < 2)
            {
                _heldCrlf = pending.Buffer.Length >= 2;
                _last = pending.Buffer;
                return pending;
            }

            var afterCrlf = pending.Buffer.GetPosition(2);
            inner.AdvanceTo(afterCrlf, afterCrlf);
        }
        else if (dataAccepted)
        {
            // A DATA line we did not recognise; the body is still bounded, only the two repairs are missing.
            return await ReadBodyAsync(leadingCrlf: false, cancellationToken).ConfigureAwait(false);
        }

        var result = await inner.ReadAsync(cancellationToken).ConfigureAwait(false);
        _last = result.Buffer;
        return result;
    }

    private async ValueTask<ReadResult> ReadBodyAsync(bool leadingCrlf, CancellationToken cancellationToken)
    {
        BodyHasLeadingCrlf = leadingCrlf;
        var framing = EndOfData.Length + (leadingCrlf ? 0 : -2);
        long searchFrom = 0;
        var discarding = false;
        while (true)
        {
            var result = await inner.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            var reader = new SequenceReader<byte>(buffer.Slice(searchFrom));
            if (reader.TryReadTo(out ReadOnlySequence<byte> _, EndOfData, advancePastDelimiter: true))
            {
                var endOffset = searchFrom + reader.Consumed;
                if (!discarding && endOffset - framing <= maxContentBytes)
                {
                    _last = buffer.Slice(0, reader.Position);
                    return new ReadResult(_last, isCanceled: false, isCompleted: false);
                }

                inner.AdvanceTo(reader.Position);
                Oversized = true;
                _synthetic = true;
                BodyHasLeadingCrlf = true;
                _last = new ReadOnlySequence<byte>(EmptyBody);
                return new ReadResult(_last, isCanceled: false, isCompleted: false);
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                _last = buffer;
                return result;
            }

            var overlap = EndOfData.Length - 1;
            if (discarding || buffer.Length - framing > maxContentBytes)
            {
                // Keep only what could be the start of the terminator.
                discarding = true;
                var keep = Math.Min(buffer.Length, overlap);
                inner.AdvanceTo(buffer.GetPosition(buffer.Length - keep), buffer.End);
                searchFrom = 0;
            }
            else
            {
                inner.AdvanceTo(buffer.Start, buffer.End);
                searchFrom = Math.Max(0, buffer.Length - overlap);
            }
        }
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (_synthetic)
        {
            _synthetic = false;
            return;
        }

        var length = _last.Slice(_last.Start, consumed).Length;
        if (length is > 0 and <= MaxRememberedLine)
        {
            var line = _last.Slice(0, length);
            LastLine = Encoding.Latin1.GetString(line);
            if (IsDataLine(LastLine))
            {
                var keep = _last.GetPosition(length - 2);
                _heldCrlf = true;
                inner.AdvanceTo(keep, keep);
                return;
            }
        }

        inner.AdvanceTo(consumed, examined);
    }

    private static bool IsDataLine(string line) =>
        line.EndsWith("\r\n", StringComparison.Ordinal) && line.AsSpan().Trim().Equals("DATA", StringComparison.OrdinalIgnoreCase);

    public override bool TryRead(out ReadResult result)
    {
        if (_heldCrlf || DataAccepted || _synthetic)
        {
            result = default;
            return false;
        }

        if (inner.TryRead(out result))
        {
            _last = result.Buffer;
            return true;
        }

        return false;
    }

    public override void CancelPendingRead() => inner.CancelPendingRead();

    public override void Complete(Exception? exception = null) => inner.Complete(exception);
}
