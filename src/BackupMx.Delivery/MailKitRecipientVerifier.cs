// Recipient verification by callout.
//
// Asks the domain's primary, over the route relayed mail takes and with the same
// TLS settings, whether it would take a recipient: EHLO, MAIL FROM:<>, RCPT TO,
// then RSET and QUIT. No DATA is ever sent, so nothing can be delivered by a
// callout. The null sender is what RFC 5321 §3.6.3 suggests for such probes, and
// it keeps the primary from answering differently for different senders. 2xx to
// RCPT means the recipient exists, 5xx that it does not; anything else (4xx, a
// refused MAIL, no connection, a loop to ourselves) is Unknown, and the caller's
// policy decides. Caching is the caller's too: one callout per sender's RCPT
// would make us a tool for probing the primary's mailboxes.
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Delivery.Routing;
using BackupMx.Delivery.Smtp;
using MailKit.Net.Smtp;
using Microsoft.Extensions.Logging;

namespace BackupMx.Delivery;

public sealed partial class MailKitRecipientVerifier : IRecipientVerifier
{
    private readonly DeliveryRouter _router;
    private readonly SmtpConnector _connector;
    private readonly IDeliveryTlsPolicy _tls;
    private readonly ILogger<MailKitRecipientVerifier> _logger;

    internal MailKitRecipientVerifier(DeliveryRouter router, SmtpConnector connector, IDeliveryTlsPolicy tls, ILogger<MailKitRecipientVerifier> logger)
    {
        _router = router;
        _connector = connector;
        _tls = tls;
        _logger = logger;
    }

    /// <summary>For tests: the connector shared with the other outbound services.</summary>
    internal SmtpConnector Connector => _connector;

    public async Task<VerificationResult> VerifyAsync(string domain, string address, CancellationToken cancellationToken)
    {
        if (address.Any(c => char.IsControl(c) || c is '<' or '>'))
        {
            // Would end the RCPT line early and inject commands into the primary's session.
            LogUnsafeAddress(_logger, domain);
            return new VerificationResult(VerificationOutcome.Unknown, SmtpReply.LocalTransient("4.1.3", "address cannot be verified"));
        }

        var route = await _router.RouteAsync(MessageKind.Relay, domain, cancellationToken).ConfigureAwait(false);
        if (route.Failure is not null)
        {
            return new VerificationResult(VerificationOutcome.Unknown, route.Failure);
        }

        var tls = _tls.GetTls(MessageKind.Relay, domain);
        SmtpReply? last = null;
        await foreach (var endpoint in _connector.EndpointsAsync(route.Hosts, cancellationToken).ConfigureAwait(false))
        {
            var (client, failure) = await _connector.ConnectAsync(w => new CalloutSmtpClient(w), endpoint, tls, cancellationToken).ConfigureAwait(false);
            if (client is null)
            {
                last = failure!.Reply;
                continue;
            }

            using (client)
            {
                // The first host that holds a session answers: a second opinion from another
                // primary of the same domain would only double the load on a failing system.
                return await CalloutAsync(client, endpoint.Host, address, cancellationToken).ConfigureAwait(false);
            }
        }

        return new VerificationResult(VerificationOutcome.Unknown, last ?? SmtpReply.LocalTransient("4.4.4", "no address found for the primary"));
    }

    private async Task<VerificationResult> CalloutAsync(CalloutSmtpClient client, string host, string address, CancellationToken cancellationToken)
    {
        try
        {
            var mail = await client.CommandAsync("MAIL FROM:<>", cancellationToken).ConfigureAwait(false);
            if ((int)mail.StatusCode is < 200 or >= 300)
            {
                // A refused null sender says nothing about the recipient.
                LogMailRefused(_logger, host, (int)mail.StatusCode);
                return await EndAsync(client, VerificationOutcome.Unknown, RelaySmtpClient.ToReply(mail), cancellationToken).ConfigureAwait(false);
            }

            var rcpt = await client.CommandAsync($"RCPT TO:<{address}>", cancellationToken).ConfigureAwait(false);
            var reply = RelaySmtpClient.ToReply(rcpt);
            var outcome = reply.Code switch
            {
                >= 200 and < 300 => VerificationOutcome.Exists,
                >= 500 => VerificationOutcome.DoesNotExist,
                _ => VerificationOutcome.Unknown,
            };
            LogVerified(_logger, host, outcome, reply.Code);
            return await EndAsync(client, outcome, reply, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            LogCalloutFailed(_logger, ex, host);
            return new VerificationResult(VerificationOutcome.Unknown, SmtpReply.LocalTransient("4.4.2", $"callout to {host} failed"));
        }
    }

    private static async Task<VerificationResult> EndAsync(CalloutSmtpClient client, VerificationOutcome outcome, SmtpReply reply, CancellationToken cancellationToken)
    {
        try
        {
            // RSET before QUIT: a primary that logs or counts aborted transactions sees a clean end.
            await client.CommandAsync("RSET", cancellationToken).ConfigureAwait(false);
            await client.DisconnectAsync(quit: true, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The answer is already in hand.
        }

        return new VerificationResult(outcome, reply);
    }

    [LoggerMessage(EventId = 3330, Level = LogLevel.Debug, Message = "Callout to {Host}: {Outcome} ({Code})")]
    private static partial void LogVerified(ILogger logger, string host, VerificationOutcome outcome, int code);

    [LoggerMessage(EventId = 3331, Level = LogLevel.Warning, Message = "Callout to {Host}: the primary refused MAIL FROM:<> with {Code}; recipients cannot be verified")]
    private static partial void LogMailRefused(ILogger logger, string host, int code);

    [LoggerMessage(EventId = 3332, Level = LogLevel.Information, Message = "Callout to {Host} failed")]
    private static partial void LogCalloutFailed(ILogger logger, Exception exception, string host);

    [LoggerMessage(EventId = 3333, Level = LogLevel.Warning, Message = "Recipient for {Domain} with control or angle-bracket characters not verified")]
    private static partial void LogUnsafeAddress(ILogger logger, string domain);
}

/// <summary>Single SMTP commands (MailKit keeps its command method protected); the reply comes back whatever its code.</summary>
internal sealed class CalloutSmtpClient(ProtocolWatcher watcher) : SmtpClient(watcher)
{
    public Task<SmtpResponse> CommandAsync(string command, CancellationToken cancellationToken) =>
        SendCommandAsync(command, cancellationToken);
}
