// Delivery: one attempt of one message, over one or more SMTP sessions.
//
// The route (DeliveryRouter) gives hosts; each host's addresses are tried in
// order until one gives a session. Every recipient gets the reply the server
// gave it (2xx delivered, 4xx retry, 5xx bounce). Recipients a session left
// deferred (a 4xx, or a connection lost before the data was sent) are tried at
// the next address, up to Delivery:MxSessionLimit sessions, like Postfix's
// smtp_mx_session_limit; recipients that may already have been taken (the
// connection was lost after the data) are not sent twice within the attempt.
// Within a session, when the server takes the message for some recipients and
// answers 452 for others (its recipient limit, RFC 5321 §4.5.3.1.10), those go
// in a follow-up transaction at once. When no session could be had, every
// recipient gets our own transient reply, and ReachedServer says whether any
// server answered at all; a refusal for load (a 421 greeting) lowers the
// sessions opened towards that address (DestinationConcurrency) and is
// reported as ServerBusy, which says nothing about the primary's state.
//
// The transaction is written from the stored envelope (RelayTransaction) and
// the body streams from the spool as stored (rule 3), never parsed. A
// connection lost after the body was sent is transient: the primary may have
// taken the message, so the next attempt may deliver a duplicate, which SMTP
// accepts over losing mail (RFC 5321 §6.1). The result also says whether the
// server advertised DSN: if not, it got no NOTIFY and will report no success,
// so the forwarder owes a "relayed" DSN to recipients that asked for one.
//
// Sessions are reused (Delivery:IdleConnectionTimeout): a connection whose last
// transaction ended with a final 2xx is at the start of the next transaction
// and goes back to a small per-address pool, like Postfix's connection cache.
// A reused connection that fails before the body was sent (the primary closed
// it while idle) has delivered nothing; the message is then tried once more on
// a fresh connection, and only that attempt's replies count.
//
// Addresses are taken as stored, and one that cannot be written exactly as
// stored (EnvelopeMailbox) is decided here, before any connection: such a
// recipient fails on its own with our 553 5.1.3 while the others are sent; an
// unwritable sender fails the whole message with 553 5.1.7 and no DSN. Neither
// says anything about the primary, so neither counts as an attempt to reach it.
using System.Text;
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Delivery.Routing;
using BackupMx.Delivery.Smtp;
using MailKit;
using MailKit.Net.Smtp;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Delivery;

public sealed partial class MailKitTransport : IMessageTransport, IAsyncDisposable, IDisposable
{
    private readonly DeliveryRouter _router;
    private readonly SmtpConnector _connector;
    private readonly IDeliveryTlsPolicy _tls;
    private readonly ILogger<MailKitTransport> _logger;
    private readonly IOptions<BackupMxOptions> _options;
    private readonly TimeProvider _time;
    /// <summary>Tries at one address that refuses sessions for load, each under a lower limit.</summary>
    private const int MaxBusyTries = 3;

    private readonly Dictionary<PoolKey, Stack<IdleClient>> _idle = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(System.Net.IPAddress, int), DestinationConcurrency> _concurrency = new();
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
        if (request.Sender.Length > 0 && EnvelopeMailbox.From(request.Sender) is null)
        {
            // A DSN needs a reverse-path to go to, and this one cannot be written in any command, so
            // the failure is final and nobody is told (Undeliverable: no DSN), rather than a bounce
            // that could never be addressed. Sending under a re-spelt sender instead would put an
            // envelope on the message that the client never gave (rule 3).
            LogUnwritableSender(_logger, request.QueueId);
            return DeliveryResult.AllRecipients(request.Recipients, BadSender, null, reachedServer: false) with { Undeliverable = true, DecidedLocally = true };
        }

