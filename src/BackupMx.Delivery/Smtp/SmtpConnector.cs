using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
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
/// <param name="Loop">The endpoint is this server itself: a configuration error, reported as 4.4.6 unless another host of the route takes the mail.</param>
/// <param name="Busy">A 421 greeting or "too many connections": the server's connection limit, not an outage.</param>
internal sealed record ConnectFailure(SmtpReply Reply, bool ReachedServer, bool Loop = false, bool Busy = false);

/// <summary>
/// Turns a route into addresses and opens SMTP sessions: our own socket per
/// address (so every address of a host is tried, and the certificate is still
/// checked against the host name), EHLO with our name, and STARTTLS as the
/// destination's <see cref="DeliveryTls"/> says: opportunistic (any certificate,
/// plain text when the handshake fails), required (TLS 1.2+ or a 4.7.x deferral,
/// never plain text) or disabled. A session that turns out to be with ourselves
/// (our listener's address and port, or our name in the greeting or EHLO reply)
/// is closed before MAIL and reported as a loop.
/// </summary>
internal sealed partial class SmtpConnector(IDnsResolver dns, LocalEndpoints self, IOptions<BackupMxOptions> options, ILogger<SmtpConnector> logger)
{
    /// <summary>RFC 5321 §5.1 asks for at least two; more than a handful only delays the retry.</summary>
    public const int MaxAddresses = 6;

    /// <summary>TLS 1.0 and 1.1 are deprecated (RFC 8996).</summary>
    public const SslProtocols Protocols = SslProtocols.Tls12 | SslProtocols.Tls13;

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

    /// <summary>Connects and greets with Delivery:Timeout; returns the connected client, or the failure (the client is then disposed).</summary>
    public Task<(T? Client, ConnectFailure? Failure)> ConnectAsync<T>(Func<ProtocolWatcher, T> create, SmtpEndpoint endpoint, DeliveryTls tls, CancellationToken cancellationToken)
        where T : SmtpClient =>
        ConnectAsync(create, endpoint, tls, options.Value.Delivery.Timeout, cancellationToken);

    /// <summary>Connects and greets; returns the connected client, or the failure (the client is then disposed).</summary>
    /// <param name="timeout">For the TCP connect and for each reply, for as long as the client is used (MailKit's Timeout).</param>
    public async Task<(T? Client, ConnectFailure? Failure)> ConnectAsync<T>(Func<ProtocolWatcher, T> create, SmtpEndpoint endpoint, DeliveryTls tls, TimeSpan timeout, CancellationToken cancellationToken)
        where T : SmtpClient
    {
        if (self.IsOwnListener(endpoint.Address, endpoint.Port))
        {
            return (null, Loop(endpoint, "the address and port are our own listener"));
        }

        var (client, failure, tlsFailed) = await TryConnectAsync(create, endpoint, tls, tls.Mode, timeout, cancellationToken).ConfigureAwait(false);
        if (tlsFailed && tls.Mode == DeliveryTlsMode.Opportunistic)
        {
            // Opportunistic TLS protects against passive listeners only; a primary whose handshake
            // fails (or whose certificate fails a check that was asked for) still gets its mail,
            // in plain text, rather than none.
            LogTlsFallback(logger, endpoint.Host, endpoint.Address, failure?.Reply.Text);
            (client, failure, _) = await TryConnectAsync(create, endpoint, tls, DeliveryTlsMode.Disabled, timeout, cancellationToken).ConfigureAwait(false);
        }

        return (client, failure);
    }

    private async Task<(T? Client, ConnectFailure? Failure, bool TlsFailed)> TryConnectAsync<T>(Func<ProtocolWatcher, T> create, SmtpEndpoint endpoint, DeliveryTls tls, DeliveryTlsMode mode, TimeSpan timeout, CancellationToken cancellationToken)
        where T : SmtpClient
    {
        var config = options.Value;
        var watcher = new ProtocolWatcher();
        var client = create(watcher);
        client.LocalDomain = config.HostName;
        client.Timeout = (int)Math.Clamp(timeout.TotalMilliseconds, 1, int.MaxValue);
        client.SslProtocols = Protocols;

        // Revocation lists are fetched over the network and can stall delivery for minutes.
        client.CheckCertificateRevocation = false;
        SslPolicyErrors certificateErrors = SslPolicyErrors.None;
        client.ServerCertificateValidationCallback = (_, _, _, errors) =>
        {
            certificateErrors = errors;

            // Unvalidated: an encrypted session with an unknown peer still beats plain text (RFC 7435 §3).
            // Validated: chain and host name (SslStream checks the name MailKit connected with).
            return !tls.ValidateCertificate || errors == SslPolicyErrors.None;
        };

        // No Nagle: the end of a message (the last bytes of the body, then ".") is a small write
        // that Nagle holds until the primary acknowledges the previous one, and with its delayed
        // ACK that cost ~40 ms per message on an idle machine.
        var socket = new Socket(endpoint.Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var connected = false;
        try
        {
            using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                connectTimeout.CancelAfter(timeout);
                await socket.ConnectAsync(endpoint.Address, endpoint.Port, connectTimeout.Token).ConfigureAwait(false);
            }

            connected = true;

            var secure = mode switch
            {
                DeliveryTlsMode.Required => SecureSocketOptions.StartTls,
                DeliveryTlsMode.Opportunistic => SecureSocketOptions.StartTlsWhenAvailable,
                _ => SecureSocketOptions.None,
            };
            await client.ConnectAsync(socket, endpoint.Host, endpoint.Port, secure, cancellationToken).ConfigureAwait(false);
            if (self.IsOwnName(watcher.GreetingName) || self.IsOwnName(watcher.EhloName))
            {
                await QuitQuietlyAsync(client).ConfigureAwait(false);
                client.Dispose();
                return (null, Loop(endpoint, $"it greets as {watcher.EhloName ?? watcher.GreetingName}, our own name"), false);
            }

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
            var failure = mode == DeliveryTlsMode.Required && (tlsFailed || ex is NotSupportedException) && watcher.GreetingCode == 220
                ? TlsRequiredFailure(ex, endpoint, certificateErrors)
                : Describe(ex, watcher, endpoint, connected, timeout);
            LogConnectFailed(logger, endpoint.Host, endpoint.Address, endpoint.Port, failure.Reply.ToString(), ex.GetType().Name);
            return (null, failure, tlsFailed);
        }
    }

