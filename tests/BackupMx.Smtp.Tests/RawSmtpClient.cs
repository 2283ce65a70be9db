using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;

namespace BackupMx.Smtp.Tests;

/// <summary>A byte-exact SMTP client: sends exactly what the test says and reads replies line by line.</summary>
internal sealed class RawSmtpClient : IAsyncDisposable
{
    // Only a server that never answers waits this out; a busy CI machine must not look like one.
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(30);
    private readonly TcpClient _client;
    private Stream _stream;
    private StreamReader _reader;

    private RawSmtpClient(TcpClient client)
    {
        _client = client;
        _stream = client.GetStream();
        _reader = new StreamReader(_stream, Encoding.Latin1);
    }

    public SslProtocols? TlsProtocol => (_stream as SslStream)?.SslProtocol;

    /// <summary>
    /// The TLS handshake, after the server said 220 to STARTTLS. Anything the server sent in plain
    /// text after that reply and that the reader already buffered is dropped, as a real client would.
    /// </summary>
    public async Task UpgradeToTlsAsync(SslProtocols protocols = SslProtocols.None)
    {
        var tls = new SslStream(_client.GetStream(), leaveInnerStreamOpen: true, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "mx.backup.test",
            EnabledSslProtocols = protocols,
        });
        _stream = tls;
        _reader = new StreamReader(tls, Encoding.Latin1);
    }

    /// <param name="receiveBufferSize">A small one makes the server's writes block sooner when nothing is read.</param>
    public static async Task<RawSmtpClient> ConnectAsync(int port, bool readGreeting = true, int? receiveBufferSize = null, string host = "127.0.0.1")
    {
        // Each write its own segment, so tests decide where the server's reads can split a line.
        var client = new TcpClient(host.Contains(':', StringComparison.Ordinal) ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork) { NoDelay = true };
        if (receiveBufferSize is { } size)
        {
            client.ReceiveBufferSize = size;
        }

        await client.ConnectAsync(host, port);
        var raw = new RawSmtpClient(client);
        if (readGreeting)
        {
            var greeting = await raw.ReadReplyAsync();
            Assert.StartsWith("220 ", greeting);
        }

        return raw;
    }

    public Task SendRawAsync(string text) => SendRawAsync(Encoding.Latin1.GetBytes(text));

    public async Task SendRawAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    /// <summary>Sends one command line and returns its whole (possibly multi-line) reply.</summary>
    public async Task<string> CommandAsync(string line)
    {
        await SendRawAsync(line + "\r\n");
        return await ReadReplyAsync();
    }

    /// <summary>Sends one command line and returns its reply, or null when the server closed instead.</summary>
    public async Task<string?> TryReadReplyAfterAsync(string line)
    {
        await SendRawAsync(line + "\r\n");
        return await TryReadReplyAsync();
    }

    /// <summary>Reads one reply; multi-line replies are joined with '\n'. Null when the connection closed.</summary>
    public async Task<string?> TryReadReplyAsync()
    {
        using var cts = new CancellationTokenSource(ReplyTimeout);
        var lines = new List<string>();
        while (true)
        {
            var line = await _reader.ReadLineAsync(cts.Token);
            if (line is null)
            {
                return lines.Count == 0 ? null : string.Join('\n', lines);
            }

            lines.Add(line);
            if (line.Length < 4 || line[3] != '-')
            {
                return string.Join('\n', lines);
            }
        }
    }

    /// <summary>Everything the server still sends until it closes the connection.</summary>
    public async Task<string> ReadToEndAsync()
    {
        using var cts = new CancellationTokenSource(ReplyTimeout);
        return await _reader.ReadToEndAsync(cts.Token);
    }

    public async Task<string> ReadReplyAsync() =>
        await TryReadReplyAsync() ?? throw new IOException("The server closed the connection.");

    /// <summary>EHLO, MAIL and one RCPT, each expected to succeed.</summary>
    public async Task BeginAsync(string from = "sender@remote.test", string to = "user@example.test", string mailParameters = "", string rcptParameters = "")
    {
        Assert.StartsWith("250", await CommandAsync("EHLO client.test"));
        Assert.StartsWith("250", await CommandAsync($"MAIL FROM:<{from}>{mailParameters}"));
        Assert.StartsWith("250", await CommandAsync($"RCPT TO:<{to}>{rcptParameters}"));
    }

    /// <summary>DATA, the given bytes verbatim, then the reply that follows them.</summary>
    public async Task<string> DataAsync(string rawBodyWithTerminator)
    {
        Assert.StartsWith("354", await CommandAsync("DATA"));
        await SendRawAsync(rawBodyWithTerminator);
        return await ReadReplyAsync();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _client.Dispose();
        }
        catch (ObjectDisposedException)
        {
        }

        await Task.CompletedTask;
    }
}
