// An in-process stand-in for a domain's primary mail server.
//
// It is a small hand-written SMTP server rather than an SmtpServer-based one on
// purpose: tests need the DATA bytes exactly as they crossed the wire (after
// dot-unstuffing only), the RCPT parameters (NOTIFY, ORCPT) that SmtpServer
// discards, a DSN advertisement, scripted per-recipient replies without
// SmtpServer's ", N retry(ies) remaining." suffix, and failure modes such as
// dropping the connection after the body. It listens on 127.0.0.1 on a free
// port (from FreePort, outside the ephemeral range) that stays the same across
// StopAsync/StartAsync, so a test can take the primary down and bring it back.
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace BackupMx.Testing;

/// <summary>A reply the fake primary sends: code and text (the text may start with an enhanced code).</summary>
public sealed record FakeReply(int Code, string Text)
{
    public static FakeReply Ok { get; } = new(250, "2.0.0 OK");

    public override string ToString() => $"{Code} {Text}";
}

/// <summary>One recipient of a recorded transaction, with the parameters it came with and what it was told.</summary>
public sealed record FakeRecipient(string Address, IReadOnlyDictionary<string, string> Parameters, FakeReply Reply);

/// <summary>A transaction whose body the fake primary received in full.</summary>
public sealed record FakeTransaction(
    string? HeloName,
    string MailFrom,
    IReadOnlyDictionary<string, string> MailParameters,
    IReadOnlyList<FakeRecipient> Recipients,
    byte[] Data,
    bool Secure)
{
    /// <summary>Recipients the server accepted (2xx to RCPT).</summary>
    public IEnumerable<string> AcceptedRecipients => Recipients.Where(r => r.Reply.Code is >= 200 and < 300).Select(r => r.Address);
}

public sealed class FakePrimary(IPAddress? address = null, int port = 0) : IAsyncDisposable
{
    private readonly IPAddress _address = address ?? IPAddress.Loopback;

    private readonly ConcurrentQueue<FakeTransaction> _messages = new();
    private readonly ConcurrentQueue<string> _commands = new();
    private readonly ConcurrentDictionary<string, FakeReply> _recipientReplies = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<Task, byte> _sessions = new();
    private readonly SemaphoreSlim _arrived = new(0);
    private readonly Lazy<X509Certificate2> _certificate = new(CreateSelfSignedCertificate);
    private TcpListener? _listener;
    private CancellationTokenSource? _stopping;
    private Task? _acceptLoop;
    private int _connections;
    private int _unconfirmed;
    private int _openSessions;
    private int _peakSessions;
    private int _pipelined;

    /// <summary>The listening port; fixed after the first start, so a restart listens on the same one.</summary>
    public int Port { get; private set; } = port;

    /// <summary>The listening address: 127.0.0.1 unless another loopback address was given (two primaries on one port).</summary>
    public string Host => _address.ToString();

    /// <summary>"127.0.0.1:port", the form a Primary setting takes.</summary>
    public string HostPort => $"{Host}:{Port}";

    public bool IsRunning => _listener is not null;

    /// <summary>Transactions whose body arrived in full, in order (including ones dropped before the reply).</summary>
    public IReadOnlyList<FakeTransaction> Messages => _messages.ToArray();

    /// <summary>Every command line received (DATA content excluded), for assertions on EHLO and parameters.</summary>
    public IReadOnlyList<string> Commands => _commands.ToArray();

    /// <summary>Connections accepted since creation.</summary>
    public int ConnectionCount => Volatile.Read(ref _connections);

    /// <summary>
    /// Transactions kept whose final reply was not sent (DropAfterData, or the connection broke
    /// or the server stopped first): the sender must assume failure and may send them again.
    /// </summary>
    public int UnconfirmedCount => Volatile.Read(ref _unconfirmed);

    public string ServerName { get; set; } = "primary.test";

    /// <summary>The greeting; a non-2xx one (421, 554) makes the server close after sending it.</summary>
    public FakeReply Greeting { get; set; } = new(220, "primary.test ESMTP fake");

    public bool AdvertisePipelining { get; set; } = true;

    public bool AdvertiseSize { get; set; } = true;

