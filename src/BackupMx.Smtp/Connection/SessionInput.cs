using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using BackupMx.Smtp.Protocol;
using BackupMx.Smtp.Tls;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// The session's input as SmtpServer reads it: the DATA phase, the line-length and command-count
/// limits, ETRN and VRFY, which SmtpServer's fixed parser would answer with 502, and the one reading
/// of each MAIL and RCPT line (<see cref="LastEnvelopeLine"/>): repeated or unknown parameters and
/// non-ASCII paths are answered here, and the later stages take the parameters from that reading.
/// Two lines SmtpServer cannot parse are handed to it rewritten: <c>RCPT TO:&lt;Postmaster&gt;</c>
/// (RFC 5321 §4.5.1) as <c>postmaster@</c> the configured postmaster domain, and NOOP with an argument
/// (which RFC 5321 §4.1.1.9 says to ignore) as a bare NOOP.
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
/// <para>
/// Timeouts follow RFC 5321 §4.5.3.2 and are all ours (SmtpServer's are switched off): the wait for
/// each command line, from the 354 to the first bytes of the body, and between blocks of the body
/// (reset by every block received), so a session that keeps making progress is never cut off. The
/// session-length limit is checked only between transactions. Each answers 421 4.4.2 through
/// <paramref name="closing"/>, which makes that the session's last reply, never a 5xx.
/// </para>
/// <para>
/// SmtpServer is only ever handed whole lines: its line reader keeps a position into the buffer it
/// was given across reads, which a line answered or rewritten here would invalidate.
/// </para>
internal sealed class SessionInput(PipeReader inner, InputLimits limits, Func<string, CancellationToken, ValueTask> reply, Action<string>? closing = null) : PipeReader
{
    private const string TimeoutReply = "421 4.4.2 Timeout waiting for input, closing connection";
    private const string SessionTooLongReply = "421 4.4.2 Connection time limit reached, closing connection";

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
    private bool _smtpUtf8;
    private int _commands;
    private readonly SessionTimeouts _timeouts = limits.Timeouts ?? SessionTimeouts.Default;

    /// <summary>The limits this session was opened with; a reload does not change them.</summary>
    public InputLimits Limits => limits;
    private readonly long _started = (limits.Timeouts ?? SessionTimeouts.Default).Time.GetTimestamp();

