using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Text;
using BackupMx.Smtp.Protocol;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// The session's input as SmtpServer reads it: three repairs for the DATA phase, the line-length
/// and command-count limits, ETRN and VRFY, which SmtpServer's fixed parser would answer with 502, and the
/// one reading of each MAIL and RCPT line (<see cref="LastEnvelopeLine"/>): repeated or unknown
/// parameters and non-ASCII paths are answered here, and the later stages take the parameters from
/// that reading. Two lines SmtpServer cannot parse are handed to it rewritten: <c>RCPT TO:&lt;Postmaster&gt;</c>
/// (RFC 5321 §4.5.1) as <c>postmaster@</c> the configured postmaster domain, and NOOP with an argument
/// (which RFC 5321 §4.1.1.9 says to ignore) as a bare NOOP.
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
internal sealed class SessionInput(PipeReader inner, InputLimits limits, Func<string, CancellationToken, ValueTask> reply) : PipeReader
{
    /// <summary>Longest line that is checked for being a DATA command (padded with spaces, it may be long).</summary>
    private const int MaxDataLine = 2048;

    // Room the parameters we advertise need beyond the basic 512 (RFC 1870 SIZE, RFC 6152 BODY,
    // RFC 3461 §4: RET and ENVID on MAIL, NOTIFY and ORCPT on RCPT).
    private const int MailLineAllowance = 150;
    private const int RcptLineAllowance = 500;

    private static readonly byte[] EmptyBody = "\r\n.\r\n"u8.ToArray();

    private PipeReader _inner = inner;
    private ReadOnlySequence<byte> _last;
    private bool _synthetic;
    private bool _heldCrlf;
    private bool _bodyHandedOut;
    private bool _discardingLongLine;
    private bool _closed;
    private int _commands;

    // A command line handed to SmtpServer in place of the one the client sent (already consumed
    // from the inner pipe); what SmtpServer has not consumed of it yet.
    private ReadOnlySequence<byte>? _rewritten;

    // The MAIL or RCPT line at the head of the buffer handed to SmtpServer, and its length; it
    // becomes LastEnvelopeLine when SmtpServer consumes exactly that line.
    private (long Length, EnvelopeLine? Line)? _pendingEnvelope;

    /// <summary>
    /// Answers ETRN lines, which SmtpServer's parser cannot know: given the line, returns the reply
    /// to send. Set once the session exists; until then ETRN goes to SmtpServer and gets 502.
    /// </summary>
    public Func<string, CancellationToken, ValueTask<string>>? EtrnHandler { get; set; }

    private static ReadOnlySpan<byte> EndOfData => "\r\n.\r\n"u8;

    /// <summary>
    /// The MAIL or RCPT line consumed last, as parsed before SmtpServer saw it; null when the last
    /// line consumed was another command. SmtpServer keeps no RCPT parameters of its own.
    /// </summary>
    public EnvelopeLine? LastEnvelopeLine { get; private set; }

    /// <summary>
    /// The start of the command line SmtpServer consumed last, enough for its verb and "FROM:"/"TO:";
    /// the <see cref="ReplyWriter"/> uses it to tell a syntax error from an unknown command.
    /// </summary>
    public string? LastCommandHead { get; private set; }

    /// <summary>Set when DATA is about to be answered with 354, so the next read is the body.</summary>
    public bool DataAccepted { get; set; }

    /// <summary>Set when the last body exceeded the limit and was discarded; the store clears it.</summary>
    public bool Oversized { get; set; }

    /// <summary>True when the body last handed over starts with the kept-back CRLF.</summary>
    public bool BodyHasLeadingCrlf { get; private set; }

    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (_rewritten is { } rewritten)
        {
            _last = rewritten;
            return new ReadResult(rewritten, isCanceled: false, isCompleted: false);
        }

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
            var pending = await _inner.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (pending.IsCanceled || pending.Buffer.Length < 2)
            {
                _heldCrlf = pending.Buffer.Length >= 2;
                _last = pending.Buffer;
                return pending;
            }

