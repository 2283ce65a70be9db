using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Delivery.Routing;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Delivery.Smtp;

/// <summary>One address of one host of a route.</summary>
internal sealed record SmtpEndpoint(string Host, IPAddress Address, int Port);

/// <summary>Why a connection could not be made, as the reply every recipient gets.</summary>
internal sealed record ConnectFailure(SmtpReply Reply, bool ReachedServer);

/// <summary>
/// Turns a route into addresses and opens SMTP sessions: our own socket per
/// address (so every address of a host is tried, and the certificate is still
/// checked against the host name), EHLO with our name, and opportunistic STARTTLS
/// that falls back to plain text when the handshake or certificate fails.
/// </summary>
internal sealed partial class SmtpConnector(IDnsResolver dns, IOptions<BackupMxOptions> options, ILogger<SmtpConnector> logger)
{
    /// <summary>RFC 5321 §5.1 asks for at least two; more than a handful only delays the retry.</summary>
    public const int MaxAddresses = 6;

    public async IAsyncEnumerable<SmtpEndpoint> EndpointsAsync(IReadOnlyList<HostPort> hosts, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var count = 0;
        foreach (var host in hosts)
        {
            var addresses = IPAddress.TryParse(host.Host, out var literal)
                ? [literal]
                : await dns.LookupAddressesAsync(host.Host, cancellationToken).ConfigureAwait(false);
            if (addresses.Count == 0)
            {
                LogNoAddress(logger, host.Host);
            }

            foreach (var address in addresses)
            {
                yield return new SmtpEndpoint(host.Host, address, host.Port);
                if (++count >= MaxAddresses)
                {
                    yield break;
                }
            }
        }
    }

    /// <summary>Connects and greets; returns the connected client, or the failure (the client is then disposed).</summary>
    public async Task<(T? Client, ConnectFailure? Failure)> ConnectAsync<T>(Func<ProtocolWatcher, T> create, SmtpEndpoint endpoint, DeliveryTlsMode tls, CancellationToken cancellationToken)
        where T : SmtpClient
    {
        var (client, failure, tlsFailed) = await TryConnectAsync(create, endpoint, tls == DeliveryTlsMode.Opportunistic, cancellationToken).ConfigureAwait(false);
        if (tlsFailed && tls == DeliveryTlsMode.Opportunistic)
        {
            // Opportunistic TLS protects against passive listeners only; a primary with a
            // broken certificate still gets its mail, in plain text, rather than none.
            LogTlsFallback(logger, endpoint.Host, endpoint.Address, failure?.Reply.Text);
            (client, failure, _) = await TryConnectAsync(create, endpoint, useTls: false, cancellationToken).ConfigureAwait(false);
        }

        return (client, failure);
    }

    private async Task<(T? Client, ConnectFailure? Failure, bool TlsFailed)> TryConnectAsync<T>(Func<ProtocolWatcher, T> create, SmtpEndpoint endpoint, bool useTls, CancellationToken cancellationToken)
        where T : SmtpClient
    {
        var config = options.Value;
        var watcher = new ProtocolWatcher();
        var client = create(watcher);
        client.LocalDomain = config.HostName;
        client.Timeout = (int)Math.Clamp(config.Delivery.Timeout.TotalMilliseconds, 1, int.MaxValue);

        // Revocation lists are fetched over the network and can stall delivery for minutes.
        client.CheckCertificateRevocation = false;
        var socket = new Socket(endpoint.Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeout.CancelAfter(config.Delivery.Timeout);
                await socket.ConnectAsync(endpoint.Address, endpoint.Port, timeout.Token).ConfigureAwait(false);
            }

            await client.ConnectAsync(socket, endpoint.Host, endpoint.Port, useTls ? SecureSocketOptions.StartTlsWhenAvailable : SecureSocketOptions.None, cancellationToken).ConfigureAwait(false);
            return (client, null, false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            client.Dispose();
            throw;
        }
        catch (Exception ex)
        {
            socket.Dispose();
            client.Dispose();
            var tlsFailed = ex is SslHandshakeException || (watcher.StartTlsSent && !client.IsSecure);
            var failure = Describe(ex, watcher, endpoint);
            LogConnectFailed(logger, endpoint.Host, endpoint.Address, endpoint.Port, failure.Reply.ToString(), ex.GetType().Name);
            return (null, failure, tlsFailed);
        }
    }

    private static ConnectFailure Describe(Exception ex, ProtocolWatcher watcher, SmtpEndpoint endpoint)
    {
        if (watcher.ServerSpoke && watcher.GreetingCode != 220)
        {
            // A 421 or 554 greeting: the server is there but will not talk now. Keep the mail.
            return new ConnectFailure(SmtpReply.LocalTransient("4.4.2", $"{endpoint.Host} refused the session: {watcher.GreetingCode} {watcher.GreetingText}"), true);
        }

        var text = ex switch
        {
            SocketException { SocketErrorCode: SocketError.ConnectionRefused } => "connection refused",
            SocketException socket => $"connection failed ({socket.SocketErrorCode})",
            OperationCanceledException or TimeoutException => "connection timed out",
            SslHandshakeException => "TLS handshake failed",
            SmtpCommandException command => $"unexpected reply {(int)command.StatusCode}",
            SmtpProtocolException => "SMTP protocol error",
            _ => "connection failed",
        };
        return new ConnectFailure(SmtpReply.LocalTransient(watcher.ServerSpoke ? "4.4.2" : "4.4.1", $"{endpoint.Host}: {text}"), watcher.ServerSpoke);
    }

    [LoggerMessage(EventId = 310, Level = LogLevel.Warning, Message = "{Host} has no address")]
    private static partial void LogNoAddress(ILogger logger, string host);

    [LoggerMessage(EventId = 311, Level = LogLevel.Information, Message = "Could not open a session with {Host} [{Address}]:{Port}: {Reply} ({ExceptionType})")]
    private static partial void LogConnectFailed(ILogger logger, string host, IPAddress address, int port, string reply, string exceptionType);

    [LoggerMessage(EventId = 312, Level = LogLevel.Warning, Message = "STARTTLS with {Host} [{Address}] failed ({Reason}); retrying without TLS")]
    private static partial void LogTlsFallback(ILogger logger, string host, IPAddress address, string? reason);
}