    public bool Advertise8BitMime { get; set; } = true;

    public bool AdvertiseDsn { get; set; } = true;

    public bool AdvertiseSmtpUtf8 { get; set; }

    /// <summary>Offer STARTTLS with a self-signed certificate (a validating client will refuse it).</summary>
    public bool OfferStartTls { get; set; }

    /// <summary>Answer STARTTLS with 220 and then close instead of shaking hands.</summary>
    public bool BreakTlsHandshake { get; set; }

    public FakeReply MailFromReply { get; set; } = FakeReply.Ok;

    /// <summary>Reply for recipients without a scripted reply.</summary>
    public FakeReply DefaultRecipientReply { get; set; } = FakeReply.Ok;

    /// <summary>Reply after the body's final dot.</summary>
    public FakeReply DataReply { get; set; } = new(250, "2.0.0 queued");

    /// <summary>Recipients taken per transaction (like Postfix's smtpd_recipient_limit); the rest get 452 4.5.3.</summary>
    public int? MaxRecipientsPerTransaction { get; set; }

    /// <summary>Sessions served at once (like a per-client connection limit); one more is greeted with 421 4.7.0 and closed.</summary>
    public int? MaxConcurrentSessions { get; set; }

    /// <summary>Most sessions that were open at the same time.</summary>
    public int PeakSessions => Volatile.Read(ref _peakSessions);

    /// <summary>
    /// Keep the replies to MAIL and RCPT until DATA arrives, then send them with DATA's: only a
    /// client that pipelines (RFC 2920) gets past MAIL; one that waits for each reply times out.
    /// </summary>
    public bool HoldEnvelopeReplies { get; set; }

    /// <summary>Answer DATA with 354 even when no recipient was accepted (RFC 2920 §3.1 expects 503 or 554), then refuse the data with 554.</summary>
    public bool AcceptDataWithoutRecipients { get; set; }

    /// <summary>Command lines that arrived before the reply to the previous command was sent: sent pipelined.</summary>
    public int PipelinedCommands => Volatile.Read(ref _pipelined);

    /// <summary>Close the connection after receiving the whole body, without replying.</summary>
    public bool DropAfterData { get; set; }

    /// <summary>Scripts the RCPT reply for one address (case-insensitive).</summary>
    public FakePrimary Reply(string recipient, int code, string text)
    {
        _recipientReplies[recipient] = new FakeReply(code, text);
        return this;
    }

    public void ClearRecipientReplies() => _recipientReplies.Clear();

    public Task StartAsync()
    {
        if (_listener is not null)
        {
            return Task.CompletedTask;
        }

        // The first start takes its port from FreePort rather than port 0: a port from the
        // ephemeral range could be taken by any outgoing connection while the primary is down,
        // and the restart would then fail (or another test's server would answer in its place).
        TcpListener listener;
        for (var attempt = 1; ; attempt++)
        {
            listener = new TcpListener(_address, Port == 0 ? FreePort.Next() : Port);

            // Rebinding the same port right after a stop must not fail on TIME_WAIT sockets.
            listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            try
            {
                listener.Start();
                break;
            }
            catch (SocketException ex) when (Port == 0 && attempt < 5 && ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                listener.Dispose();
            }
        }

        Port = ((IPEndPoint)listener.LocalEndpoint).Port;
        _listener = listener;
        _stopping = new CancellationTokenSource();
        _acceptLoop = AcceptLoopAsync(listener, _stopping.Token);
        return Task.CompletedTask;
    }

    /// <summary>Stops listening and drops every open connection: connections are refused until the next start.</summary>
    public async Task StopAsync()
    {
        var listener = _listener;
        if (listener is null)
        {
            return;
        }

        _listener = null;
        await _stopping!.CancelAsync().ConfigureAwait(false);
        listener.Stop();
        try
        {
            await _acceptLoop!.ConfigureAwait(false);
            await Task.WhenAll(_sessions.Keys).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Sessions end with whatever the cancelled socket threw; that is the point of stopping.
        }

        _stopping.Dispose();
    }

