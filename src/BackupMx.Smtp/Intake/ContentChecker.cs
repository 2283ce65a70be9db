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

/// <summary>
/// Reads a message once, line by line, as its bytes arrive in pieces of any size, and finds the
/// most serious violation in it (the order of <see cref="ContentViolation"/>), so the reply does not
/// depend on where in the message each problem sits. Keeps no line in memory: only counts and the
/// first bytes of the current line.
/// </summary>
internal sealed class ContentChecker(SmtpReceiverOptions options)
{
    // "Received", optional spaces then tabs, ":" fits in the first 16 octets of the line.
    private const int HeadLength = 16;

    private readonly bool _checkBare = !options.AllowBareLineEndings;
    private readonly byte[] _head = new byte[HeadLength];
    private ContentViolation _final = ContentViolation.None;
    private bool _lineTooLong;
    private bool _headerTooLarge;
    private bool _inHeader = true;
    private int _received;
    private long _consumed;

    // The current line so far: its length, its last byte (-1 none yet) and whether a CR or NUL
    // came before that last byte.
    private long _lineLength;
    private int _lastByte = -1;
    private bool _crOrNulInside;

    /// <summary>
    /// True once a violation is certain (the message will be refused whatever follows); the most
    /// serious one may still be found later, so keep appending until the end.
    /// </summary>
    public bool Violated => _final != ContentViolation.None || _lineTooLong || _headerTooLarge || _received > options.MaxReceivedHeaders;

    public void Append(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty && _final == ContentViolation.None)
        {
            var lf = bytes.IndexOf((byte)'\n');
            if (lf < 0)
            {
                AddToLine(bytes);
                return;
            }

            AddToLine(bytes[..lf]);
            EndLine();
            bytes = bytes[(lf + 1)..];
        }
    }

    /// <summary>The verdict once the whole message has been appended.</summary>
    public ContentViolation Finish()
    {
        if (_final != ContentViolation.None)
        {
            return _final;
        }

        // The last line has no LF: all of it counts, its last byte included.
        if (_checkBare && (_crOrNulInside || _lastByte is '\r' or 0))
        {
            return ContentViolation.BareLineEnding;
        }

        return _lineTooLong || _lineLength > options.MaxDataLineLength ? ContentViolation.LineTooLong
            : _headerTooLarge || (_inHeader && _consumed + _lineLength > options.MaxHeaderBytes) ? ContentViolation.HeaderTooLarge
            : _received > options.MaxReceivedHeaders ? ContentViolation.TooManyHops
            : ContentViolation.None;
    }

    private void AddToLine(ReadOnlySpan<byte> part)
    {
        if (part.IsEmpty)
        {
            return;
        }

        if (_lineLength < HeadLength)
        {
            var n = (int)Math.Min(part.Length, HeadLength - _lineLength);
            part[..n].CopyTo(_head.AsSpan((int)_lineLength));
        }

        // Only a CR right before the LF is allowed: the previous last byte is now inside the line.
        if (_lastByte is '\r' or 0 || part[..^1].IndexOfAny((byte)'\r', (byte)0) >= 0)
        {
            _crOrNulInside = true;
        }

        _lastByte = part[^1];
        _lineLength += part.Length;
    }

    private void EndLine()
    {
        var length = _lineLength;
        var head = _head.AsSpan(0, (int)Math.Min(length, HeadLength));
        var lastByte = _lastByte;
        var crOrNulInside = _crOrNulInside;
        _lineLength = 0;
        _lastByte = -1;
        _crOrNulInside = false;
        _consumed += length + 1;

        if (_checkBare && (length == 0 || lastByte != '\r' || crOrNulInside))
        {
            _final = ContentViolation.BareLineEnding;
            return;
        }

        if (length + 1 > options.MaxDataLineLength)
        {
            if (!_checkBare)
            {
                _final = ContentViolation.LineTooLong;
                return;
            }

            _lineTooLong = true;
        }

        if (!_inHeader)
        {
            return;
        }

        if (_consumed > options.MaxHeaderBytes)
        {
            _headerTooLarge = true;
            _inHeader = false;
        }
        else if (length == 0 || (length == 1 && head[0] == '\r'))
        {
            _inHeader = false;
        }
        else if (IsReceived(head, length))
        {
            _received++;
        }
    }

    // "Received", optional spaces then tabs, ":" (within the first 16 octets of the line).
    private static bool IsReceived(ReadOnlySpan<byte> head, long length)
    {
        if (length < 9)
        {
            return false;
        }

        if (!System.Text.Ascii.EqualsIgnoreCase(head[..8], "received"u8))
        {
            return false;
        }

        var rest = head[8..].TrimStart((byte)' ').TrimStart((byte)'\t');
        return rest.Length > 0 && rest[0] == ':';
    }
}
