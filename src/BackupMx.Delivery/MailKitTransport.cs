// Delivery: one SMTP transaction per attempt.
//
// The route (DeliveryRouter) gives hosts; each host's addresses are tried in
// order until one gives a session. That session carries exactly one
// transaction for this attempt, whose outcome is final: every recipient gets
// the reply the server gave it (2xx delivered, 4xx retry, 5xx bounce — a 452
// "too many recipients" is transient for those recipients only). When no
// session could be had, every recipient gets our own transient reply, and
// ReachedServer says whether any server answered at all. The body goes out
// byte for byte as stored (rule 3). A connection lost after the body was sent
// is transient: the primary may have taken the message, so the next attempt
// may deliver a duplicate, which SMTP accepts over losing mail (RFC 5321 §6.1).
// The result also says whether that server advertised DSN: if not, it got no
// NOTIFY and will report no success, so the forwarder owes a "relayed" DSN to
// recipients that asked for one.
//
// Sessions are reused (Delivery:IdleConnectionTimeout): a connection whose last
// transaction ended cleanly (every reply read, nothing refused) goes back to a
// small per-address pool and carries the next message, like Postfix's
// connection cache. Only such connections are pooled, so a reused one is
// always at the start of a transaction (no RSET needed). A reused connection
// that fails before the body was sent (the primary closed it while idle) has
// delivered nothing; the message is then tried once more on a fresh connection,
// and only that attempt's replies count. The body is opened and parsed once per
// delivery and the retry sends the same parsed message.
//
// Addresses are taken as stored, and one that MailKit cannot write exactly as
// stored (EnvelopeMailbox) is decided here, before any connection: such a
// recipient fails on its own with our 553 5.1.3 while the others are sent; an
// unwritable sender fails the whole message with 553 5.1.7 and no DSN. Neither
// says anything about the primary, so neither counts as an attempt to reach it.
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Delivery.Routing;
using BackupMx.Delivery.Smtp;
using MailKit;
using MailKit.Net.Smtp;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MimeKit;

namespace BackupMx.Delivery;

public sealed partial class MailKitTransport : IMessageTransport, IAsyncDisposable, IDisposable
{
    private readonly DeliveryRouter _router;
    private readonly SmtpConnector _connector;
    private readonly IDeliveryTlsPolicy _tls;
    private readonly ILogger<MailKitTransport> _logger;
    private readonly IOptions<BackupMxOptions> _options;
    private readonly TimeProvider _time;
    private readonly Dictionary<PoolKey, Stack<IdleClient>> _idle = [];
    private readonly Lock _poolLock = new();
    private readonly ITimer? _reaper;
    private bool _disposed;

    internal MailKitTransport(DeliveryRouter router, SmtpConnector connector, IDeliveryTlsPolicy tls, IOptions<BackupMxOptions> options, ILogger<MailKitTransport> logger, TimeProvider time)
    {
        _router = router;
        _connector = connector;
        _tls = tls;
        _options = options;
        _time = time;
        _logger = logger;
        var idle = options.Value.Delivery.IdleConnectionTimeout;
        if (idle > TimeSpan.Zero)
        {
            // Closes connections nobody took within the idle time, so a primary is not left holding them.
            _reaper = _time.CreateTimer(_ => CloseExpired(), null, idle, idle);
        }
    }

    /// <summary>For tests: the connector shared with the other outbound services.</summary>
    internal SmtpConnector Connector => _connector;

    /// <summary>Open connections waiting for the next message (for tests and diagnostics).</summary>
    public int IdleConnections
    {
        get
        {
            lock (_poolLock)
            {
                return _idle.Values.Sum(s => s.Count);
            }
        }
    }

    public async Task<DeliveryResult> DeliverAsync(DeliveryRequest request, CancellationToken cancellationToken)
    {
        if (EnvelopeMailbox.From(request.Sender) is not { } sender)
        {
            // A DSN needs a reverse-path to go to, and this one cannot be written in any command, so
            // the failure is final and nobody is told (Undeliverable: no DSN), rather than a bounce
            // that could never be addressed. Sending under a re-spelt sender instead would put an
            // envelope on the message that the client never gave (rule 3).
            LogUnwritableSender(_logger, request.QueueId);
            return DeliveryResult.AllRecipients(request.Recipients, BadSender, null, reachedServer: false) with { Undeliverable = true, DecidedLocally = true };
        }

        var recipients = new List<EnvelopeRecipient>(request.Recipients.Count);
        var refused = new List<RecipientOutcome>();
        foreach (var recipient in request.Recipients)
        {
            if (recipient.Address.Length > 0 && EnvelopeMailbox.From(recipient.Address) is { } mailbox)
            {
                recipients.Add(new EnvelopeRecipient(mailbox, recipient));
            }
            else
            {
                LogUnwritableRecipient(_logger, request.QueueId);
                refused.Add(new RecipientOutcome(recipient.Address, BadRecipient));
            }
        }

        if (recipients.Count == 0)
        {
            return new DeliveryResult(refused, null) { DecidedLocally = true };
        }

        var result = await DeliverAsync(request, new Envelope(sender, recipients), cancellationToken).ConfigureAwait(false);
        return refused.Count == 0 ? result : result with { Outcomes = [.. result.Outcomes, .. refused] };
    }