    /// <summary>Waits until at least <paramref name="count"/> transactions have arrived, or throws TimeoutException.</summary>
    public async Task<IReadOnlyList<FakeTransaction>> WaitForMessagesAsync(int count, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (_messages.Count < count)
        {
            try
            {
                await _arrived.WaitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"Expected {count} message(s) at the fake primary, got {_messages.Count} within {timeout}.");
            }
        }

        return Messages;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        if (_certificate.IsValueCreated)
        {
            _certificate.Value.Dispose();
        }

        _arrived.Dispose();
    }

    private async Task AcceptLoopAsync(TcpListener listener, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptSocketAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception)
            {
                return;
            }

            Interlocked.Increment(ref _connections);
            var session = Task.Run(() => RunSessionAsync(socket, stopping), CancellationToken.None);
            _sessions[session] = 0;
            _ = session.ContinueWith(t => _sessions.TryRemove(t, out _), TaskScheduler.Default);
        }
    }

    private async Task RunSessionAsync(Socket socket, CancellationToken stopping)
    {
        using var _ = socket;
        await using var registration = stopping.Register(() => socket.Dispose()).ConfigureAwait(false);
        try
        {
            var open = Interlocked.Increment(ref _openSessions);
            try
            {
                var stream = new NetworkStream(socket, ownsSocket: false);
                if (open > MaxConcurrentSessions)
                {
                    await stream.WriteAsync("421 4.7.0 primary.test Error: too many connections from 127.0.0.1\r\n"u8.ToArray(), stopping).ConfigureAwait(false);
                    return;
                }

                int peak;
                while (open > (peak = Volatile.Read(ref _peakSessions)) && Interlocked.CompareExchange(ref _peakSessions, open, peak) != peak)
                {
                }

                var session = new Session(this, stream);
                await session.RunAsync(stopping).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _openSessions);
            }
        }
        catch (Exception)
        {
            // The client went away or the server is stopping: either way the session is over.
        }
    }

    private static X509Certificate2 CreateSelfSignedCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=primary.test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
    }

    private sealed class Session(FakePrimary server, Stream stream)
    {
        private readonly byte[] _buffer = new byte[8192];
        private Stream _stream = stream;
        private readonly StringBuilder _held = new();
        private int _start;
        private int _end;
        private bool _secure;
        private string? _helo;
        private string? _mailFrom;
        private Dictionary<string, string> _mailParameters = new(StringComparer.OrdinalIgnoreCase);
        private readonly List<FakeRecipient> _recipients = [];

        public async Task RunAsync(CancellationToken cancellationToken)
        {
            await WriteAsync(server.Greeting, cancellationToken).ConfigureAwait(false);
            if (server.Greeting.Code is < 200 or >= 300)
            {
                return;
            }

            while (true)
            {
                // Bytes already read before the last reply was written were sent without waiting for it.
                var pipelined = _start < _end;
                var raw = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
                if (raw is null)
                {
                    return;
                }

                if (pipelined)
                {
                    Interlocked.Increment(ref server._pipelined);
                }

                var line = Encoding.UTF8.GetString(raw).TrimEnd('\r', '\n');
                server._commands.Enqueue(line);
                var verb = (line.Length >= 4 ? line[..4] : line).ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO":
                        _helo = line[4..].Trim();
                        await WriteEhloAsync(cancellationToken).ConfigureAwait(false);
                        break;
                    case "HELO":
                        _helo = line[4..].Trim();
                        await WriteAsync(new FakeReply(250, server.ServerName), cancellationToken).ConfigureAwait(false);
                        break;
                    case "MAIL":
                        await MailAsync(line, cancellationToken).ConfigureAwait(false);
                        break;
                    case "RCPT":
                        await RcptAsync(line, cancellationToken).ConfigureAwait(false);
                        break;
                    case "DATA":
                        if (!await DataAsync(cancellationToken).ConfigureAwait(false))
                        {
                            return;
                        }

                        break;
                    case "RSET":
                        Reset();
                        await WriteAsync(new FakeReply(250, "2.0.0 OK"), cancellationToken).ConfigureAwait(false);
                        break;
                    case "NOOP":
                        await WriteAsync(new FakeReply(250, "2.0.0 OK"), cancellationToken).ConfigureAwait(false);
                        break;
                    case "QUIT":
                        await WriteAsync(new FakeReply(221, "2.0.0 Bye"), cancellationToken).ConfigureAwait(false);
                        return;
                    case "STAR" when line.Equals("STARTTLS", StringComparison.OrdinalIgnoreCase) && server.OfferStartTls && !_secure:
                        await WriteAsync(new FakeReply(220, "2.0.0 Ready to start TLS"), cancellationToken).ConfigureAwait(false);
                        if (server.BreakTlsHandshake)
                        {
                            return;
                        }

                        var ssl = new SslStream(_stream, leaveInnerStreamOpen: false);
                        await ssl.AuthenticateAsServerAsync(server._certificate.Value).ConfigureAwait(false);
                        _stream = ssl;
                        _secure = true;
                        _start = _end = 0;
                        _helo = null;
                        Reset();
                        break;
                    default:
                        await WriteAsync(new FakeReply(502, "5.5.2 Command not recognized"), cancellationToken).ConfigureAwait(false);
                        break;
                }
            }
        }

        private void Reset()
        {
            _mailFrom = null;
            _mailParameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            _recipients.Clear();
        }

        private Task WriteEhloAsync(CancellationToken cancellationToken)
        {
            var lines = new List<string> { server.ServerName };
            if (server.AdvertisePipelining)
            {
                lines.Add("PIPELINING");
            }

            if (server.AdvertiseSize)
            {
                lines.Add("SIZE 104857600");
            }

            if (server.Advertise8BitMime)
            {
                lines.Add("8BITMIME");
            }

            if (server.AdvertiseDsn)
            {
                lines.Add("DSN");
            }

            if (server.AdvertiseSmtpUtf8)
            {
                lines.Add("SMTPUTF8");
            }

            if (server.OfferStartTls && !_secure)
            {
                lines.Add("STARTTLS");
            }

            lines.Add("ENHANCEDSTATUSCODES");
            var text = new StringBuilder();
            for (var i = 0; i < lines.Count; i++)
            {
                text.Append("250").Append(i == lines.Count - 1 ? ' ' : '-').Append(lines[i]).Append("\r\n");
            }

            return WriteRawAsync(text.ToString(), cancellationToken);
        }

        private async Task MailAsync(string line, CancellationToken cancellationToken)
        {
            if (!TryParsePath(line, "MAIL FROM:", out var address, out var parameters))
            {
                await WriteAsync(new FakeReply(501, "5.5.4 Syntax error"), cancellationToken).ConfigureAwait(false);
                return;
            }

            Reset();
            var reply = server.MailFromReply;
            if (reply.Code is >= 200 and < 300)
            {
                _mailFrom = address;
                _mailParameters = parameters;
            }

            await WriteEnvelopeReplyAsync(reply, cancellationToken).ConfigureAwait(false);
        }

        private async Task RcptAsync(string line, CancellationToken cancellationToken)
        {
            if (_mailFrom is null)
            {
                await WriteAsync(new FakeReply(503, "5.5.1 Need MAIL first"), cancellationToken).ConfigureAwait(false);
                return;
            }

            if (!TryParsePath(line, "RCPT TO:", out var address, out var parameters))
            {
                await WriteAsync(new FakeReply(501, "5.5.4 Syntax error"), cancellationToken).ConfigureAwait(false);
                return;
            }

            var reply = server._recipientReplies.GetValueOrDefault(address) ?? server.DefaultRecipientReply;
            if (server.MaxRecipientsPerTransaction is { } max && _recipients.Count(r => r.Reply.Code is >= 200 and < 300) >= max)
            {
                reply = new FakeReply(452, "4.5.3 Error: too many recipients");
            }

            _recipients.Add(new FakeRecipient(address, parameters, reply));
            await WriteEnvelopeReplyAsync(reply, cancellationToken).ConfigureAwait(false);
        }

        /// <returns>False when the session must end (the scripted drop).</returns>
        private async Task<bool> DataAsync(CancellationToken cancellationToken)
        {
            var noRecipients = !_recipients.Any(r => r.Reply.Code is >= 200 and < 300);
            if (_mailFrom is null || (noRecipients && !server.AcceptDataWithoutRecipients))
            {
                await WriteAsync(new FakeReply(554, "5.5.1 No valid recipients"), cancellationToken).ConfigureAwait(false);
                return true;
            }

            await WriteAsync(new FakeReply(354, "End data with <CR><LF>.<CR><LF>"), cancellationToken).ConfigureAwait(false);
            using var data = new MemoryStream();
            var previousEndedWithCrLf = true;
            while (true)
            {
                var raw = await ReadLineAsync(cancellationToken).ConfigureAwait(false) ?? throw new IOException("Connection closed during DATA.");
                if (previousEndedWithCrLf && raw is [(byte)'.', (byte)'\r', (byte)'\n'])
                {
                    break;
                }

                // RFC 5321 §4.5.2: a leading dot was doubled by the client.
                var offset = raw.Length > 0 && raw[0] == (byte)'.' ? 1 : 0;
                data.Write(raw, offset, raw.Length - offset);
                previousEndedWithCrLf = raw.Length >= 2 && raw[^2] == (byte)'\r' && raw[^1] == (byte)'\n';
            }

            if (noRecipients)
            {
                await WriteAsync(new FakeReply(554, "5.5.1 No valid recipients"), cancellationToken).ConfigureAwait(false);
                Reset();
                return true;
            }

            server._messages.Enqueue(new FakeTransaction(_helo, _mailFrom, _mailParameters, _recipients.ToList(), data.ToArray(), _secure));
            server._arrived.Release();
            if (server.DropAfterData)
            {
                Interlocked.Increment(ref server._unconfirmed);
                return false;
            }

            try
            {
                await WriteAsync(server.DataReply, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Stopped or cut off between keeping the body and replying: the sender cannot know.
                Interlocked.Increment(ref server._unconfirmed);
                throw;
            }

            Reset();
            return true;
        }

        private static bool TryParsePath(string line, string prefix, out string address, out Dictionary<string, string> parameters)
        {
            address = string.Empty;
            parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            if (!line.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }

            var rest = line[prefix.Length..].TrimStart();
            if (!rest.StartsWith('<'))
            {
                return false;
            }

            var close = rest.IndexOf('>');
            if (close < 0)
            {
                return false;
            }

            address = rest[1..close];
            foreach (var parameter in rest[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = parameter.IndexOf('=');
                parameters[eq < 0 ? parameter : parameter[..eq]] = eq < 0 ? string.Empty : parameter[(eq + 1)..];
            }

            return true;
        }

        private Task WriteAsync(FakeReply reply, CancellationToken cancellationToken) =>
            WriteRawAsync($"{reply.Code} {reply.Text}\r\n", cancellationToken);

        private Task WriteEnvelopeReplyAsync(FakeReply reply, CancellationToken cancellationToken)
        {
            if (!server.HoldEnvelopeReplies)
            {
                return WriteAsync(reply, cancellationToken);
            }

            _held.Append(reply.Code).Append(' ').Append(reply.Text).Append("\r\n");
            return Task.CompletedTask;
        }

        private async Task WriteRawAsync(string text, CancellationToken cancellationToken)
        {
            // Held envelope replies go first, in order.
            text = _held + text;
            _held.Clear();
            await _stream.WriteAsync(Encoding.ASCII.GetBytes(text), cancellationToken).ConfigureAwait(false);
            await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        /// <summary>Reads one line up to and including its LF, as raw bytes; null at end of stream.</summary>
        private async Task<byte[]?> ReadLineAsync(CancellationToken cancellationToken)
        {
            using var line = new MemoryStream();
            while (true)
            {
                if (_start == _end)
                {
                    _start = 0;
                    _end = await _stream.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
                    if (_end == 0)
                    {
                        return line.Length > 0 ? line.ToArray() : null;
                    }
                }

                var lf = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                if (lf >= 0)
                {
                    line.Write(_buffer, _start, lf + 1 - _start);
                    _start = lf + 1;
                    return line.ToArray();
                }

                line.Write(_buffer, _start, _end - _start);
                _start = _end;
            }
        }
    }
}
