using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Text;
using BackupMx.Smtp.Protocol;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// The session's input as SmtpServer reads it: the DATA phase, the line-length and command-count
/// limits, ETRN, which SmtpServer's fixed parser would answer with 502, and the one reading of each
/// MAIL and RCPT line (<see cref="LastEnvelopeLine"/>): repeated or unknown parameters are answered
/// here, and the later stages take the parameters from that reading.
/// </summary>
/// <remarks>
/// SmtpServer would hold a whole DATA body in memory until its final dot. Instead the body is read
/// here, as it arrives, into an <see cref="IncomingBody"/> (end of data, unstuffing, size limit,
/// content checks, a temporary copy that goes to a file once it outgrows a small buffer), and
/// SmtpServer is handed a fixed empty body in its place; the store takes the real one with
/// <see cref="TakeBody"/>. Reading stops exactly at the final dot, so commands pipelined after it
/// stay in the pipe. A body over the size limit is read to its end and thrown away, and the store
/// answers 552 while the session goes on (SmtpServer's own strict check would close the connection
/// without a reply). All other buffers handed out are the inner pipe's own (positions stay valid
/// across reads).
/// </remarks>
internal sealed class SessionInput(PipeReader inner, InputLimits limits, Func<string, CancellationToken, ValueTask> reply) : PipeReader
{
    // Room the parameters we advertise need beyond the basic 512 (RFC 1870 SIZE, RFC 6152 BODY,
    // RFC 3461 §4: RET and ENVID on MAIL, NOTIFY and ORCPT on RCPT).
    private const int MailLineAllowance = 150;
    private const int RcptLineAllowance = 500;

    private static readonly byte[] EmptyBody = "\r\n.\r\n"u8.ToArray();

    private PipeReader _inner = inner;
    private ReadOnlySequence<byte> _last;
    private bool _synthetic;
    private IncomingBody? _body;
    private bool _discardingLongLine;
    private bool _closed;
    private int _commands;

    // The MAIL or RCPT line at the head of the buffer handed to SmtpServer, and its length; it
    // becomes LastEnvelopeLine when SmtpServer consumes exactly that line.
    private (long Length, EnvelopeLine? Line)? _pendingEnvelope;

    /// <summary>
    /// Answers ETRN lines, which SmtpServer's parser cannot know: given the line, returns the reply
    /// to send. Set once the session exists; until then ETRN goes to SmtpServer and gets 502.
    /// </summary>
    public Func<string, CancellationToken, ValueTask<string>>? EtrnHandler { get; set; }

    /// <summary>
    /// The MAIL or RCPT line consumed last, as parsed before SmtpServer saw it; null when the last
    /// line consumed was another command. SmtpServer keeps no RCPT parameters of its own.
    /// </summary>
    public EnvelopeLine? LastEnvelopeLine { get; private set; }

    /// <summary>Set when DATA is about to be answered with 354, so the next read is the body.</summary>
    public bool DataAccepted { get; set; }

    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        var dataAccepted = DataAccepted;
        DataAccepted = false;
        return dataAccepted
            ? await ReadBodyAsync(cancellationToken).ConfigureAwait(false)
            : await ReadCommandAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The body of the DATA phase just ended, for the store, which then owns (and disposes) it.</summary>
    public IncomingBody? TakeBody() => Interlocked.Exchange(ref _body, null);

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
        LastEnvelopeLine = null;
        _discardingLongLine = false;
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
                var envelope = EnvelopeLine.Parse(Encoding.Latin1.GetString(line));
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

                _pendingEnvelope = (line.Length, envelope);
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

    private async ValueTask<ReadResult> ReadBodyAsync(CancellationToken cancellationToken)
    {
        TakeBody()?.Dispose();
        var body = new IncomingBody(limits.Body);
        try
        {
            while (true)
            {
                var result = await _inner.ReadAsync(cancellationToken).ConfigureAwait(false);
                var buffer = result.Buffer;
                long used = 0;
                foreach (var memory in buffer)
                {
                    used += body.Read(memory.Span);
                    if (body.Ended)
                    {
                        break;
                    }
                }

                if (body.Ended)
                {
                    _inner.AdvanceTo(buffer.GetPosition(used));
                    await body.CompleteAsync(cancellationToken).ConfigureAwait(false);
                    _body = body;
                    body = null;
                    _synthetic = true;
                    _last = new ReadOnlySequence<byte>(EmptyBody);
                    return new ReadResult(_last, isCanceled: false, isCompleted: false);
                }

                _inner.AdvanceTo(buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    // The client left (or the session is being cancelled) in the middle of the body.
                    _last = default;
                    return new ReadResult(ReadOnlySequence<byte>.Empty, result.IsCanceled, result.IsCompleted);
                }

                await body.AfterReadAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            body?.Dispose();
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
        if (length > 0)
        {
            _commands++;
            LastEnvelopeLine = _pendingEnvelope is { } pending && pending.Length == length ? pending.Line : null;
            _pendingEnvelope = null;
        }

        _inner.AdvanceTo(consumed, examined);
    }

    // Every read goes through ReadAsync, where ETRN and the limits are handled; SmtpServer only
    // uses ReadAsync, and "nothing available synchronously" is always a valid answer.
    public override bool TryRead(out ReadResult result)
    {
        result = default;
        return false;
    }

    public override void CancelPendingRead() => _inner.CancelPendingRead();

    public override void Complete(Exception? exception = null)
    {
        TakeBody()?.Dispose();
        _inner.Complete(exception);
    }
}

/// <summary>The bounds a session's input enforces, and the STARTTLS certificate (null: no TLS).</summary>
internal sealed record InputLimits(BodyLimits Body, int MaxCommandLineLength, int MaxCommandsPerSession, SslStreamCertificateContext? Tls = null);