    // From a MAIL that SmtpServer read until the end of its body, RSET, HELO or EHLO: the session
    // length limit waits for the transaction to end.
    private bool _inTransaction;

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

    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (_rewritten is { } rewritten)
        {
            _last = rewritten;
            return new ReadResult(rewritten, isCanceled: false, isCompleted: false);
        }

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
        _rewritten = null;
        LastEnvelopeLine = null;
        LastCommandHead = null;
        _discardingLongLine = false;
        _inTransaction = false;
        DataAccepted = false;
        old.Complete();
    }

    // SmtpServer only ever consumes whole lines, so each call starts at the beginning of a line.
    // Lines we answer ourselves (ETRN, over-long lines, one past the command limit) are consumed
    // here and never reach it; the replies go out before it reads again, so they stay in order.
    private async ValueTask<ReadResult> ReadCommandAsync(CancellationToken cancellationToken)
    {
        // Each command line gets the command timeout from the moment it is waited for; a line
        // answered here starts the next one afresh.
        var timer = new CancellationTokenSource(_timeouts.Command, _timeouts.Time);
        var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        try
        {
            while (true)
            {
                if (_closed)
                {
                    return Completed();
                }

                if (!_inTransaction && _timeouts.Session > TimeSpan.Zero && _timeouts.Time.GetElapsedTime(_started) >= _timeouts.Session)
                {
                    return Close(SessionTooLongReply);
                }

                ReadResult result;
                try
                {
                    result = await _inner.ReadAsync(linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    return Close(TimeoutReply);
                }

                var buffer = result.Buffer;
                if (result.IsCanceled)
                {
                    // A stale cancellation (see CancelPendingRead), not the end of the session:
                    // handed on, SmtpServer would end the session without a word. Read again;
                    // whatever is buffered comes back at once.
                    _inner.AdvanceTo(buffer.Start);
                    continue;
                }

                // Lines end at CRLF, as SmtpServer frames them; a bare LF does not end a command line.
                var reader = new SequenceReader<byte>(buffer);
                if (!reader.TryReadTo(out ReadOnlySequence<byte> _, "\r\n"u8, advancePastDelimiter: true))
                {
                    if (result.IsCompleted)
                    {
                        // The client left in the middle of a line (or between lines): nothing to run.
                        _inner.AdvanceTo(buffer.End);
                        return Completed();
                    }

                    if (_discardingLongLine || buffer.Length > MaxLineLength(buffer))
                    {
                        // Keep nothing of a line that is already too long (SmtpServer would buffer it without
                        // bound) but its last byte, which may be the CR of the CRLF that ends it.
                        _discardingLongLine = true;
                        _inner.AdvanceTo(buffer.GetPosition(buffer.Length - 1), buffer.End);
                        continue;
                    }

                    // Not a whole line yet: wait for the rest here rather than hand SmtpServer a part.
                    _inner.AdvanceTo(buffer.Start, buffer.End);
                    continue;
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

                if (await AnswerOrRewriteAsync(line, lineEnd, cancellationToken).ConfigureAwait(false) is { } handled)
                {
                    if (handled.IsCompleted)
                    {
                        return handled;
                    }

                    if (handled.Buffer.IsEmpty)
                    {
                        // Answered here: the next line has a command timeout of its own.
                        timer.Dispose();
                        linked.Dispose();
                        timer = new CancellationTokenSource(_timeouts.Command, _timeouts.Time);
                        linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
                        continue;
                    }

                    return handled;
                }

                _last = buffer;
                return result;
            }
        }
        finally
        {
            linked.Dispose();
            timer.Dispose();
        }
    }

    /// <summary>
    /// A whole line SmtpServer must not see as it is: null when it may; an empty result when the line
    /// was answered here; otherwise what to hand SmtpServer in its place.
    /// </summary>
    private async ValueTask<ReadResult?> AnswerOrRewriteAsync(ReadOnlySequence<byte> line, SequencePosition lineEnd, CancellationToken cancellationToken)
    {
        if (_discardingLongLine || line.Length > MaxLineLength(line))
        {
            _discardingLongLine = false;
            await AnswerAsync(lineEnd, "500 5.5.2 Line too long", cancellationToken).ConfigureAwait(false);
            return Answered;
        }

        _pendingEnvelope = null;
        if (IsVerb(line, "MAIL"u8) || IsVerb(line, "RCPT"u8))
        {
            var utf8 = TryReadUtf8(line, out var text);
            var envelope = EnvelopeLine.Parse(text);
            if (envelope is { Verb: EnvelopeVerb.Mail })
            {
                _smtpUtf8 = envelope.Parameters.ContainsKey("SMTPUTF8");
            }

            var international = envelope is not null && !Ascii.IsValid(envelope.Path);
            if (international && (!utf8 || !_smtpUtf8))
            {
                // An internationalized address needs SMTPUTF8 on this transaction's MAIL, and UTF-8
                // (RFC 6531 §3.4, §3.5); SmtpServer would turn the octets into '?' and take it.
                await AnswerAsync(lineEnd, "553 5.6.7 Non-ASCII address not permitted without SMTPUTF8", cancellationToken).ConfigureAwait(false);
                return Answered;
            }

            if (envelope?.Problem is EnvelopeLineProblem.RepeatedParameter or EnvelopeLineProblem.UnknownParameter)
            {
                // SmtpServer 11.1's parser throws on a repeated parameter and drops the session
                // without a reply, and takes any unknown one: answer both here (RFC 5321 §4.1.1.11).
                await AnswerAsync(
                    lineEnd,
                    envelope.Problem == EnvelopeLineProblem.RepeatedParameter ? "501 5.5.4 Parameter given twice" : "555 5.5.4 Parameter not recognised",
                    cancellationToken).ConfigureAwait(false);
                return Answered;
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

            if (international && envelope!.Problem == EnvelopeLineProblem.None)
            {
                if (StandIn(text, envelope) is not { } standIn)
                {
                    await AnswerAsync(lineEnd, "553 5.1.3 Bad address syntax", cancellationToken).ConfigureAwait(false);
                    return Answered;
                }

                return HandOutRewritten(lineEnd, standIn, envelope);
            }

            if (envelope is not null)
            {
                switch (PathRewrite.Of(text, envelope))
                {
                    case PathRewrite.Refused refused:
                        await AnswerAsync(lineEnd, refused.Reply, cancellationToken).ConfigureAwait(false);
                        return Answered;
                    case PathRewrite.Rewritten rewritten:
                        return HandOutRewritten(lineEnd, rewritten.Line, rewritten.Remembered);
                }
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
            await AnswerAsync(
                lineEnd,
                argument.IsEmpty ? "501 5.5.2 Syntax error in parameters or arguments" : "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery",
                cancellationToken).ConfigureAwait(false);
            return Answered;
        }
        else if (EtrnHandler is { } etrn && IsVerb(line, "ETRN"u8))
        {
            var text = Encoding.Latin1.GetString(line);
            await AnswerAsync(lineEnd, await etrn(text, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            return Answered;
        }

        return null;
    }

    private static ReadResult Answered => new(ReadOnlySequence<byte>.Empty, isCanceled: false, isCompleted: false);

    /// <summary>Ends the session with <paramref name="reason"/> (a 421) as its last reply.</summary>
    private ReadResult Close(string reason)
    {
        _closed = true;
        closing?.Invoke(reason);
        return Completed();
    }

    // A line answered here: consumed and counted, and its reply sent before SmtpServer reads again.
    private ValueTask AnswerAsync(SequencePosition lineEnd, string answer, CancellationToken cancellationToken)
    {
        _inner.AdvanceTo(lineEnd);
        _commands++;
        return reply(answer, cancellationToken);
    }

    // The client's line is consumed; SmtpServer gets the replacement, and AdvanceTo treats it as
    // the line it consumed (command count, envelope line, verb).
    // The line remembered for the later stages is the replacement's, unless given.
    private ReadResult HandOutRewritten(SequencePosition lineEnd, string line, EnvelopeLine? remembered = null)
    {
        _inner.AdvanceTo(lineEnd);
        var bytes = Encoding.Latin1.GetBytes(line);
        _pendingEnvelope = (remembered ?? EnvelopeLine.Parse(line)) is { } envelope ? (bytes.Length, envelope) : null;
        _rewritten = new ReadOnlySequence<byte>(bytes);
        _last = _rewritten.Value;
        return new ReadResult(_last, isCanceled: false, isCompleted: false);
    }

    // A MAIL or RCPT line as text: UTF-8 when it is valid UTF-8 with octets above 127 (RFC 6531),
    // Latin-1 otherwise, so every octet stays one char.
    private static bool TryReadUtf8(ReadOnlySequence<byte> line, out string text)
    {
        var bytes = line.ToArray();
        if (!Ascii.IsValid(bytes) && System.Text.Unicode.Utf8.IsValid(bytes))
        {
            text = Encoding.UTF8.GetString(bytes);
            return true;
        }

        text = Encoding.Latin1.GetString(bytes);
        return false;
    }

    /// <summary>
    /// The line with its internationalized path replaced by an ASCII one SmtpServer parses intact:
    /// the local part as hex of its UTF-8 octets, the domain as A-labels (which the domain checks
    /// compare against). The stored address is the client's, from <see cref="LastEnvelopeLine"/>.
    /// Null when the domain is no valid IDN.
    /// </summary>
    private static string? StandIn(string text, EnvelopeLine envelope)
    {
        var open = text.IndexOf('<', StringComparison.Ordinal);
        var path = envelope.Path;
        var at = path.LastIndexOf('@');
        var domain = at < 0 ? string.Empty : BackupMx.Core.Configuration.DomainName.ToAscii(path[(at + 1)..]);
        if (at <= 0 || domain.Length == 0 || !Ascii.IsValid(domain))
        {
            return null;
        }

        var local = "u" + Convert.ToHexString(Encoding.UTF8.GetBytes(path[..at]));
        return text[..(open + 1)] + local + "@" + domain + text[(open + 1 + path.Length)..];
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
            // The first wait is the DATA initiation; after it, each block restarts the block timeout.
            var timeout = _timeouts.DataInitiation;
            while (true)
            {
                ReadResult result;
                using (var timer = new CancellationTokenSource(timeout, _timeouts.Time))
                using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token))
                {
                    try
                    {
                        result = await _inner.ReadAsync(linked.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                    {
                        // SmtpServer answers a body that ends without its final dot with a 554; the
                        // closing reply takes its place.
                        _last = default;
                        return Close(TimeoutReply);
                    }
                }

                timeout = _timeouts.DataBlock;
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
                    _inTransaction = false;
                    _body = body;
                    body = null;
                    _synthetic = true;
                    _last = new ReadOnlySequence<byte>(EmptyBody);
                    return new ReadResult(_last, isCanceled: false, isCompleted: false);
                }

                _inner.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    // The client left in the middle of the body.
                    _last = default;
                    return new ReadResult(ReadOnlySequence<byte>.Empty, isCanceled: false, isCompleted: true);
                }

                if (result.IsCanceled)
                {
                    // A stale cancellation (see CancelPendingRead): what it carried is kept; read on.
                    continue;
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

        _inner.AdvanceTo(consumed, examined);
    }

    private void Consumed(ReadOnlySequence<byte> line)
    {
        _commands++;
        if (IsVerb(line, "MAIL"u8))
        {
            _inTransaction = true;
        }
        else if (IsVerb(line, "RSET"u8) || IsVerb(line, "HELO"u8) || IsVerb(line, "EHLO"u8))
        {
            _inTransaction = false;
        }

        LastEnvelopeLine = _pendingEnvelope is { } pending && pending.Length == line.Length ? pending.Line : null;
        _pendingEnvelope = null;
        LastCommandHead = Encoding.Latin1.GetString(line.Slice(0, Math.Min(line.Length, 16)));
    }

    // Every read goes through ReadAsync, where ETRN and the limits are handled; SmtpServer only
    // uses ReadAsync, and "nothing available synchronously" is always a valid answer.
    public override bool TryRead(out ReadResult result)
    {
        result = default;
        return false;
    }

    /// <summary>
    /// Passed on, but a cancelled read is not reported: the socket's reader
    /// (<c>PipeReader.Create(stream)</c>) cancels an internal token of its own when the caller's
    /// token is cancelled, and that token outlives the read. A token cancelled just as a read
    /// completed (a timer, the session's cancellation) leaves it cancelled, and the next read
    /// returns <see cref="ReadResult.IsCanceled"/> although nobody asked for it; SmtpServer takes that
    /// for the end of the session and closes without a reply. Reads therefore go on after a
    /// cancelled result; a cancellation that is meant comes as the token's,
    /// which throws. SmtpServer never calls this.
    /// </summary>
    public override void CancelPendingRead() => _inner.CancelPendingRead();

    public override void Complete(Exception? exception = null)
    {
        TakeBody()?.Dispose();
        _inner.Complete(exception);
    }
}

/// <summary>
/// The bounds a session's input enforces, the STARTTLS certificate as it is at each handshake (null: no TLS), and the domain
/// <c>RCPT TO:&lt;Postmaster&gt;</c> goes to (null: left to SmtpServer, which refuses it).
/// </summary>
internal sealed record InputLimits(
    BodyLimits Body,
    int MaxCommandLineLength,
    int MaxCommandsPerSession,
    ServerCertificate? Tls = null,
    string? PostmasterDomain = null,
    SessionTimeouts? Timeouts = null);

/// <summary>
/// The timeouts of a session (RFC 5321 §4.5.3.2), on <paramref name="Time"/>: the wait for each
/// command line, from the 354 to the first bytes of the body, between blocks of the body, and the
/// session length, which is only enforced between transactions.
/// </summary>
internal sealed record SessionTimeouts(TimeSpan Command, TimeSpan DataInitiation, TimeSpan DataBlock, TimeSpan Session, TimeProvider Time)
{
    public static SessionTimeouts Default { get; } = new(
        TimeSpan.FromMinutes(5),
        TimeSpan.FromMinutes(5),
        TimeSpan.FromMinutes(5),
        Timeout.InfiniteTimeSpan,
        TimeProvider.System);
}