    private ConnectFailure Loop(SmtpEndpoint endpoint, string reason)
    {
        LogLoop(logger, endpoint.Host, endpoint.Address, endpoint.Port, reason);
        return new ConnectFailure(SmtpReply.LocalTransient("4.4.6", $"mail loops back to myself ({endpoint.Host} is this server)"), ReachedServer: false, Loop: true);
    }

    private static ConnectFailure TlsRequiredFailure(Exception ex, SmtpEndpoint endpoint, SslPolicyErrors certificateErrors)
    {
        // Postfix's codes for the same conditions: 4.7.4 not offered, 4.7.5 not verified or failed.
        var reply = ex is NotSupportedException
            ? SmtpReply.LocalTransient("4.7.4", $"TLS is required, but {endpoint.Host} does not offer STARTTLS")
            : certificateErrors != SslPolicyErrors.None
                ? SmtpReply.LocalTransient("4.7.5", $"TLS is required, but the certificate of {endpoint.Host} was not verified ({certificateErrors})")
                : SmtpReply.LocalTransient("4.7.5", $"TLS is required, but the TLS handshake with {endpoint.Host} failed");
        return new ConnectFailure(reply, ReachedServer: true);
    }

    private static async Task QuitQuietlyAsync(SmtpClient client)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await client.DisconnectAsync(quit: true, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Leaving is all that matters.
        }
    }

    private static ConnectFailure Describe(Exception ex, ProtocolWatcher watcher, SmtpEndpoint endpoint, bool connected, TimeSpan timeout)
    {
        if (watcher.ServerSpoke && watcher.GreetingCode != 220)
        {
            // A 421 or 554 greeting: the server is there but will not talk now. Keep the mail. Not
            // "reached": the prober calls such a primary down too, and if delivery called it up, every
            // attempt would flip the monitor to up and flush the domain, defeating the retry schedule.
            var busy = watcher.GreetingCode == 421 || (watcher.GreetingText?.Contains("too many connections", StringComparison.OrdinalIgnoreCase) ?? false);
            return new ConnectFailure(SmtpReply.LocalTransient("4.4.2", $"{endpoint.Host} refused the session: {watcher.GreetingCode} {watcher.GreetingText}"), false, Busy: busy);
        }

        var text = ex switch
        {
            SocketException { SocketErrorCode: SocketError.ConnectionRefused } => "connection refused",
            SocketException socket => $"connection failed ({socket.SocketErrorCode})",
            // Which step timed out tells an operator more than "timed out": a primary that accepts
            // TCP but never greets is starting up or behind a load balancer without a backend.
            OperationCanceledException or TimeoutException when !connected => $"no connection within {Seconds(timeout)}",
            OperationCanceledException or TimeoutException when !watcher.ServerSpoke => $"no greeting within {Seconds(timeout)}",
            OperationCanceledException or TimeoutException => $"no reply within {Seconds(timeout)}",
            SslHandshakeException => "TLS handshake failed",
            SmtpCommandException command => $"unexpected reply {(int)command.StatusCode}",
            SmtpProtocolException => "SMTP protocol error",
            _ => "connection failed",
        };
        return new ConnectFailure(SmtpReply.LocalTransient(watcher.ServerSpoke ? "4.4.2" : "4.4.1", $"{endpoint.Host}: {text}"), watcher.ServerSpoke);
    }

    private static string Seconds(TimeSpan timeout) =>
        $"{timeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s";

    [LoggerMessage(EventId = 3310, Level = LogLevel.Warning, Message = "{Host} has no address")]
    private static partial void LogNoAddress(ILogger logger, string host);

    [LoggerMessage(EventId = 3311, Level = LogLevel.Information, Message = "Could not open a session with {Host} [{Address}]:{Port}: {Reply} ({ExceptionType})")]
    private static partial void LogConnectFailed(ILogger logger, string host, IPAddress address, int port, string reply, string exceptionType);

    [LoggerMessage(EventId = 3312, Level = LogLevel.Warning, Message = "STARTTLS with {Host} [{Address}] failed ({Reason}); retrying without TLS")]
    private static partial void LogTlsFallback(ILogger logger, string host, IPAddress address, string? reason);

    [LoggerMessage(EventId = 3313, Level = LogLevel.Error, Message = "Configuration error: {Host} [{Address}]:{Port} is this server ({Reason}); nothing is delivered there and mail stays queued until the Primary setting or DNS is fixed")]
    private static partial void LogLoop(ILogger logger, string host, IPAddress address, int port, string reason);
}