            var afterCrlf = pending.Buffer.GetPosition(2);
            _inner.AdvanceTo(afterCrlf, afterCrlf);
        }
        else if (dataAccepted)
        {
            // A DATA line we did not recognise; the body is still bounded, only the two repairs are missing.
            return await ReadBodyAsync(leadingCrlf: false, cancellationToken).ConfigureAwait(false);
        }

        return await ReadCommandAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Switches to the TLS stream after STARTTLS. Whatever the old reader still buffers was sent in
    /// plain text before the handshake and is thrown away unread (RFC 3207 §4.2, CVE-2011-0411):
    /// a command injected behind STARTTLS must not run inside the protected session.
    /// </summary>
    public void Upgrade(PipeReader secured)
    {
        var old = _inner;
        _inner = secured;
        _last = default;
        _pendingEnvelope = null;
        _rewritten = null;
        LastEnvelopeLine = null;
        LastCommandHead = null;
        _heldCrlf = false;
        _discardingLongLine = false;
        _bodyHandedOut = false;
        DataAccepted = false;
        old.Complete();
    }

    // SmtpServer only ever consumes whole lines, so each call starts at the beginning of a line.
    // Lines we answer ourselves (ETRN, over-long lines, one past the command limit) are consumed
    // here and never reach it; the replies go out before it reads again, so they stay in order.
    private async ValueTask<ReadResult> ReadCommandAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_closed)
            {
                return Completed();
            }

            var result = await _inner.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (result.IsCanceled)
            {
                _last = buffer;
                return result;
            }

            // Lines end at CRLF, as SmtpServer frames them; a bare LF does not end a command line.
            var reader = new SequenceReader<byte>(buffer);
            if (!reader.TryReadTo(out ReadOnlySequence<byte> _, "\r\n"u8, advancePastDelimiter: true))
            {
                if (_discardingLongLine || buffer.Length > MaxLineLength(buffer))
                {
                    // Keep nothing of a line that is already too long (SmtpServer would buffer it without
                    // bound) but its last byte, which may be the CR of the CRLF that ends it.
                    _discardingLongLine = true;
                    if (result.IsCompleted)
                    {
                        _inner.AdvanceTo(buffer.End);
                        return Completed();
                    }

                    _inner.AdvanceTo(buffer.GetPosition(buffer.Length - 1), buffer.End);
                    continue;
                }

                _last = buffer;
                return result;
            }

            var lineEnd = reader.Position;
            var line = buffer.Slice(0, lineEnd);
            if (_commands >= limits.MaxCommandsPerSession)
            {
                _inner.AdvanceTo(lineEnd);
                await reply("421 4.7.0 Too many commands, closing connection", cancellationToken).ConfigureAwait(false);
                _closed = true;
                return Completed();
            }

            if (_discardingLongLine || line.Length > MaxLineLength(line))
            {
                _discardingLongLine = false;
                _inner.AdvanceTo(lineEnd);
                _commands++;
                await reply("500 5.5.2 Line too long", cancellationToken).ConfigureAwait(false);
                continue;
            }

            _pendingEnvelope = null;
            if (IsVerb(line, "MAIL"u8) || IsVerb(line, "RCPT"u8))
            {
                var text = Encoding.Latin1.GetString(line);
                var envelope = EnvelopeLine.Parse(text);
                if (envelope is not null && !Ascii.IsValid(envelope.Path))
                {
                    // SMTPUTF8 is not offered, so an address must be ASCII (RFC 6531 §3.5; SmtpServer
                    // would turn the octets into '?' and take it).
                    _inner.AdvanceTo(lineEnd);
                    _commands++;
                    await reply("553 5.6.7 Non-ASCII address not permitted, SMTPUTF8 is not offered", cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (envelope?.Problem is EnvelopeLineProblem.RepeatedParameter or EnvelopeLineProblem.UnknownParameter)
                {
                    // SmtpServer 11.1's parser throws on a repeated parameter and drops the session
                    // without a reply, and takes any unknown one: answer both here (RFC 5321 §4.1.1.11).
                    _inner.AdvanceTo(lineEnd);
                    _commands++;
                    await reply(
                        envelope.Problem == EnvelopeLineProblem.RepeatedParameter ? "501 5.5.4 Parameter given twice" : "555 5.5.4 Parameter not recognised",
                        cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (envelope is { Verb: EnvelopeVerb.Rcpt } && limits.PostmasterDomain is { } domain
                    && envelope.Path.Equals("postmaster", StringComparison.OrdinalIgnoreCase))
                {
                    // SmtpServer's parser needs a domain; the path holds no quotes, so the first '>' ends it.
                    var open = text.IndexOf('<', StringComparison.Ordinal);
                    var close = text.IndexOf('>', open);
                    var routed = string.Concat(text.AsSpan(0, open + 1), "postmaster@", domain, text.AsSpan(close));
                    return HandOutRewritten(lineEnd, routed);
                }

                _pendingEnvelope = (line.Length, envelope);
            }
            else if (IsVerb(line, "NOOP"u8) && line.Length > "NOOP\r\n".Length)
            {
                return HandOutRewritten(lineEnd, "NOOP\r\n");
            }
            else if (IsVerb(line, "VRFY"u8))
            {
                // RFC 5321 §3.5.3 and §7.3: with verification disabled, 252 (which says nothing about
                // the address) rather than a code a client could read as an answer.
                var argument = Encoding.Latin1.GetString(line).AsSpan(4).Trim();
                _inner.AdvanceTo(lineEnd);
                _commands++;
                await reply(
                    argument.IsEmpty ? "501 5.5.2 Syntax error in parameters or arguments" : "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery",
                    cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (EtrnHandler is { } etrn && IsVerb(line, "ETRN"u8))
            {
                var text = Encoding.Latin1.GetString(line);
                _inner.AdvanceTo(lineEnd);
                _commands++;
                await reply(await etrn(text, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                continue;
            }

            _last = buffer;
            return result;
        }
    }

    // The client's line is consumed; SmtpServer gets the replacement, and AdvanceTo treats it as
    // the line it consumed (command count, envelope line, verb).
    private ReadResult HandOutRewritten(SequencePosition lineEnd, string line)
    {
        _inner.AdvanceTo(lineEnd);
        var bytes = Encoding.Latin1.GetBytes(line);
        _pendingEnvelope = EnvelopeLine.Parse(line) is { } envelope ? (bytes.Length, envelope) : null;
        _rewritten = new ReadOnlySequence<byte>(bytes);
        _last = _rewritten.Value;
        return new ReadResult(_last, isCanceled: false, isCompleted: false);
    }

    private int MaxLineLength(ReadOnlySequence<byte> line) =>
        IsVerb(line, "MAIL"u8) ? limits.MaxCommandLineLength + MailLineAllowance
        : IsVerb(line, "RCPT"u8) ? limits.MaxCommandLineLength + RcptLineAllowance
        : limits.MaxCommandLineLength;

    private static bool IsVerb(ReadOnlySequence<byte> line, ReadOnlySpan<byte> verb)
    {
        Span<byte> head = stackalloc byte[5];
        var length = (int)Math.Min(line.Length, head.Length);
        line.Slice(0, length).CopyTo(head);
        return length >= verb.Length
            && Ascii.EqualsIgnoreCase(head[..verb.Length], verb)
            && (length == verb.Length || head[verb.Length] is (byte)' ' or (byte)'\r' or (byte)'\n');
    }

    private ReadResult Completed()
    {
        _last = default;
        return new ReadResult(ReadOnlySequence<byte>.Empty, isCanceled: false, isCompleted: true);
    }

    private async ValueTask<ReadResult> ReadBodyAsync(bool leadingCrlf, CancellationToken cancellationToken)
    {
        var maxContentBytes = limits.MaxContentBytes;
        _bodyHandedOut = true;
        BodyHasLeadingCrlf = leadingCrlf;
        var framing = EndOfData.Length + (leadingCrlf ? 0 : -2);
        long searchFrom = 0;
        var discarding = false;
        while (true)
        {
            var result = await _inner.ReadAsync(cancellationToken).ConfigureAwait(false);
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

                _inner.AdvanceTo(reader.Position);
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
                _inner.AdvanceTo(buffer.GetPosition(buffer.Length - keep), buffer.End);
                searchFrom = 0;
            }
            else
            {
                _inner.AdvanceTo(buffer.Start, buffer.End);
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
            _bodyHandedOut = false;
            return;
        }

        if (_bodyHandedOut)
        {
            _bodyHandedOut = false;
            _inner.AdvanceTo(consumed, examined);
            return;
        }

        if (_rewritten is { } rewritten)
        {
            var used = rewritten.Slice(rewritten.Start, consumed);
            if (used.Length > 0)
            {
                Consumed(used);
            }

            var rest = rewritten.Slice(consumed);
            _rewritten = rest.IsEmpty ? null : rest;
            return;
        }

        var length = _last.Slice(_last.Start, consumed).Length;
        if (length > 0)
        {
            Consumed(_last.Slice(0, length));
        }

        if (length is > 0 and <= MaxDataLine && IsDataLine(Encoding.Latin1.GetString(_last.Slice(0, length))))
        {
            var keep = _last.GetPosition(length - 2);
            _heldCrlf = true;
            _inner.AdvanceTo(keep, keep);
            return;
        }

        _inner.AdvanceTo(consumed, examined);
    }

    private void Consumed(ReadOnlySequence<byte> line)
    {
        _commands++;
        LastEnvelopeLine = _pendingEnvelope is { } pending && pending.Length == line.Length ? pending.Line : null;
        _pendingEnvelope = null;
        LastCommandHead = Encoding.Latin1.GetString(line.Slice(0, Math.Min(line.Length, 16)));
    }

    private static bool IsDataLine(string line) =>
        line.EndsWith("\r\n", StringComparison.Ordinal) && line.AsSpan().Trim().Equals("DATA", StringComparison.OrdinalIgnoreCase);

    // Every read goes through ReadAsync, where ETRN and the limits are handled; SmtpServer only
    // uses ReadAsync, and "nothing available synchronously" is always a valid answer.
    public override bool TryRead(out ReadResult result)
    {
        result = default;
        return false;
    }

    public override void CancelPendingRead() => _inner.CancelPendingRead();

    public override void Complete(Exception? exception = null) => _inner.Complete(exception);
}

/// <summary>
/// The bounds a session's input enforces, the STARTTLS certificate (null: no TLS), and the domain
/// <c>RCPT TO:&lt;Postmaster&gt;</c> goes to (null: left to SmtpServer, which refuses it).
/// </summary>
internal sealed record InputLimits(
    long MaxContentBytes,
    int MaxCommandLineLength,
    int MaxCommandsPerSession,
    SslStreamCertificateContext? Tls = null,
    string? PostmasterDomain = null);
