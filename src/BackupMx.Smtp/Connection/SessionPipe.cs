using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using SmtpServer.IO;

namespace BackupMx.Smtp.Connection;

/// <summary>One accepted connection: our <see cref="SessionInput"/> over the socket, and SmtpServer's usual writer.</summary>
internal sealed class SessionPipe : ISecurableDuplexPipe
{
    private readonly TcpClient _client;
    private readonly Stream _stream;
    private readonly Action _onDispose;
    private int _disposed;

    public SessionPipe(TcpClient client, long maxContentBytes, Action onDispose)
    {
        _client = client;
        _stream = client.GetStream();
        _onDispose = onDispose;
        SessionInput = new SessionInput(PipeReader.Create(_stream), maxContentBytes);
        Output = PipeWriter.Create(_stream);
    }

    public SessionInput SessionInput { get; }

    public PipeReader Input => SessionInput;

    public PipeWriter Output { get; }

    public bool IsSecure => _stream is SslStream;

    public SslProtocols SslProtocol => (_stream as SslStream)?.SslProtocol ?? SslProtocols.None;

    // STARTTLS is neither advertised nor accepted (no certificate setting exists yet), so SmtpServer never calls this.
    public Task UpgradeAsync(X509Certificate certificate, SslProtocols protocols, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("TLS is not configured for the BackupMx receiver.");

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            _client.Dispose();
        }
        finally
        {
            _onDispose();
        }
    }
}
