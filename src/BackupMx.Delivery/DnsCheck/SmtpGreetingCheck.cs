using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;

namespace BackupMx.Delivery.DnsCheck;

/// <summary>What one SMTP server showed: its greeting, whether it offers STARTTLS, and its certificate's problems.</summary>
public sealed record SmtpGreetingResult(
    bool Greeted,
    string? Failure,
    TimeSpan Elapsed,
    bool OffersStartTls,
    SslPolicyErrors? CertificateErrors,
    string? TlsFailure);

/// <summary>
/// Connects, reads the greeting, says EHLO and, when offered, starts TLS to look at the
/// certificate, then QUIT. Plain sockets rather than the delivery connector: this must report
/// what it saw (an invalid certificate, a refused STARTTLS) rather than fall back or retry.
/// </summary>
public static class SmtpGreetingCheck
{
    public static async Task<SmtpGreetingResult> RunAsync(IPEndPoint endpoint, string serverName, string ourHostName, bool tryTls, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        var ct = cts.Token;
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(endpoint, ct).ConfigureAwait(false);
            Stream stream = new NetworkStream(socket, ownsSocket: false);
            await using (stream.ConfigureAwait(false))
            {
                var (code, _) = await ReadReplyAsync(stream, ct).ConfigureAwait(false);
                var elapsed = stopwatch.Elapsed;
                if (code != 220)
                {
                    return new SmtpGreetingResult(false, $"greeted with {code} instead of 220", elapsed, false, null, null);
                }

                await WriteAsync(stream, $"EHLO {ourHostName}", ct).ConfigureAwait(false);
                var (ehloCode, lines) = await ReadReplyAsync(stream, ct).ConfigureAwait(false);
                if (ehloCode != 250)
                {
                    return new SmtpGreetingResult(true, null, elapsed, false, null, $"EHLO answered {ehloCode}");
                }

                var startTls = lines.Skip(1).Any(l => l.Equals("STARTTLS", StringComparison.OrdinalIgnoreCase));
                if (!startTls || !tryTls)
                {
                    await QuitAsync(stream, ct).ConfigureAwait(false);
                    return new SmtpGreetingResult(true, null, elapsed, startTls, null, null);
                }

                await WriteAsync(stream, "STARTTLS", ct).ConfigureAwait(false);
                var (tlsCode, _) = await ReadReplyAsync(stream, ct).ConfigureAwait(false);
                if (tlsCode != 220)
                {
                    return new SmtpGreetingResult(true, null, elapsed, true, null, $"STARTTLS answered {tlsCode}");
                }

                SslPolicyErrors? errors = null;
                var ssl = new SslStream(stream, leaveInnerStreamOpen: true, (_, _, _, e) =>
                {
                    // Accepted here whatever it is: the finding reports it, and the session ends anyway.
                    errors = e;
                    return true;
                });
                await using (ssl.ConfigureAwait(false))
                {
                    try
                    {
                        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = serverName }, ct).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is AuthenticationException or IOException)
                    {
                        return new SmtpGreetingResult(true, null, elapsed, true, errors, "TLS handshake failed: " + ex.Message);
                    }

                    await QuitAsync(ssl, ct).ConfigureAwait(false);
                    return new SmtpGreetingResult(true, null, elapsed, true, errors, null);
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new SmtpGreetingResult(false, $"no greeting within {timeout.TotalSeconds:0.#} s", stopwatch.Elapsed, false, null, null);
        }
        catch (Exception ex) when (ex is SocketException or IOException or FormatException)
        {
            return new SmtpGreetingResult(false, ex.Message, stopwatch.Elapsed, false, null, null);
        }
    }

    private static async Task QuitAsync(Stream stream, CancellationToken ct)
    {
        try
        {
            await WriteAsync(stream, "QUIT", ct).ConfigureAwait(false);
            await ReadReplyAsync(stream, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or FormatException)
        {
            // Saying goodbye is a courtesy: what was to be seen has been seen.
        }
    }

    private static Task WriteAsync(Stream stream, string line, CancellationToken ct) =>
        stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"), ct).AsTask();

    /// <summary>A reply's code and the text of each of its lines; reads a byte at a time so nothing after the reply is consumed (STARTTLS).</summary>
    private static async Task<(int Code, List<string> Lines)> ReadReplyAsync(Stream stream, CancellationToken ct)
    {
        var lines = new List<string>();
        var one = new byte[1];
        while (true)
        {
            var line = new StringBuilder();
            while (true)
            {
                if (await stream.ReadAsync(one, ct).ConfigureAwait(false) == 0)
                {
                    throw new IOException("the server closed the connection");
                }

                if (one[0] == '\n')
                {
                    break;
                }

                if (line.Length > 2048)
                {
                    throw new FormatException("reply line too long");
                }

                line.Append((char)one[0]);
            }

            var text = line.ToString().TrimEnd('\r');
            if (text.Length < 3 || !int.TryParse(text.AsSpan(0, 3), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code))
            {
                throw new FormatException($"not an SMTP reply: '{text}'");
            }

            lines.Add(text.Length > 4 ? text[4..] : string.Empty);
            if (text.Length == 3 || text[3] != '-')
            {
                return (code, lines);
            }
        }
    }
}
