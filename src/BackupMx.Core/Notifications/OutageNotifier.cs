// Tells a domain's owner when its primary is down while we hold mail for it, reminds them daily,
// and tells them again once the backlog is delivered. It only reads the spool and the primaries'
// states (the same view as the dashboard), one run at a time: the embedded server runs it in a loop
// of its own, the function app after each probe of the primaries. A notice that cannot be sent is
// retried with back-off at later runs, logged and counted, and never holds up a delivery.
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net.Http.Json;
using BackupMx.Core.Configuration;
using BackupMx.Core.Inspection;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Notifications;

public sealed partial class OutageNotifier
{
    public const string FailedName = "backupmx.notifications.failed";
    public const string SentName = "backupmx.notifications.sent";

    /// <summary>How long a webhook call may take before it counts as failed and is retried.</summary>
    public static readonly TimeSpan WebhookTimeout = TimeSpan.FromSeconds(15);

    private readonly QueueInspector _inspector;
    private readonly IMessageTransport _transport;
    private readonly HttpClient _http;
    private readonly TimeProvider _time;
    private readonly NotificationOptions _options;
    private readonly IReadOnlyDictionary<string, IReadOnlyList<string>> _addresses;
    private readonly string _hostName;
    private readonly ILogger _logger;
    private readonly Counter<long> _sent;
    private readonly Counter<long> _failed;
    private readonly INoticeStateStore _store;
    private Dictionary<string, OutageState> _outages = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentQueue<Pending> _pending = new();
    private bool _loaded;

    public OutageNotifier(
        QueueInspector inspector,
        IMessageTransport transport,
        WebhookClient http,
        TimeProvider time,
        IOptions<NotificationOptions> options,
        IOptions<List<NotifiedDomain>> domains,
        IOptions<BackupMxOptions> core,
        INoticeStateStore store,
        IMeterFactory meterFactory,
        ILogger<OutageNotifier> logger)
    {
        _inspector = inspector;
        _transport = transport;
        _http = http.Client;
        _time = time;
        _options = options.Value;
        _addresses = domains.Value
            .Where(d => d.Name.Length > 0)
            .GroupBy(d => d.Name, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.SelectMany(d => d.NotifyAddresses).ToList(), StringComparer.OrdinalIgnoreCase);
        _hostName = core.Value.HostName;
        _store = store;
        _logger = logger;
        var meter = meterFactory.Create(Telemetry.Name);
        _sent = meter.CreateCounter<long>(SentName, "{notice}", "Outage notices sent, per channel.");
        _failed = meter.CreateCounter<long>(FailedName, "{notice}", "Outage notices given up after their last attempt, per channel.");
    }

    /// <summary>False when no domain has an address and there is no webhook: nothing to do, ever.</summary>
    public bool AnyChannel => !string.IsNullOrWhiteSpace(_options.Webhook) || _addresses.Values.Any(a => a.Count > 0);

    /// <summary>
    /// One run: the state as last saved (read once, or every time when the store is shared), one look
    /// at every domain, the notices that are due sent, and the state saved. Never throws but for
    /// cancellation: a failure is logged and the next run tries again.
    /// </summary>
    public async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        if (!AnyChannel)
        {
            return;
        }

