using BackupMx.Core.Intake;
using BackupMx.Smtp.Intake;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// One DATA body as it arrives: finds its end, undoes dot-stuffing, counts it against the size limit,
/// runs the content checks and keeps the message in a <see cref="BodySpill"/>, piece by piece, so no
/// session ever holds a whole message in memory. Once the end is found, what the store needs to
/// answer is here: <see cref="Oversized"/>, <see cref="Violation"/>, <see cref="StorageError"/> or
/// the <see cref="Content"/>.
/// </summary>
/// <remarks>
/// The body ends at the first <c>&lt;CRLF&gt;.&lt;CRLF&gt;</c>, counting the CRLF of the DATA line,
/// so a lone "." right after 354 is an empty message. A line that starts with a dot and has more
/// on it loses that dot (RFC 5321 §4.5.2), the first line too: ".." is stuffing, and ".abc" comes
/// from a sender that failed to stuff. The content is everything up to and including the CRLF
/// before the final dot. Bare CR and LF never end a line here.
/// With <see cref="SmtpReceiverOptions.NormalizeBareLineFeeds"/> (the default) a bare LF is kept as
/// CRLF, as Postfix 3.9 does, but it still starts no SMTP line: the data ends only at CRLF.CRLF, and
/// a dot after a bare LF is neither stuffing nor an end. Bare CR and NUL are left for the checks to
/// refuse. A message without bare LF comes out byte for byte as sent.
/// </remarks>
internal sealed class IncomingBody : IDisposable
{
    private readonly long _maxBytes;
    private readonly bool _normalize;
    private readonly ContentChecker _checker;
    private BodySpill? _spill;
    private State _state = State.LineStart;
    private long _size;

    public IncomingBody(BodyLimits limits)
    {
        _maxBytes = limits.MaxContentBytes;
        _normalize = limits.Checks.NormalizeBareLineFeeds && !limits.Checks.AllowBareLineEndings;
        _checker = new ContentChecker(limits.Checks);
        _spill = new BodySpill(limits.SpillDirectory);
    }

    private enum State
    {
        /// <summary>After CRLF (or at the start): a dot here is stuffing or the end.</summary>
        LineStart,

        /// <summary>Inside a line, the last byte not a CR.</summary>
        InLine,

        /// <summary>The last byte was a CR.</summary>
        Cr,

        /// <summary>A dot at the start of a line, held back.</summary>
        Dot,

        /// <summary>Dot and CR at the start of a line, held back: an LF now ends the body.</summary>
        DotCr,

        Ended,
    }

    public bool Ended => _state == State.Ended;

    /// <summary>More than the size limit arrived; the rest was read and thrown away.</summary>
    public bool Oversized { get; private set; }

    /// <summary>The most serious content violation, once <see cref="Ended"/>.</summary>
    public ContentViolation Violation { get; private set; }

    /// <summary>Keeping the body failed (the temporary file could not be written).</summary>
    public Exception? StorageError { get; private set; }

    /// <summary>The message, once ended, when nothing above refuses it; owned by this object.</summary>
    public MessageContent? Content => Ended && !Oversized && Violation == ContentViolation.None && StorageError is null ? _spill : null;

    /// <summary>Takes the next bytes of the DATA phase and returns how many belong to the body (its end included).</summary>
    public int Read(ReadOnlySpan<byte> bytes)
    {
        var i = 0;
        var run = 0;
        while (i < bytes.Length)
        {
            switch (_state)
            {
                case State.InLine:
                    var stop = _normalize ? bytes[i..].IndexOfAny((byte)'\r', (byte)'\n') : bytes[i..].IndexOf((byte)'\r');
                    if (stop < 0)
                    {
                        i = bytes.Length;
                    }
                    else if (bytes[i + stop] == '\n')
                    {
                        // A bare LF, kept as CRLF. It does not start an SMTP line: no dot after it
                        // is stuffing or the end of the data.
                        i += stop;
                        Emit(bytes[run..i]);
                        Emit("\r\n"u8);
                        i++;
                        run = i;
                    }
                    else
                    {
                        i += stop + 1;
                        _state = State.Cr;
                    }

                    break;
                case State.Cr:
                    _state = bytes[i] switch
                    {
                        (byte)'\n' => State.LineStart,
                        (byte)'\r' => State.Cr,
                        _ => State.InLine,
                    };
                    i++;
                    break;
                case State.LineStart:
                    if (bytes[i] == '.')
                    {
                        Emit(bytes[run..i]);
                        i++;
                        run = i;
                        _state = State.Dot;
                    }
                    else if (_normalize && bytes[i] == '\n')
                    {
                        _state = State.InLine;
                    }
                    else
                    {
                        _state = bytes[i] == '\r' ? State.Cr : State.InLine;
                        i++;
                    }

                    break;
                case State.Dot:
                    if (bytes[i] == '\n')
                    {
                        // "." and a bare LF: a line of one dot to a reader of LF lines, which is text
                        // here, not the end, and keeps its dot.
                        Emit("."u8);
                        run = i;
                        _state = State.InLine;
                    }
                    else if (bytes[i] == '\r')
                    {
                        i++;
                        run = i;
                        _state = State.DotCr;
                    }
                    else
                    {
                        // Stuffing (".."), or a line a sender failed to stuff (".abc"): RFC 5321 §4.5.2
                        // deletes the first dot of any line with more on it. It still counts towards the size.
                        _size++;
                        run = i;
                        _state = State.InLine;
                    }

                    break;
                case State.DotCr:
                    if (bytes[i] == '\n')
                    {
                        _state = State.Ended;
                        return i + 1;
                    }

                    // Not the end: the line goes on after the dot, which goes (as above); the CR is an
                    // ordinary byte and may start a CRLF.
                    _size++;
                    Emit("\r"u8);
                    run = i;
                    _state = State.Cr;
                    break;
                default:
                    return i;
            }
        }

        Emit(bytes[run..i]);
        return i;
    }

    /// <summary>After each piece read: moves the kept bytes to the temporary file once memory is full.</summary>
    public async ValueTask AfterReadAsync(CancellationToken cancellationToken)
    {
        if (_spill is null)
        {
            return;
        }

        try
        {
            await _spill.SpillIfFullAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Fail(ex);
        }
    }

    /// <summary>Once <see cref="Ended"/>: finishes the checks and the temporary copy.</summary>
    public async ValueTask CompleteAsync(CancellationToken cancellationToken)
    {
        if (!Oversized)
        {
            Violation = _checker.Finish();
        }

        if (Content is not null && _spill is not null)
        {
            try
            {
                await _spill.CompleteAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Fail(ex);
            }
        }
        else
        {
            DropSpill();
        }
    }

    private void Emit(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty || Oversized)
        {
            return;
        }

        _size += bytes.Length;
        if (_size > _maxBytes)
        {
            Oversized = true;
            DropSpill();
            return;
        }

        _checker.Append(bytes);
        if (_checker.Violated)
        {
            // Refused whatever follows: keep checking for a more serious problem, but stop keeping bytes.
            DropSpill();
        }

        _spill?.Append(bytes);
    }

    private void Fail(Exception ex)
    {
        StorageError = ex;
        DropSpill();
    }

    private void DropSpill()
    {
        _spill?.Dispose();
        _spill = null;
    }

    public void Dispose() => DropSpill();
}

/// <summary>What a DATA body is held to, and where a large one is kept while it arrives.</summary>
internal sealed record BodyLimits(long MaxContentBytes, SmtpReceiverOptions Checks, string SpillDirectory);
