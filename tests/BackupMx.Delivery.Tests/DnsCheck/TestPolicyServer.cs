using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using BackupMx.Delivery.DnsCheck;
using BackupMx.Testing;

namespace BackupMx.Delivery.Tests.DnsCheck;

/// <summary>
/// An HTTPS server on loopback that answers every request with the status, content type and body
/// a test sets, over TLS with a certificate for <see cref="ServedName"/>; it records the paths
/// requested. Minimal HTTP/1.1 (one request per connection), so the answer is exactly what is set.
/// </summary>
internal sealed class TestPolicyServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly List<string> _requests = [];

    public TestPolicyServer(string servedName)
    {
        ServedName = servedName;
        Certificate = TestCertificates.Create(servedName);
        _listener = new TcpListener(IPAddress.Loopback, FreePort.Next());
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    public string ServedName { get; }

    public X509Certificate2 Certificate { get; }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public int Status { get; set; } = 200;

    public string ContentType { get; set; } = "text/plain";

    public string Body { get; set; } = string.Empty;

    public string? Location { get; set; }

    public IReadOnlyList<string> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>
    /// A fetcher whose connections all reach this server, which trusts this server's certificate
    /// as a root (the host name is still checked), as a sender trusts a public CA.
    /// </summary>
    public MtaStsPolicyFetcher Fetcher(TimeSpan? timeout = null)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Port), ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
            SslOptions = new SslClientAuthenticationOptions
            {
                CertificateChainPolicy = new X509ChainPolicy
                {
                    TrustMode = X509ChainTrustMode.CustomRootTrust,
                    CustomTrustStore = { X509CertificateLoader.LoadCertificate(Certificate.RawData) },
                    RevocationMode = X509RevocationMode.NoCheck,
                },
            },
        };
        return new MtaStsPolicyFetcher(handler, timeout ?? TimeSpan.FromSeconds(10));
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _loop;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
        Certificate.Dispose();
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            _ = Task.Run(() => HandleAsync(client));
        }
    }

    private async Task HandleAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                await using var ssl = new SslStream(client.GetStream());
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = Certificate }, _stop.Token);
                var head = new StringBuilder();
                var buffer = new byte[1];
                while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && await ssl.ReadAsync(buffer, _stop.Token) == 1)
                {
                    head.Append((char)buffer[0]);
                }

                lock (_requests)
                {
                    _requests.Add(head.ToString().Split(' ')[1]);
                }

                var body = Encoding.UTF8.GetBytes(Body);
                var response = $"HTTP/1.1 {Status} X\r\nContent-Type: {ContentType}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n" +
                    (Location is null ? string.Empty : $"Location: {Location}\r\n") + "\r\n";
                await ssl.WriteAsync(Encoding.ASCII.GetBytes(response), _stop.Token);
                await ssl.WriteAsync(body, _stop.Token);
                await ssl.FlushAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException or OperationCanceledException)
            {
                // A client that refused the certificate hangs up during the handshake.
            }
        }
    }
}

internal static class TestCertificates
{
    /// <summary>A self-signed certificate with <paramref name="dnsName"/> as its only name, with its key.</summary>
    public static X509Certificate2 Create(string dnsName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + dnsName, key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(dnsName);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, false));
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
    }
}
