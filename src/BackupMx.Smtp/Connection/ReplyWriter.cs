using System.Buffers;
using System.IO.Pipelines;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// The session's output as SmtpServer writes it, with three repairs. SmtpServer appends
/// ", N retry(ies) remaining." to every refusal it sends for a thrown reply (relaying denied,
/// bad sequence, unknown command). That text is not ours to send: it would end up quoted in
/// other servers' bounces ("550 5.7.1 Relaying denied, 999 retry(ies) remaining.") and tells a
/// client how many more errors it may make. And a command out of order (RCPT before MAIL, DATA
/// before RCPT) gets "501 expected MAIL/RSET/..." from its state machine, where RFC 5321 §4.3.2
/// asks for 503. And every line its parser cannot read gets "502 Unrecognized command", where
/// RFC 5321 §4.2.4 and §4.3.2 distinguish a syntax error in a known command's arguments (501), a
/// verb that is known but not implemented (502) and an unknown verb (500): the reply is chosen from
/// the verb of the line SmtpServer consumed last (<paramref name="lastCommandHead"/>; SmtpServer
/// flushes each reply before it reads the next line). Replies are held until SmtpServer flushes
/// them, then passed on repaired; everything else goes out byte for byte.
/// </summary>
/// <remarks>
/// When the receiver cuts a session off at shutdown (<see cref="BeginShutdown"/>), SmtpServer's
/// cancelled session writes whatever its cancellation path produces: a bare "554" (permanent: the
/// sender would bounce) when a DATA body was being read, "221 The session has be cancelled." when
/// it waited for a command. From then on only a reply that reports something done (25x, such as
/// the 250 of a message the spool already holds) goes out; the first other reply is replaced by
/// the shutdown reply (421 4.3.2, RFC 5321 §3.8) and everything after it is dropped. Those writes
/// come with SmtpServer's cancelled token, so they are flushed under a short timeout of their own.
/// <para>
/// A client that stops reading its replies would hold the session in a flush for ever; a flush that
/// takes longer than the command timeout ends the session as if the client had gone.
/// </para>
/// </remarks>
internal sealed class ReplyWriter(PipeWriter inner, Func<string?>? lastCommandHead = null, SessionTimeouts? timeouts = null) : PipeWriter
{
    private static readonly TimeSpan ShutdownFlushTimeout = TimeSpan.FromSeconds(2);

    private static ReadOnlySpan<byte> Suffix => " retry(ies) remaining."u8;

    private static ReadOnlySpan<byte> OutOfSequence => "501 expected "u8;

    private static ReadOnlySpan<byte> BadSequence => "503 5.5.1 Bad sequence of commands"u8;

    private static ReadOnlySpan<byte> Unrecognized => "502 Unrecognized command"u8;

    private static ReadOnlySpan<byte> TooManyErrors => "421 4.7.0 Too many errors, closing connection\r\n"u8;

    private readonly ArrayBufferWriter<byte> _pending = new(256);
    private volatile byte[]? _shutdownReply;
    private bool _shutdownReplied;

    /// <summary>
    /// From now on the session is being cut off: the next reply that is not a 25x becomes
    /// <paramref name="reply"/> (a whole line with its CRLF), and nothing is sent after it.
    /// </summary>
    public void BeginShutdown(byte[] reply) => _shutdownReply = reply;

    /// <summary>
    /// Sends the shutdown reply if the session ended without writing anything it could replace
    /// (a command that failed without a reply). Called once SmtpServer is done with the session.
    /// </summary>
    public void EndShutdown()
    {
        if (_shutdownReply is not { } reply || _shutdownReplied)
        {
            return;
        }

        _pending.Clear();
        inner.Write(reply);
        _shutdownReplied = true;
        try
        {
            ShutdownFlushAsync().AsTask().GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is InvalidOperationException or ObjectDisposedException)
        {
            // The output was already completed; there is nobody left to tell.
        }
    }

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
        if (_shutdownReply is not null)
        {
            return ShutdownFlushAsync();
        }

