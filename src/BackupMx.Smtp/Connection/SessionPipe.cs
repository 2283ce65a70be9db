using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using BackupMx.Smtp.Tls;
using SmtpServer.IO;

namespace BackupMx.Smtp.Connection;

/// <summary>
/// One accepted connection: our <see cref="SessionInput"/> over the socket, our <see cref="ReplyWriter"/>, and
/// the STARTTLS upgrade. SmtpServer reads <see cref="Input"/> and <see cref="Output"/> afresh for
/// every command, so swapping them on upgrade is enough.
/// </summary>
internal sealed class SessionPipe : ISecurableDuplexPipe
{
    // The socket is owned here; readers and writers come and go (STARTTLS) without closing it.
    private static readonly StreamPipeReaderOptions ReaderOptions = new(leaveOpen: true);
    private static readonly StreamPipeWriterOptions WriterOptions = new(leaveOpen: true);

    private readonly TcpClient _client;
    private readonly NetworkStream _network;
    private readonly Action _onDispose;
    private readonly ServerCertificate? _certificate;
    private readonly SessionTimeouts _timeouts;
    private volatile ReplyWriter _output;
    private SslStream? _tls;
    private volatile byte[]? _shutdownReply;
    private int _disposed;

    public SessionPipe(TcpClient client, InputLimits limits, Action onDispose)
    {
        _client = client;
        _network = client.GetStream();
        _onDispose = onDispose;
        _certificate = limits.Tls;
        _timeouts = limits.Timeouts ?? SessionTimeouts.Default;
        SessionInput = new SessionInput(PipeReader.Create(_network, ReaderOptions), limits, WriteReplyAsync, reply => BeginShutdown(Encoding.ASCII.GetBytes(reply + "\r\n")));
        _output = new ReplyWriter(PipeWriter.Create(_network, WriterOptions), () => SessionInput.LastCommandHead, _timeouts);
    }

    public SessionInput SessionInput { get; }

    public PipeReader Input => SessionInput;

    public PipeWriter Output => _output;

    public bool IsSecure => _tls is not null;

    public SslProtocols SslProtocol => _tls?.SslProtocol ?? SslProtocols.None;

    /// <summary>The handshake after "220 Ready to start TLS". TLS 1.2 or newer only, no client certificate asked for.</summary>
    public async Task UpgradeAsync(X509Certificate certificate, SslProtocols protocols, CancellationToken cancellationToken = default)
    {
        var enabled = protocols & (SslProtocols.Tls12 | SslProtocols.Tls13);
        if (enabled == SslProtocols.None)
        {
            enabled = SslProtocols.Tls12 | SslProtocols.Tls13;
        }

        // The certificate current now: a renewed one reaches each new handshake, and an established
        // session keeps the one it was set up with.
        var context = _certificate?.Current;
        var tls = new SslStream(_network, leaveInnerStreamOpen: true);

        // The handshake is the client's next step after STARTTLS: it gets the command timeout.
        using var timer = new CancellationTokenSource(_timeouts.Command, _timeouts.Time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        try
        {
            await tls.AuthenticateAsServerAsync(
                new SslServerAuthenticationOptions
                {
                    // The context carries the intermediates; SmtpServer only knows the leaf.
                    ServerCertificateContext = context,
                    ServerCertificate = context is null ? certificate : null,
                    ClientCertificateRequired = false,
                    EnabledSslProtocols = enabled,
                    CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                    AllowRenegotiation = false,
                },
                linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // A client that stalls the handshake has left as far as the session is concerned.
            await tls.DisposeAsync().ConfigureAwait(false);
            throw new IOException("The TLS handshake timed out.");
        }
        catch
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        _tls = tls;
        SessionInput.Upgrade(PipeReader.Create(tls, ReaderOptions));
        var output = new ReplyWriter(PipeWriter.Create(tls, WriterOptions), () => SessionInput.LastCommandHead, _timeouts);
        _output = output;
        if (_shutdownReply is { } reply)
        {
            output.BeginShutdown(reply);
        }
    }

    /// <summary>
    /// The receiver is cutting this session off: whatever SmtpServer answers from now on becomes
    /// <paramref name="reply"/> (see <see cref="ReplyWriter"/>), which is also sent when the session
    /// ends without answering. Called before SmtpServer cancels the session.
    /// </summary>
    public void BeginShutdown(byte[] reply)
    {
        _shutdownReply = reply;
        _output.BeginShutdown(reply);
    }

    /// <summary>Writes one reply line of our own (ETRN, limits) and flushes it.</summary>
    private async ValueTask WriteReplyAsync(string line, CancellationToken cancellationToken)
    {
        var bytes = Encoding.ASCII.GetBytes(line + "\r\n");
        await Output.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            // A body the store never took (the session ended before it ran) goes with the connection.
            SessionInput.TakeBody()?.Dispose();
            if (_shutdownReply is { } reply)
            {
                // Again, in case a STARTTLS upgrade swapped the writer while the cut-off began.
                _output.BeginShutdown(reply);
                _output.EndShutdown();
            }

            _tls?.Dispose();
            _client.Dispose();
        }
        finally
        {
            _onDispose();
        }
    }
}