    private async Task<DeliveryResult> DeliverAsync(DeliveryRequest request, Envelope envelope, CancellationToken cancellationToken)
    {
        var states = envelope.Recipients.Select(r => r.State).ToList();
        var route = await _router.RouteAsync(request.Kind, request.Domain, cancellationToken).ConfigureAwait(false);
        if (route.Failure is not null)
        {
            return DeliveryResult.AllRecipients(states, route.Failure, null, reachedServer: false) with { Undeliverable = route.Undeliverable };
        }

        var tls = _tls.GetTls(request.Kind, request.Domain);
        await using var body = new LoadedBody(request);
        ConnectFailure? last = null;
        ConnectFailure? loop = null;
        var reached = false;
        string? lastHost = null;
        await foreach (var endpoint in _connector.EndpointsAsync(route.Hosts, cancellationToken).ConfigureAwait(false))
        {
            var key = new PoolKey(endpoint.Host, endpoint.Address, endpoint.Port, tls);
            if (TryTakeIdle(key) is { } reused)
            {
                Outcome outcome = default;
                try
                {
                    outcome = await SendAsync(reused, endpoint.Host, request, envelope, body, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    Release(key, reused, outcome.Reusable);
                }

                if (!outcome.RetryOnFreshConnection)
                {
                    return outcome.Result;
                }

                // Nothing was delivered on it (no body sent, no recipient answered): it had gone
                // stale while idle, and so have its idle siblings. Its replies are dropped; one
                // fresh connection decides.
                LogStaleConnection(_logger, request.QueueId, endpoint.Host);
                CloseIdle(key);
            }

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

            var reusable = false;
            try
            {
                var outcome = await SendAsync(client, endpoint.Host, request, envelope, body, cancellationToken).ConfigureAwait(false);
                reusable = outcome.Reusable;
                return outcome.Result;
            }
            finally
            {
                Release(key, client, reusable);
            }
        }

        var reply = loop?.Reply ?? last?.Reply ?? SmtpReply.LocalTransient("4.4.4", "no address found for the destination");
        return DeliveryResult.AllRecipients(states, reply, lastHost, reached);
    }

    private async Task<Outcome> SendAsync(RelaySmtpClient client, string host, DeliveryRequest request, Envelope envelope, LoadedBody body, CancellationToken cancellationToken)
    {
        client.Watcher.BeginTransaction();
        var message = await body.GetAsync(cancellationToken).ConfigureAwait(false);
        return await SendMessageAsync(client, host, request, envelope, message, cancellationToken).ConfigureAwait(false);
    }

    private async Task<Outcome> SendMessageAsync(RelaySmtpClient client, string host, DeliveryRequest request, Envelope envelope, MimeMessage message, CancellationToken cancellationToken)
    {
        var mailboxes = envelope.Recipients;
        client.SetEnvelope(request.Parameters, mailboxes.Select(m => (m.Mailbox, m.State.Notify)), request.BodyLength);
        var sender = envelope.Sender;

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

            // A 421 to MAIL on a reused connection is the primary closing it after an idle spell.
            var stale = client.Reused && ex.StatusCode == SmtpStatusCode.ServiceNotAvailable && client.RecipientReplies.Count == 0;
            return new Outcome(Result(mailboxes.Select(m => new RecipientOutcome(m.State.Address, reply)), host, client), Reusable: false, RetryOnFreshConnection: stale);
        }
        catch (SmtpCommandException ex) when (client.AcceptedCount > 0)
        {
            // DATA or the end of data was refused (552, 451, 554...): it applies to the accepted recipients.
            transactionReply = RelaySmtpClient.ToReply((int)ex.StatusCode, ex.Message);
        }
        catch (SmtpCommandException)
        {
            // No recipient accepted: MailKit reports a made-up 554, the RCPT replies are the truth.
            LogNoRecipientAccepted(_logger, request.QueueId, host);
        }
        catch (Exception ex)
        {
            var afterData = client.Watcher.DataSent;

            // Safe to repeat on a fresh connection only if this one cannot have delivered anything.
            var stale = client.Reused && !afterData && client.RecipientReplies.Count == 0;
            if (!stale)
            {
                // A pooled connection the primary closed while idle is routine: the retry on a fresh
                // one is logged instead, without a stack trace.
                LogSessionLost(_logger, ex, request.QueueId, host, afterData);
            }

            transactionReply = afterData
                ? SmtpReply.LocalTransient("4.4.2", $"connection to {host} lost after the message was sent; it may have been accepted")
                : SmtpReply.LocalTransient("4.4.2", $"connection to {host} lost during the transaction");

            // Recipients refused before the failure keep their reply; the others retry.
            var lost = Result(
                mailboxes.Select(m => new RecipientOutcome(
                    m.State.Address,
                    client.RecipientReplies.TryGetValue(m.Mailbox, out var r) && !r.IsSuccess ? r : transactionReply)),
                host,
                client);

            return new Outcome(lost, Reusable: false, RetryOnFreshConnection: stale);
        }

        var result = Result(
            mailboxes.Select(m => new RecipientOutcome(
                m.State.Address,
                client.RecipientReplies.TryGetValue(m.Mailbox, out var r)
                    ? (r.IsSuccess ? transactionReply ?? r : r)
                    : SmtpReply.LocalTransient("4.4.2", "no reply to this recipient"))),
            host,
            client);

        // Only a transaction that ran to its end with every reply read leaves the session at the
        // start of the next one; after a refusal MailKit's own RSET handling is not relied on.
        var clean = transactionReply is { IsSuccess: true } && client.RecipientReplies.Values.All(r => r.IsSuccess);
        return new Outcome(result, Reusable: clean, RetryOnFreshConnection: false);
    }