        PassOn();
        return timeouts is null ? FlushInnerAsync(cancellationToken) : FlushWithTimeoutAsync(timeouts, cancellationToken);
    }

    private async ValueTask<FlushResult> FlushWithTimeoutAsync(SessionTimeouts limits, CancellationToken cancellationToken)
    {
        using var timer = new CancellationTokenSource(limits.Command, limits.Time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        try
        {
            return await FlushInnerAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new IOException("The client did not read its replies within the command timeout.");
        }
    }

    // SmtpServer's token is cancelled by then; a client that does not read must not hold the stop up.
    private async ValueTask<FlushResult> ShutdownFlushAsync()
    {
        PassOn();
        using var timeout = new CancellationTokenSource(ShutdownFlushTimeout);
        try
        {
            return await FlushInnerAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The client is gone or not reading; the session ends either way.
            return new FlushResult(isCanceled: false, isCompleted: true);
        }
    }

    /// <summary>
    /// Flushes the inner writer, again if it reports a cancelled flush. The socket's writer
    /// (<c>PipeWriter.Create(stream)</c>) cancels an internal token of its own when the caller's
    /// token is cancelled, and that token outlives the flush: a session cancelled just as a reply
    /// had gone out (a shutdown, a timeout) leaves it cancelled, and the next flush returns
    /// <see cref="FlushResult.IsCanceled"/> with its bytes still buffered, so the 421 of the
    /// shutdown was never sent. Nothing calls <see cref="CancelPendingFlush"/> on a session's
    /// output, so a cancelled result is always that stale cancellation; the writer renews its
    /// token after reporting it, and a second attempt goes through. A token that is really
    /// cancelled throws instead.
    /// </summary>
    private async ValueTask<FlushResult> FlushInnerAsync(CancellationToken cancellationToken)
    {
        var result = await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
        return result.IsCanceled ? await inner.FlushAsync(cancellationToken).ConfigureAwait(false) : result;
    }

    /// <summary>Copies what was written since the last flush to the inner writer, line by line.</summary>
    private void PassOn()
    {
        var shutdownReply = _shutdownReply;
        var rest = _pending.WrittenSpan;
        while (!rest.IsEmpty)
        {
            var end = rest.IndexOf("\r\n"u8);
            var line = end < 0 ? rest : rest[..end];
            var passes = shutdownReply is null || (!_shutdownReplied && IsDone(line));
            if (!passes)
            {
                if (!_shutdownReplied)
                {
                    inner.Write(shutdownReply!);
                    _shutdownReplied = true;
                }

                if (end < 0)
                {
                    break;
                }

                rest = rest[(end + 2)..];
                continue;
            }

            inner.Write(Repaired(line, lastCommandHead?.Invoke()));
            if (end < 0)
            {
                break;
            }

            inner.Write("\r\n"u8);
            if (IsLastRetry(line))
            {
                // SmtpServer closes the connection after this refusal without a word; RFC 5321 §3.8
                // asks for a 421 first.
                inner.Write(TooManyErrors);
            }

            rest = rest[(end + 2)..];
        }

        _pending.Clear();
    }

    // 250, 251, 252: a command that took effect, which the client must still learn of.
    private static bool IsDone(ReadOnlySpan<byte> line) => line.Length >= 4 && line[0] == (byte)'2' && line[1] == (byte)'5' && line[3] is (byte)' ' or (byte)'-';

    /// <summary>A reply line repaired as described above; any other line unchanged.</summary>
    /// <param name="commandHead">The start of the command line the reply answers, when known.</param>
    internal static ReadOnlySpan<byte> Repaired(ReadOnlySpan<byte> line, string? commandHead = null)
    {
        line = WithoutRetryCount(line);
        return line.StartsWith(OutOfSequence) ? BadSequence
            : line.SequenceEqual(Unrecognized) ? ForUnparsed(commandHead)
            : line;
    }

    /// <summary>The reply to a line SmtpServer's parser could not read, by its verb.</summary>
    internal static ReadOnlySpan<byte> ForUnparsed(string? commandHead)
    {
        var head = (commandHead ?? string.Empty).AsSpan();
        var end = head.IndexOfAny(' ', '\r', '\n');
        var verb = (end < 0 ? head : head[..end]).ToString().ToUpperInvariant();
        return verb switch
        {
            "MAIL" when head.StartsWith("MAIL FROM:", StringComparison.OrdinalIgnoreCase) => "501 5.1.7 Bad sender address syntax"u8,
            "RCPT" when head.StartsWith("RCPT TO:", StringComparison.OrdinalIgnoreCase) => "501 5.1.3 Bad recipient address syntax"u8,
            "HELO" or "EHLO" or "MAIL" or "RCPT" or "DATA" or "RSET" or "NOOP" or "QUIT" or "STARTTLS" or "VRFY" or "ETRN"
                => "501 5.5.2 Syntax error in parameters or arguments"u8,

            // Known verbs we do not offer: EXPN (RFC 5321 §3.5.3 allows 502), HELP, obsolete RFC 821
            // ones, and extensions not advertised (CHUNKING, AUTH, ODMR).
            "EXPN" or "HELP" or "TURN" or "SEND" or "SOML" or "SAML" or "BDAT" or "AUTH" or "ATRN" or "PROXY"
                => "502 5.5.1 Command not implemented"u8,
            _ => "500 5.5.1 Command unrecognized"u8,
        };
    }

    // The refusal after which SmtpServer's error count is used up.
    private static bool IsLastRetry(ReadOnlySpan<byte> line)
    {
        var without = WithoutRetryCount(line);
        return without.Length < line.Length && line[(without.Length + 2)..].StartsWith("0 "u8);
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
