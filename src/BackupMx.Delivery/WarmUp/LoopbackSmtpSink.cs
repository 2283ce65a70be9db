using System.Net;
using System.Net.Sockets;
using System.Text;

namespace BackupMx.Delivery.WarmUp;

/// <summary>
/// A one-session SMTP server on 127.0.0.1 that answers like a typical primary (PIPELINING, 8BITMIME,
/// DSN, SMTPUTF8, ENHANCEDSTATUSCODES, SIZE) and discards what it is sent.
/// </summary>
internal sealed class LoopbackSmtpSink : IAsyncDisposable
{
    private const string Name = "warmup.invalid";

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private Task _session = Task.CompletedTask;

    public LoopbackSmtpSink() => _listener.Start(1);

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Messages taken (final dot answered with 250).</summary>
    public int MessagesReceived { get; private set; }

    /// <summary>Serves the next connection in the background.</summary>
    public void Accept(CancellationToken cancellationToken) => _session = ServeAsync(cancellationToken);

    private async Task ServeAsync(CancellationToken cancellationToken)
    {
        using var client = await _listener.AcceptTcpClientAsync(cancellationToken).ConfigureAwait(false);
        await using var stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: false, leaveOpen: true);
        await using var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true) { NewLine = "\r\n", AutoFlush = true };
        await writer.WriteLineAsync($"220 {Name} ESMTP").ConfigureAwait(false);
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            var verb = line.Length >= 4 ? line[..4].ToUpperInvariant() : line.ToUpperInvariant();
            switch (verb)
            {
                case "EHLO":
                    await writer.WriteAsync(
                        $"250-{Name}\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n").ConfigureAwait(false);
                    break;
                case "DATA":
                    await writer.WriteLineAsync("354 End data with <CR><LF>.<CR><LF>").ConfigureAwait(false);
                    while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } data && data != ".")
                    {
                    }

                    MessagesReceived++;
                    await writer.WriteLineAsync("250 2.0.0 Ok: discarded").ConfigureAwait(false);
                    break;
                case "QUIT":
                    await writer.WriteLineAsync("221 2.0.0 Bye").ConfigureAwait(false);
                    return;
                default:
                    // HELO, MAIL, RCPT, RSET, NOOP: a primary that takes everything.
                    await writer.WriteLineAsync("250 2.0.0 Ok").ConfigureAwait(false);
                    break;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        try
        {
            await _session.ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The session's end is of no interest: the sink only exists to be talked to.
        }
    }
}