    // The capabilities are those of the EHLO that began this session (after STARTTLS, the second one).
    private static DeliveryResult Result(IEnumerable<RecipientOutcome> outcomes, string host, RelaySmtpClient client) =>
        new(outcomes.ToList(), host) { ReachedServer = true, RemoteOffersDsn = client.OffersDsn };

    private RelaySmtpClient? TryTakeIdle(PoolKey key)
    {
        var now = _time.GetTimestamp();
        var timeout = _options.Value.Delivery.IdleConnectionTimeout;
        List<RelaySmtpClient>? expired = null;
        RelaySmtpClient? taken = null;
        lock (_poolLock)
        {
            if (_idle.TryGetValue(key, out var stack))
            {
                while (stack.TryPop(out var idle))
                {
                    if (_time.GetElapsedTime(idle.Since, now) < timeout && idle.Client.IsConnected)
                    {
                        taken = idle.Client;
                        break;
                    }

                    (expired ??= []).Add(idle.Client);
                }
            }
        }

        foreach (var client in expired ?? [])
        {
            _ = QuitAndDisposeAsync(client);
        }

        if (taken is not null)
        {
            taken.Reused = true;
        }

        return taken;
    }

    /// <summary>Back to the pool if it is at the start of a transaction and there is room; closed otherwise.</summary>
    private void Release(PoolKey key, RelaySmtpClient client, bool reusable)
    {
        var timeout = _options.Value.Delivery.IdleConnectionTimeout;
        if (reusable && timeout > TimeSpan.Zero && client.IsConnected)
        {
            lock (_poolLock)
            {
                if (!_disposed)
                {
                    if (!_idle.TryGetValue(key, out var stack))
                    {
                        _idle[key] = stack = new Stack<IdleClient>();
                    }

                    if (stack.Count < _options.Value.Delivery.MaxConcurrentDeliveries)
                    {
                        stack.Push(new IdleClient(client, _time.GetTimestamp()));
                        return;
                    }
                }
            }
        }

        // The outcome is known once the last reply is in; the caller commits it without
        // waiting for QUIT's round trip, which only widens the window in which a crash
        // makes an accepted message look undelivered (and so sent twice).
        _ = QuitAndDisposeAsync(client);
    }

    private void CloseIdle(PoolKey key)
    {
        List<RelaySmtpClient> stale;
        lock (_poolLock)
        {
            if (!_idle.Remove(key, out var stack))
            {
                return;
            }

            stale = stack.Select(i => i.Client).ToList();
        }

        foreach (var client in stale)
        {
            _ = QuitAndDisposeAsync(client);
        }
    }

    private void CloseExpired()
    {
        var now = _time.GetTimestamp();
        var timeout = _options.Value.Delivery.IdleConnectionTimeout;
        var expired = new List<RelaySmtpClient>();
        lock (_poolLock)
        {
            foreach (var stack in _idle.Values)
            {
                if (stack.Count == 0)
                {
                    continue;
                }

                // Newest on top: keep the fresh ones, close the rest.
                var keep = stack.Where(i => _time.GetElapsedTime(i.Since, now) < timeout).Reverse().ToList();
                expired.AddRange(stack.Where(i => _time.GetElapsedTime(i.Since, now) >= timeout).Select(i => i.Client));
                stack.Clear();
                foreach (var item in keep)
                {
                    stack.Push(item);
                }
            }
        }

        foreach (var client in expired)
        {
            _ = QuitAndDisposeAsync(client);
        }
    }