        await LoadAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await CheckAsync(cancellationToken).ConfigureAwait(false);
            await SendPendingAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogCheckFailed(_logger, ex);
        }

        await SaveAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One look at every domain; queues the notices that are due.</summary>
    internal async Task CheckAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        foreach (var summary in await _inspector.SummarizeAsync(cancellationToken).ConfigureAwait(false))
        {
            _outages.TryGetValue(summary.Domain, out var outage);
            var down = summary.PrimaryState == PrimaryState.Down && summary.PrimaryStateSince is not null;
            if (outage is null)
            {
                if (!down || summary.Messages == 0 || now - summary.PrimaryStateSince!.Value < _options.After)
                {
                    continue;
                }

                outage = new OutageState { Since = summary.PrimaryStateSince!.Value, LastNotice = now };
                _outages[summary.Domain] = outage;
                await TrackAsync(summary.Domain, outage, now, cancellationToken).ConfigureAwait(false);
                Queue(OutageNotice.Create(OutageEvent.Down, summary.Domain, outage.Since, summary.Messages, 0, TimeSpan.Zero, _hostName), now);
                continue;
            }

            await TrackAsync(summary.Domain, outage, now, cancellationToken).ConfigureAwait(false);
            if (summary.Messages == 0 && summary.PrimaryState != PrimaryState.Down)
            {
                _outages.Remove(summary.Domain);
                Queue(OutageNotice.Create(OutageEvent.Recovered, summary.Domain, outage.Since, 0, outage.Delivered, outage.LongestWait, _hostName), now);
            }
            else if (summary.Messages > 0 && now - outage.LastNotice >= _options.Reminder)
            {
                outage.LastNotice = now;
                Queue(OutageNotice.Create(OutageEvent.Reminder, summary.Domain, outage.Since, summary.Messages, 0, TimeSpan.Zero, _hostName), now);
            }
        }
    }

    // Which messages of the outage have left the spool since the last look, and how long they had waited.
    private async Task TrackAsync(string domain, OutageState outage, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var queued = await _inspector.ListAsync(domain, cancellationToken).ConfigureAwait(false);
        var present = queued.Select(m => m.QueueId).ToHashSet(StringComparer.Ordinal);
        foreach (var (id, received) in outage.Waiting.ToList())
        {
            if (!present.Contains(id))
            {
                outage.Waiting.Remove(id);
                outage.Delivered++;
                var wait = now - received;
                if (wait > outage.LongestWait)
                {
                    outage.LongestWait = wait;
                }
            }
        }

        foreach (var message in queued)
        {
            outage.Waiting.TryAdd(message.QueueId, message.ReceivedAt);
        }
    }

    private void Queue(OutageNotice notice, DateTimeOffset now)
    {
        LogNoticeDue(_logger, notice.Event, notice.Domain, notice.Waiting, notice.Delivered);
        if (!string.IsNullOrWhiteSpace(_options.Webhook))
        {
            _pending.Enqueue(new Pending(notice, Channel.Webhook, [], 0, now));
        }

        var recipients = _addresses.GetValueOrDefault(notice.Domain) ?? [];
        if (recipients.Count > 0)
        {
            _pending.Enqueue(new Pending(notice, Channel.Email, recipients, 0, now));
        }
    }

    internal async Task SendPendingAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var later = new List<Pending>();
        while (_pending.TryDequeue(out var pending))
        {
            if (pending.NotBefore > now)
            {
                later.Add(pending);
                continue;
            }

            var error = await SendAsync(pending, cancellationToken).ConfigureAwait(false);
            var channel = pending.Channel.ToString().ToLowerInvariant();
            if (error is null)
            {
                _sent.Add(1, new KeyValuePair<string, object?>("channel", channel));
                continue;
            }

            var attempts = pending.Attempts + 1;
            if (attempts >= _options.MaxAttempts)
            {
                LogNoticeGivenUp(_logger, pending.Notice.Event, pending.Notice.Domain, channel, attempts, error);
                _failed.Add(1, new KeyValuePair<string, object?>("channel", channel));
                continue;
            }

            // 1, 2, 4, 8 ... check intervals, at most an hour apart.
            var delay = TimeSpan.FromTicks(Math.Min(_options.CheckInterval.Ticks << Math.Min(attempts - 1, 16), TimeSpan.FromHours(1).Ticks));
            LogNoticeFailed(_logger, pending.Notice.Event, pending.Notice.Domain, channel, attempts, error, delay);
            later.Add(pending with { Attempts = attempts, NotBefore = now + delay });
        }

        foreach (var pending in later)
        {
            _pending.Enqueue(pending);
        }
    }

    private async Task<string?> SendAsync(Pending pending, CancellationToken cancellationToken)
    {
        try
        {
            if (pending.Channel == Channel.Webhook)
            {
                // On the TimeProvider like every other clock here: an answer given up on may still have
                // been taken, and the retry then sends the notice a second time.
                using var timeout = new CancellationTokenSource(WebhookTimeout, _time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
                using var response = await _http.PostAsJsonAsync(_options.Webhook, pending.Notice, linked.Token).ConfigureAwait(false);
                return response.IsSuccessStatusCode ? null : $"HTTP {(int)response.StatusCode}";
            }

            return await EmailAsync(pending, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return ex.Message;
        }
    }

    // Through the bounce route (Bounce:SmartHost, or each recipient domain's MX), from postmaster.
    private async Task<string?> EmailAsync(Pending pending, CancellationToken cancellationToken)
    {
        var from = "postmaster@" + _hostName;
        var errors = new List<string>();
        foreach (var group in pending.Recipients.GroupBy(r => r[(r.LastIndexOf('@') + 1)..], StringComparer.OrdinalIgnoreCase))
        {
            var body = pending.Notice.ToMessage(from, pending.Recipients, _time.GetUtcNow());
            var result = await _transport.DeliverAsync(
                new DeliveryRequest
                {
                    QueueId = "notice-" + Guid.NewGuid().ToString("N"),
                    Kind = MessageKind.Dsn,
                    Domain = group.Key,
                    Sender = from,
                    Parameters = new MailParameters(),
                    Recipients = group.Select(a => new RecipientState { Address = a }).ToList(),
                    BodyLength = body.Length,
                    OpenBody = _ => Task.FromResult<Stream>(new MemoryStream(body, writable: false)),
                },
                cancellationToken).ConfigureAwait(false);
            errors.AddRange(result.Outcomes.Where(o => o.Reply.Code is < 200 or >= 300).Select(o => $"{o.Recipient}: {o.Reply}"));
        }

        return errors.Count == 0 ? null : string.Join("; ", errors);
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        if (_loaded && !_store.Shared)
        {
            return;
        }

        NoticeState state;
        try
        {
            state = await _store.LoadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Unreadable: go on with what this process knows, or start afresh (a notice may go out
            // twice) rather than never notify again.
            LogStateUnreadable(_logger, _store.Where, ex);
            if (_loaded)
            {
                return;
            }

            state = new NoticeState();
        }

        _loaded = true;
        _outages = new Dictionary<string, OutageState>(state.Outages, StringComparer.OrdinalIgnoreCase);
        _pending.Clear();
        foreach (var p in state.Pending)
        {
            if (Enum.TryParse<Channel>(p.Channel, out var channel))
            {
                _pending.Enqueue(new Pending(p.Notice, channel, p.Recipients, p.Attempts, p.NotBefore));
            }
        }
    }

    private async Task SaveAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _store.SaveAsync(
                new NoticeState
                {
                    Outages = _outages,
                    Pending = _pending.Select(p => new PendingState(p.Notice, p.Channel.ToString(), p.Recipients, p.Attempts, p.NotBefore)).ToList(),
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogStateNotSaved(_logger, _store.Where, ex);
        }
    }

    [LoggerMessage(EventId = 1980, Level = LogLevel.Information, Message = "Outage notice '{Event}' for {Domain} due: {Waiting} message(s) waiting, {Delivered} delivered")]
    private static partial void LogNoticeDue(ILogger logger, string @event, string domain, int waiting, int delivered);

    [LoggerMessage(EventId = 1981, Level = LogLevel.Warning, Message = "Outage notice '{Event}' for {Domain} by {Channel} failed (attempt {Attempts}): {Error}; next try in {Delay}")]
    private static partial void LogNoticeFailed(ILogger logger, string @event, string domain, string channel, int attempts, string error, TimeSpan delay);

    [LoggerMessage(EventId = 1982, Level = LogLevel.Error, Message = "Outage notice '{Event}' for {Domain} by {Channel} given up after {Attempts} attempt(s): {Error}")]
    private static partial void LogNoticeGivenUp(ILogger logger, string @event, string domain, string channel, int attempts, string error);

    [LoggerMessage(EventId = 1983, Level = LogLevel.Error, Message = "Outage notices: a look at the domains failed; trying again at the next run")]
    private static partial void LogCheckFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1984, Level = LogLevel.Warning, Message = "Outage notices: the state in {Where} cannot be read; going on without it, so a notice of an outage already notified may go out again")]
    private static partial void LogStateUnreadable(ILogger logger, string where, Exception exception);

    [LoggerMessage(EventId = 1985, Level = LogLevel.Warning, Message = "Outage notices: the state cannot be saved to {Where}; after a restart a notice may go out again")]
    private static partial void LogStateNotSaved(ILogger logger, string where, Exception exception);

    private enum Channel
    {
        Webhook,
        Email,
    }

    private sealed record Pending(OutageNotice Notice, Channel Channel, IReadOnlyList<string> Recipients, int Attempts, DateTimeOffset NotBefore);
}

/// <summary>The one HttpClient the webhook needs, owned by the container.</summary>
public sealed class WebhookClient : IDisposable
{
    // No HttpClient timeout of its own: the notifier's WebhookTimeout is the one that counts.
    public HttpClient Client { get; } = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = Timeout.InfiniteTimeSpan };

    public void Dispose() => Client.Dispose();
}
