// Delivery: one SMTP transaction per attempt.
//
// The route (DeliveryRouter) gives hosts; each host's addresses are tried in
// order until one gives a session. That session carries exactly one
// transaction, whose outcome is final for this attempt: every recipient gets
// the reply the server gave it (2xx delivered, 4xx retry, 5xx bounce — a 452
// "too many recipients" is transient for those recipients only). When no
// session could be had, every recipient gets our own transient reply, and
// ReachedServer says whether any server answered at all. The body goes out
// byte for byte as stored (rule 3). A connection lost after the body was sent
// is transient: the primary may have taken the message, so the next attempt
// may deliver a duplicate, which SMTP accepts over losing mail (RFC 5321 §6.1).
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Delivery.Routing;
using BackupMx.Delivery.Smtp;
using MailKit.Net.Smtp;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MimeKit;

namespace BackupMx.Delivery;

public sealed partial class MailKitTransport : IMessageTransport
{
    private readonly DeliveryRouter _router;
    private readonly SmtpConnector _connector;
    private readonly IDeliveryTlsPolicy _tls;
    private readonly ILogger<MailKitTransport> _logger;

    public MailKitTransport(DeliveryRouter router, IDnsResolver dns, IDeliveryTlsPolicy tls, IOptions<BackupMxOptions> options, ILoggerFactory loggerFactory)
    {
        _router = router;
        _tls = tls;
        _connector = new SmtpConnector(dns, options, loggerFactory.CreateLogger<SmtpConnector>());
        _logger = loggerFactory.CreateLogger<MailKitTransport>();
    }