        var recipients = new List<RecipientState>(request.Recipients.Count);
        var refused = new List<RecipientOutcome>();
        foreach (var recipient in request.Recipients)
        {
            if (recipient.Address.Length > 0 && EnvelopeMailbox.From(recipient.Address) is not null)
            {
                recipients.Add(recipient);
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

        var result = await DeliverAsync(request, new Envelope(request.Sender, recipients), cancellationToken).ConfigureAwait(false);
        return refused.Count == 0 ? result : result with { Outcomes = [.. result.Outcomes, .. refused] };
    }

    private async Task<DeliveryResult> DeliverAsync(DeliveryRequest request, Envelope envelope, CancellationToken cancellationToken)
    {
        var route = await _router.RouteAsync(request.Kind, request.Domain, cancellationToken).ConfigureAwait(false);
        if (route.Failure is not null)
        {
            return DeliveryResult.AllRecipients(envelope.Recipients, route.Failure, null, reachedServer: false) with { Undeliverable = route.Undeliverable };
        }

        var tls = _tls.GetTls(request.Kind, request.Domain);
        await using var body = new StoredBody(request);
        var replies = new Dictionary<RecipientState, SmtpReply>(ReferenceEqualityComparer.Instance);
        IReadOnlyList<RecipientState> pending = envelope.Recipients;
        ConnectFailure? last = null;
        ConnectFailure? loop = null;
        var reached = false;
        string? lastHost = null;
        string? sessionHost = null;
        bool? deliveredOffersDsn = null;
        var lastOffersDsn = false;
        var sessions = 0;
        var limit = _options.Value.Delivery.MxSessionLimit;
        await foreach (var endpoint in _connector.EndpointsAsync(route.Hosts, cancellationToken).ConfigureAwait(false))
        {
            var (session, failure) = await TryEndpointAsync(endpoint, tls, request, envelope.Sender, pending, body, cancellationToken).ConfigureAwait(false);
            if (session is null)
            {
                if (failure!.Loop)
                {
                    // Another host of the route may still be a real primary; if none is, the loop
                    // is what the operator must see in the queue, not a connection error.
                    loop = failure;
                    continue;
                }

                last = failure;
                reached |= failure.ReachedServer;
                lastHost = endpoint.Host;
                continue;
            }

            sessions++;
            reached = true;
            sessionHost = endpoint.Host;
            foreach (var (recipient, reply) in session.Replies)
            {
                replies[recipient] = reply;
            }

            // The result speaks for the server that took the message: if several did, each must offer DSN.
            lastOffersDsn = session.OffersDsn;
            if (session.Replies.Values.Any(r => r.IsSuccess))
            {
                deliveredOffersDsn = (deliveredOffersDsn ?? true) && session.OffersDsn;
            }

            // Recipients this host deferred try the next one within the same attempt, as Postfix's
            // smtp_mx_session_limit allows; never those the host may already have taken.
            pending = pending.Where(r => replies[r].IsTransient && !session.MaybeDelivered.Contains(r)).ToList();
            if (pending.Count == 0 || sessions >= limit)
            {
                break;
            }

            LogNextHost(_logger, request.QueueId, endpoint.Host, pending.Count);
        }

        var unreached = loop?.Reply ?? last?.Reply ?? SmtpReply.LocalTransient("4.4.4", "no address found for the destination");
        var outcomes = envelope.Recipients.Select(r => new RecipientOutcome(r.Address, replies.GetValueOrDefault(r) ?? unreached)).ToList();
        return new DeliveryResult(outcomes, sessionHost ?? lastHost)
        {
            ReachedServer = reached,
            ServerBusy = sessions == 0 && loop is null && last is { Busy: true },
            RemoteOffersDsn = deliveredOffersDsn ?? lastOffersDsn,
        };
    }

    /// <summary>
    /// One session at one address, within the concurrency that address tolerates: a pooled
    /// connection when there is one, else a fresh one. A refusal for load lowers that concurrency
    /// and waits for a slot under the new limit before trying again.
    /// </summary>
    private async Task<(Session? Session, ConnectFailure? Failure)> TryEndpointAsync(SmtpEndpoint endpoint, DeliveryTls tls, DeliveryRequest request, string sender, IReadOnlyList<RecipientState> pending, StoredBody body, CancellationToken cancellationToken)
    {
        var key = new PoolKey(endpoint.Host, endpoint.Address, endpoint.Port, tls);
        var concurrency = _concurrency.GetOrAdd((endpoint.Address, endpoint.Port), _ => new DestinationConcurrency(_options.Value.Delivery.MaxConcurrentDeliveries));
        ConnectFailure? failure = null;
        for (var tries = 0; tries < MaxBusyTries; tries++)
        {
            using var slot = await concurrency.EnterAsync(cancellationToken).ConfigureAwait(false);
            if (TryTakeIdle(key) is { } reused)
            {
                var session = await RunAndReleaseAsync(key, reused, endpoint.Host, request, sender, pending, body, cancellationToken).ConfigureAwait(false);
                if (!session.RetryOnFreshConnection)
                {
                    return (session, null);
                }

                // Nothing was delivered on it (no body sent, no recipient answered): it had gone
                // stale while idle, and so have its idle siblings. Its replies are dropped; one
                // fresh connection decides.
                LogStaleConnection(_logger, request.QueueId, endpoint.Host);
                CloseIdle(key);
            }

            var (client, refused) = await _connector.ConnectAsync(w => new RelaySmtpClient(w), endpoint, tls, cancellationToken).ConfigureAwait(false);
            if (client is not null)
            {
                var session = await RunAndReleaseAsync(key, client, endpoint.Host, request, sender, pending, body, cancellationToken).ConfigureAwait(false);
                concurrency.Success();
                return (session, null);
            }

            failure = refused;
            if (!refused!.Busy)
            {
                break;
            }

            concurrency.Busy();
            LogBusy(_logger, endpoint.Host, endpoint.Address, concurrency.Limit);
        }

        return (null, failure);
    }

    private async Task<Session> RunAndReleaseAsync(PoolKey key, RelaySmtpClient client, string host, DeliveryRequest request, string sender, IReadOnlyList<RecipientState> recipients, StoredBody body, CancellationToken cancellationToken)
    {
        Session? session = null;
        try
        {
            session = await RunSessionAsync(client, host, request, sender, recipients, body, cancellationToken).ConfigureAwait(false);
            return session;
        }
        finally
        {
            Release(key, client, session?.Reusable ?? false);
        }
    }

    /// <summary>
    /// The transactions of one session: the first with every recipient this server can take,
    /// then, while the server takes the message for some and answers 452 for others (its
    /// recipient limit, RFC 5321 §4.5.3.1.10), a follow-up transaction with those others.
    /// </summary>
    private async Task<Session> RunSessionAsync(RelaySmtpClient client, string host, DeliveryRequest request, string sender, IReadOnlyList<RecipientState> recipients, StoredBody body, CancellationToken cancellationToken)
    {
        var replies = new Dictionary<RecipientState, SmtpReply>(ReferenceEqualityComparer.Instance);
        var maybeDelivered = new HashSet<RecipientState>(ReferenceEqualityComparer.Instance);
        var (batch, smtpUtf8) = await FitToServerAsync(client, host, request, sender, recipients, body, replies, cancellationToken).ConfigureAwait(false);
        var first = true;
        var reusable = false;
        while (batch.Count > 0)
        {
            client.Watcher.BeginTransaction();
            var tx = new TransactionReplies();
            try
            {
                var stream = await body.GetAsync(cancellationToken).ConfigureAwait(false);
                await RelayTransaction.RunAsync(client, sender, request.Parameters, batch, request.BodyLength, smtpUtf8, stream, tx, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex)
            {
                var afterData = client.Watcher.DataSent;

                // Safe to repeat on a fresh connection only if this one cannot have delivered anything.
                var stale = first && client.Reused && !afterData && tx.Recipients.Count == 0;
                if (!stale)
                {
                    // A pooled connection the primary closed while idle is routine: the retry on a fresh
                    // one is logged instead, without a stack trace.
                    LogSessionLost(_logger, ex, request.QueueId, host, afterData);
                }

                var lost = afterData
                    ? SmtpReply.LocalTransient("4.4.2", $"connection to {host} lost after the message was sent; it may have been accepted")
                    : SmtpReply.LocalTransient("4.4.2", $"connection to {host} lost during the transaction");

                // Recipients refused before the failure keep their reply; the others retry.
                for (var i = 0; i < batch.Count; i++)
                {
                    var refused = i < tx.Recipients.Count && !tx.Recipients[i].IsSuccess;
                    replies[batch[i]] = refused ? tx.Recipients[i] : lost;
                    if (afterData && !refused)
                    {
                        maybeDelivered.Add(batch[i]);
                    }
                }

                return new Session(replies, maybeDelivered, client.OffersDsn, Reusable: false, RetryOnFreshConnection: stale);
            }

            if (tx.Mail is { IsSuccess: false } mailReply)
            {
                // With the whole envelope refused, every recipient of the batch gets that reply.
                foreach (var recipient in batch)
                {
                    replies[recipient] = mailReply;
                }

                // A 421 to MAIL on a reused connection is the primary closing it after an idle spell.
                var stale = first && client.Reused && mailReply.Code == 421;
                return new Session(replies, maybeDelivered, client.OffersDsn, Reusable: false, RetryOnFreshConnection: stale);
            }

            if (tx.Data is null)
            {
                LogNoRecipientAccepted(_logger, request.QueueId, host);
            }

            for (var i = 0; i < batch.Count; i++)
            {
                var reply = tx.Recipients[i];
                replies[batch[i]] = reply.IsSuccess ? tx.Data ?? reply : reply;
            }

            // After a final 2xx the server is at the start of a new transaction (RFC 5321 §4.1.1.4).
            reusable = tx.Completed;
            var followUp = batch.Where(r => replies[r].Code == 452).ToList();
            if (!tx.Completed || followUp.Count == 0)
            {
                break;
            }

            LogFollowUp(_logger, request.QueueId, host, followUp.Count);
            batch = followUp;
            first = false;
        }

        return new Session(replies, maybeDelivered, client.OffersDsn, reusable, RetryOnFreshConnection: false);
    }

    /// <summary>
    /// Decides, from this server's EHLO, which recipients can be sent at all and whether SMTPUTF8
    /// goes with MAIL. Nothing is converted: a conversion would change the stored bytes (rule 3).
    /// </summary>
    private static async Task<(List<RecipientState> Batch, bool SmtpUtf8)> FitToServerAsync(
        RelaySmtpClient client, string host, DeliveryRequest request, string sender, IReadOnlyList<RecipientState> recipients, StoredBody body, Dictionary<RecipientState, SmtpReply> replies, CancellationToken cancellationToken)
    {
        var batch = recipients.ToList();
        var international = request.Parameters.SmtpUtf8 || !Ascii.IsValid(sender) || batch.Any(r => !Ascii.IsValid(r.Address));
        var smtpUtf8 = international && client.Capabilities.HasFlag(SmtpCapabilities.UTF8);
        if (international && !smtpUtf8)
        {
            // RFC 6531 §3.4: no internationalized address and no UTF-8 header to a server without
            // SMTPUTF8. A recipient with an ASCII address can still go when the rest of the message is ASCII.
            var whole = !Ascii.IsValid(sender) || (request.Parameters.SmtpUtf8 && await body.HeaderHasEightBitAsync(cancellationToken).ConfigureAwait(false));
            foreach (var recipient in recipients)
            {
                if (whole || !Ascii.IsValid(recipient.Address))
                {
                    replies[recipient] = new SmtpReply(553, "5.6.7", $"{host} does not support SMTPUTF8, which this message needs", FromRemote: false);
                    batch.Remove(recipient);
                }
            }
        }

        if (batch.Count > 0
            && !client.Capabilities.HasFlag(SmtpCapabilities.EightBitMime)
            && string.Equals(request.Parameters.Body, "8BITMIME", StringComparison.OrdinalIgnoreCase)
            && await body.HasEightBitAsync(cancellationToken).ConfigureAwait(false))
        {
            // RFC 6152 §3 allows converting a MIME message to 7 bit, but that changes the bytes the
            // sender signed; the message waits for a server that takes 8-bit data (or expires).
            foreach (var recipient in batch)
            {
                replies[recipient] = SmtpReply.LocalTransient("4.6.3", $"{host} does not support 8BITMIME and the message has 8-bit data, which is not converted");
            }

            batch.Clear();
        }

        return (batch, smtpUtf8);
    }

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
        // A blob download may not be seekable; the body is read more than once (checks, retries).
        var file = new FileStream(Path.GetTempFileName(), FileMode.Create, FileAccess.ReadWrite, FileShare.None, 81920, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        await source.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
        file.Position = 0;
        return file;
    }

    /// <summary>
    /// The stored body, opened on the first send of a delivery and kept for follow-up transactions,
    /// the next host and a retry on a fresh connection; each send rewinds it. Never parsed.
    /// </summary>
    private sealed class StoredBody(DeliveryRequest request) : IAsyncDisposable
    {
        private Stream? _stream;
        private Stream? _seekable;
        private bool? _eightBit;
        private bool? _headerEightBit;

        public async Task<Stream> GetAsync(CancellationToken cancellationToken)
        {
            if (_seekable is null)
            {
                _stream = await request.OpenBody(cancellationToken).ConfigureAwait(false);
                _seekable = _stream.CanSeek ? _stream : await CopyToTemporaryFileAsync(_stream, cancellationToken).ConfigureAwait(false);
            }

            _seekable.Position = 0;
            return _seekable;
        }

        /// <summary>Any octet above 127 anywhere in the body.</summary>
        public async Task<bool> HasEightBitAsync(CancellationToken cancellationToken) =>
            _eightBit ??= await ScanAsync(headerOnly: false, cancellationToken).ConfigureAwait(false);

        /// <summary>Any octet above 127 before the first empty line.</summary>
        public async Task<bool> HeaderHasEightBitAsync(CancellationToken cancellationToken) =>
            _headerEightBit ??= await ScanAsync(headerOnly: true, cancellationToken).ConfigureAwait(false);

        private async Task<bool> ScanAsync(bool headerOnly, CancellationToken cancellationToken)
        {
            var stream = await GetAsync(cancellationToken).ConfigureAwait(false);
            var buffer = new byte[81920];
            var lineLength = 0;
            int read;
            while ((read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                for (var i = 0; i < read; i++)
                {
                    var b = buffer[i];
                    if (b > 127)
                    {
                        return true;
                    }

                    if (b == (byte)'\n')
                    {
                        if (headerOnly && lineLength == 0)
                        {
                            return false;
                        }

                        lineLength = 0;
                    }
                    else if (b != (byte)'\r')
                    {
                        lineLength++;
                    }
                }
            }

            return false;
        }

        public async ValueTask DisposeAsync()
        {
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

    private sealed record Envelope(string Sender, IReadOnlyList<RecipientState> Recipients);

    /// <summary>What one session did: a reply for each recipient it was given, and those that may have been delivered although no reply said so.</summary>
    private sealed record Session(
        IReadOnlyDictionary<RecipientState, SmtpReply> Replies,
        IReadOnlySet<RecipientState> MaybeDelivered,
        bool OffersDsn,
        bool Reusable,
        bool RetryOnFreshConnection);

    private readonly record struct PoolKey(string Host, System.Net.IPAddress Address, int Port, DeliveryTls Tls);

    private readonly record struct IdleClient(RelaySmtpClient Client, long Since);

    [LoggerMessage(EventId = 3327, Level = LogLevel.Information, Message = "{Host} [{Address}] refused a session for load; sessions towards it now at most {Limit}")]
    private static partial void LogBusy(ILogger logger, string host, System.Net.IPAddress address, int limit);

    [LoggerMessage(EventId = 3325, Level = LogLevel.Information, Message = "{Count} recipient(s) of {QueueId} deferred by {Host}; trying the next host of the route")]
    private static partial void LogNextHost(ILogger logger, string queueId, string host, int count);

    [LoggerMessage(EventId = 3326, Level = LogLevel.Information, Message = "{Host} took {QueueId} for some recipients and answered 452 for {Count}; sending those in a follow-up transaction")]
    private static partial void LogFollowUp(ILogger logger, string queueId, string host, int count);

    [LoggerMessage(EventId = 3322, Level = LogLevel.Information, Message = "Reused connection to {Host} was closed before {QueueId} was sent; trying a fresh connection")]
    private static partial void LogStaleConnection(ILogger logger, string queueId, string host);

    [LoggerMessage(EventId = 3320, Level = LogLevel.Information, Message = "No recipient of {QueueId} accepted by {Host}; each recipient keeps its own RCPT reply")]
    private static partial void LogNoRecipientAccepted(ILogger logger, string queueId, string host);

    [LoggerMessage(EventId = 3323, Level = LogLevel.Warning, Message = "A recipient of {QueueId} has an address that cannot be written in RCPT TO; it fails with 553 5.1.3")]
    private static partial void LogUnwritableRecipient(ILogger logger, string queueId);

    [LoggerMessage(EventId = 3324, Level = LogLevel.Warning, Message = "The sender of {QueueId} has an address that cannot be written in MAIL FROM; the message fails with 553 5.1.7 and no DSN")]
    private static partial void LogUnwritableSender(ILogger logger, string queueId);

    [LoggerMessage(EventId = 3321, Level = LogLevel.Warning, Message = "Session with {Host} for {QueueId} failed (after DATA: {AfterData})")]
    private static partial void LogSessionLost(ILogger logger, Exception exception, string queueId, string host, bool afterData);
}