    /// <summary>Says QUIT on every idle connection and closes it.</summary>
    public async ValueTask DisposeAsync()
    {
        var all = TakeAllIdle();
        if (_reaper is not null)
        {
            await _reaper.DisposeAsync().ConfigureAwait(false);
        }

        await Task.WhenAll(all.Select(QuitAndDisposeAsync)).ConfigureAwait(false);
    }

    /// <summary>Closes every idle connection without QUIT (for containers that dispose synchronously).</summary>
    public void Dispose()
    {
        _reaper?.Dispose();
        foreach (var client in TakeAllIdle())
        {
            client.Dispose();
        }
    }

    private List<RelaySmtpClient> TakeAllIdle()
    {
        lock (_poolLock)
        {
            _disposed = true;
            var all = _idle.Values.SelectMany(s => s.Select(i => i.Client)).ToList();
            _idle.Clear();
            return all;
        }
    }

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

    /// <summary>
    /// The body, opened and parsed on the first send of a delivery and kept for a retry on a fresh
    /// connection. Sending it again gives the same bytes: the message is parsed persistent, so its
    /// parts are read from the (seekable) stream each time it is written, and nothing changes it.
    /// </summary>
    private sealed class LoadedBody(DeliveryRequest request) : IAsyncDisposable
    {
        private Stream? _stream;
        private Stream? _seekable;
        private MimeMessage? _message;

        public async Task<MimeMessage> GetAsync(CancellationToken cancellationToken)
        {
            if (_message is null)
            {
                _stream = await request.OpenBody(cancellationToken).ConfigureAwait(false);
                _seekable = _stream.CanSeek ? _stream : await CopyToTemporaryFileAsync(_stream, cancellationToken).ConfigureAwait(false);

                // persistent: the parts keep pointing into the stream, so nothing is decoded and re-encoded.
                _message = await MimeMessage.LoadAsync(_seekable, persistent: true, cancellationToken).ConfigureAwait(false);
            }

            return _message;
        }

        public async ValueTask DisposeAsync()
        {
            _message?.Dispose();
            if (_seekable is not null && !ReferenceEquals(_seekable, _stream))
            {
                await _seekable.DisposeAsync().ConfigureAwait(false);
            }

            if (_stream is not null)
            {
                await _stream.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Our own verdicts on addresses we cannot write (RFC 3463: 5.1.3, 5.1.7), never a remote server's.</summary>
    private static readonly SmtpReply BadRecipient = new(553, "5.1.3", "Bad recipient address syntax", FromRemote: false);

    private static readonly SmtpReply BadSender = new(553, "5.1.7", "Bad sender's mailbox address syntax", FromRemote: false);

    private sealed record Envelope(MailboxAddress Sender, IReadOnlyList<EnvelopeRecipient> Recipients);

    private readonly record struct EnvelopeRecipient(MailboxAddress Mailbox, RecipientState State);

    private readonly record struct PoolKey(string Host, System.Net.IPAddress Address, int Port, DeliveryTls Tls);

    private readonly record struct IdleClient(RelaySmtpClient Client, long Since);

    private readonly record struct Outcome(DeliveryResult Result, bool Reusable, bool RetryOnFreshConnection);

    [LoggerMessage(EventId = 322, Level = LogLevel.Information, Message = "Reused connection to {Host} was closed before {QueueId} was sent; trying a fresh connection")]
    private static partial void LogStaleConnection(ILogger logger, string queueId, string host);

    [LoggerMessage(EventId = 320, Level = LogLevel.Information, Message = "No recipient of {QueueId} accepted by {Host}; each recipient keeps its own RCPT reply")]
    private static partial void LogNoRecipientAccepted(ILogger logger, string queueId, string host);

    [LoggerMessage(EventId = 323, Level = LogLevel.Warning, Message = "A recipient of {QueueId} has an address that cannot be written in RCPT TO; it fails with 553 5.1.3")]
    private static partial void LogUnwritableRecipient(ILogger logger, string queueId);

    [LoggerMessage(EventId = 324, Level = LogLevel.Warning, Message = "The sender of {QueueId} has an address that cannot be written in MAIL FROM; the message fails with 553 5.1.7 and no DSN")]
    private static partial void LogUnwritableSender(ILogger logger, string queueId);

    [LoggerMessage(EventId = 321, Level = LogLevel.Warning, Message = "Session with {Host} for {QueueId} failed (after DATA: {AfterData})")]
    private static partial void LogSessionLost(ILogger logger, Exception exception, string queueId, string host, bool afterData);
}