    public async Task<DeliveryResult> DeliverAsync(DeliveryRequest request, CancellationToken cancellationToken)
    {
        var route = await _router.RouteAsync(request.Kind, request.Domain, cancellationToken).ConfigureAwait(false);
        if (route.Failure is not null)
        {
            return DeliveryResult.AllRecipients(request.Recipients, route.Failure, null, reachedServer: false) with { Undeliverable = route.Undeliverable };
        }

        var tls = _tls.GetTls(request.Kind, request.Domain);
        ConnectFailure? last = null;
        ConnectFailure? loop = null;
        var reached = false;
        string? lastHost = null;
        await foreach (var endpoint in _connector.EndpointsAsync(route.Hosts, cancellationToken).ConfigureAwait(false))
        {
            var (client, failure) = await _connector.ConnectAsync(w => new RelaySmtpClient(w), endpoint, tls, cancellationToken).ConfigureAwait(false);
            if (client is null)
            {
                if (failure!.Loop)
                {
                    // Another host of the route may still be a real primary; if none is, the loop
                    // is what the operator must see in the queue, not a connection error.
                    loop = failure;
                    continue;
                }

                last = failure;
                reached |= failure!.ReachedServer;
                lastHost = endpoint.Host;
                continue;
            }

            try
            {
                return await SendAsync(client, endpoint.Host, request, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                // The outcome is known once the last reply is in; the caller commits it without
                // waiting for QUIT's round trip, which only widens the window in which a crash
                // makes an accepted message look undelivered (and so sent twice).
                _ = QuitAndDisposeAsync(client);
            }
        }

        var reply = loop?.Reply ?? last?.Reply ?? SmtpReply.LocalTransient("4.4.4", "no address found for the destination");
        return DeliveryResult.AllRecipients(request.Recipients, reply, lastHost, reached);
    }

    private async Task<DeliveryResult> SendAsync(RelaySmtpClient client, string host, DeliveryRequest request, CancellationToken cancellationToken)
    {
        var stream = await request.OpenBody(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            var seekable = stream.CanSeek ? stream : await CopyToTemporaryFileAsync(stream, cancellationToken).ConfigureAwait(false);
            await using (seekable.ConfigureAwait(false))
            {
                // persistent: the parts keep pointing into the stream, so nothing is decoded and re-encoded.
                using var message = await MimeMessage.LoadAsync(seekable, persistent: true, cancellationToken).ConfigureAwait(false);
                return await SendMessageAsync(client, host, request, message, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task<DeliveryResult> SendMessageAsync(RelaySmtpClient client, string host, DeliveryRequest request, MimeMessage message, CancellationToken cancellationToken)
    {
        var mailboxes = request.Recipients.Select(r => (Mailbox: new MailboxAddress(string.Empty, r.Address), State: r)).ToList();
        client.SetEnvelope(request.Parameters, mailboxes.Select(m => (m.Mailbox, m.State.Notify)), request.BodyLength);
        var sender = new MailboxAddress(string.Empty, request.Sender);

        SmtpReply? transactionReply = null;
        try
        {
            var text = await client.SendAsync(FormatOptions.Default, message, sender, mailboxes.Select(m => m.Mailbox), cancellationToken).ConfigureAwait(false);
            transactionReply = RelaySmtpClient.ToReply(250, text);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (SmtpCommandException ex) when (ex.ErrorCode == SmtpErrorCode.SenderNotAccepted)
        {
            // With pipelining the recipients then got 503s; the MAIL reply is the one that counts.
            var reply = RelaySmtpClient.ToReply((int)ex.StatusCode, ex.Message);
            return Result(mailboxes.Select(m => new RecipientOutcome(m.State.Address, reply)), host);
        }
        catch (SmtpCommandException ex) when (client.AcceptedCount > 0)
        {
            // DATA or the end of data was refused (552, 451, 554...): it applies to the accepted recipients.
            transactionReply = RelaySmtpClient.ToReply((int)ex.StatusCode, ex.Message);
        }
        catch (SmtpCommandException ex)
        {
            // No recipient accepted: MailKit reports a made-up 554, the RCPT replies are the truth.
            LogNoRecipientAccepted(_logger, request.QueueId, host, (int)ex.StatusCode);
        }
        catch (Exception ex)
        {
            var afterData = client.Watcher.DataSent;
            LogSessionLost(_logger, ex, request.QueueId, host, afterData);
            transactionReply = afterData
                ? SmtpReply.LocalTransient("4.4.2", $"connection to {host} lost after the message was sent; it may have been accepted")
                : SmtpReply.LocalTransient("4.4.2", $"connection to {host} lost during the transaction");

            // Recipients refused before the failure keep their reply; the others retry.
            return Result(
                mailboxes.Select(m => new RecipientOutcome(
                    m.State.Address,
                    client.RecipientReplies.TryGetValue(m.Mailbox, out var r) && !r.IsSuccess ? r : transactionReply)),
                host);
        }

        return Result(
            mailboxes.Select(m => new RecipientOutcome(
                m.State.Address,
                client.RecipientReplies.TryGetValue(m.Mailbox, out var r)
                    ? (r.IsSuccess ? transactionReply ?? r : r)
                    : SmtpReply.LocalTransient("4.4.2", "no reply to this recipient"))),
            host);
    }

    private static DeliveryResult Result(IEnumerable<RecipientOutcome> outcomes, string host) =>
        new(outcomes.ToList(), host) { ReachedServer = true };

    private static async Task QuitAndDisposeAsync(SmtpClient client)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await client.DisconnectAsync(quit: client.IsConnected, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The outcome is already known; a failed QUIT changes nothing.
        }
        finally
        {
            client.Dispose();
        }
    }

    private static async Task<Stream> CopyToTemporaryFileAsync(Stream source, CancellationToken cancellationToken)
    {
        // MimeKit's persistent load needs a seekable stream; a blob download may not be one.
        var file = new FileStream(Path.GetTempFileName(), FileMode.Create, FileAccess.ReadWrite, FileShare.None, 81920, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        await source.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
        file.Position = 0;
        return file;
    }

    [LoggerMessage(EventId = 320, Level = LogLevel.Information, Message = "No recipient of {QueueId} accepted by {Host} (MailKit reported {Code}); using the RCPT replies")]
    private static partial void LogNoRecipientAccepted(ILogger logger, string queueId, string host, int code);

    [LoggerMessage(EventId = 321, Level = LogLevel.Warning, Message = "Session with {Host} for {QueueId} failed (after DATA: {AfterData})")]
    private static partial void LogSessionLost(ILogger logger, Exception exception, string queueId, string host, bool afterData);
}
