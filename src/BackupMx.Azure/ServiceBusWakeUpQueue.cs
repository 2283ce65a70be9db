// Wake-ups as Service Bus scheduled messages.
//
// A wake-up is one small message on one queue (default "wakeups"): application
// properties "domain" and "queueId" (and the same as a JSON body, for people and
// tools that only show bodies), scheduled for the record's next attempt. The
// schedule call returns the message's sequence number, which is the wake-up token
// the spool keeps so a flush can cancel the old one.
//
// Many wake-ups due at the same time (a flush of a domain) go out in calls of at most
// MaxWakeUpsPerSchedule messages each (ScheduleMessagesAsync), which hands back every
// message's sequence number in order and schedules all of a call's messages or none.
//
// MessageId is "<queue id>:<due ticks>": if the queue has duplicate detection, a
// retried schedule of the same attempt is dropped, while a genuinely new schedule
// (a later retry, a flush to "now") has a new id and is never swallowed. The due
// time also travels as property "dueAt" (UTC ticks): Service Bus fires by its own
// clock, and the forwarder, on a machine whose clock may be behind, uses it to
// recognise the record's own wake-up instead of dropping it as early.
//
// Receiving is peek-lock: a wake-up is completed only after the state it led to is
// written, and one that is abandoned (or whose worker dies) comes back. Wake-ups are
// hints (rule 2), so a lost lock on complete is logged, not thrown: the duplicate that
// follows finds the record leased, changed or gone and does nothing.
using System.Globalization;
using System.Text.Json;
using Azure.Messaging.ServiceBus;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupMx.Azure;

public sealed partial class ServiceBusWakeUpQueue : IWakeUpQueue, IWakeUpSource
{
    public const string DomainProperty = "domain";
    public const string QueueIdProperty = "queueId";
    public const string DueAtProperty = "dueAt";
    public const string WakeUpSubject = "wakeup";

    /// <summary>
    /// Wake-ups per schedule call. A schedule call is one request, and Service Bus refuses a batch
    /// larger than 256 KB on the Standard tier (1 MB on Premium). A wake-up message is under 1 KB even
    /// with a 253-character domain, so 100 stay far below the smaller limit whatever the tier.
    /// </summary>
    public const int MaxWakeUpsPerSchedule = 100;

    private readonly ServiceBusSender _sender;
    private readonly ServiceBusReceiver? _receiver;
    private readonly ILogger _logger;

    /// <param name="receiver">Null for hosts that only schedule (the SMTP receiver container).</param>
    public ServiceBusWakeUpQueue(ServiceBusSender sender, ServiceBusReceiver? receiver, ILogger<ServiceBusWakeUpQueue>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(sender);
        _sender = sender;
        _receiver = receiver;
        _logger = logger ?? NullLogger<ServiceBusWakeUpQueue>.Instance;
    }

    public static string MessageIdFor(WakeUp wakeUp, DateTimeOffset dueAt) =>
        string.Create(CultureInfo.InvariantCulture, $"{wakeUp.QueueId}:{dueAt.UtcTicks}");

    public async Task<string?> ScheduleAsync(WakeUp wakeUp, DateTimeOffset dueAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(wakeUp);
        var sequenceNumber = await _sender.ScheduleMessageAsync(MessageFor(wakeUp, dueAt), dueAt, cancellationToken).ConfigureAwait(false);
        LogScheduled(_logger, wakeUp.QueueId, dueAt, sequenceNumber);
        return TokenOf(sequenceNumber);
    }

    /// <summary>
    /// Schedules the wake-ups in calls of at most <see cref="MaxWakeUpsPerSchedule"/>. Each call is
    /// all or nothing; a failed one ends the whole, with the calls before it scheduled.
    /// </summary>
    public async Task<IReadOnlyList<string?>> ScheduleManyAsync(IReadOnlyList<WakeUp> wakeUps, DateTimeOffset dueAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(wakeUps);
        var tokens = new List<string?>(wakeUps.Count);
        foreach (var chunk in wakeUps.Chunk(MaxWakeUpsPerSchedule))
        {
            var sequenceNumbers = await _sender.ScheduleMessagesAsync(chunk.Select(w => MessageFor(w, dueAt)), dueAt, cancellationToken).ConfigureAwait(false);
            if (sequenceNumbers.Count != chunk.Length)
            {
                throw new InvalidOperationException($"Service Bus returned {sequenceNumbers.Count} sequence numbers for {chunk.Length} scheduled messages.");
            }

            tokens.AddRange(sequenceNumbers.Select(TokenOf));
            LogScheduledMany(_logger, chunk.Length, dueAt, sequenceNumbers[0]);
        }

        return tokens;
    }

    private static ServiceBusMessage MessageFor(WakeUp wakeUp, DateTimeOffset dueAt)
    {
        ArgumentNullException.ThrowIfNull(wakeUp);
        var message = new ServiceBusMessage(JsonSerializer.SerializeToUtf8Bytes(new WakeUpBody(wakeUp.Domain, wakeUp.QueueId), WakeUpJsonContext.Default.WakeUpBody))
        {
            MessageId = MessageIdFor(wakeUp, dueAt),
            Subject = WakeUpSubject,
            ContentType = "application/json",
        };
        message.ApplicationProperties[DomainProperty] = wakeUp.Domain;
        message.ApplicationProperties[QueueIdProperty] = wakeUp.QueueId;
        message.ApplicationProperties[DueAtProperty] = dueAt.UtcTicks;
        return message;
    }

    private static string TokenOf(long sequenceNumber) => sequenceNumber.ToString(CultureInfo.InvariantCulture);

    public async Task CancelAsync(string token, CancellationToken cancellationToken)
    {
        if (!long.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var sequenceNumber))
        {
            // A token from another scheduler (say, records spooled in embedded mode): nothing to cancel here.
            LogForeignToken(_logger, token);
            return;
        }

        try
        {
            await _sender.CancelScheduledMessageAsync(sequenceNumber, cancellationToken).ConfigureAwait(false);
        }
        catch (ServiceBusException ex) when (ex.Reason == ServiceBusFailureReason.MessageNotFound)
        {
            // Already fired (and maybe completed) or never existed: exactly what "best effort" allows.
            LogCancelNotFound(_logger, sequenceNumber);
        }
    }

    public async Task<IReadOnlyList<ReceivedWakeUp>> ReceiveDueAsync(int maxCount, TimeSpan maxWait, CancellationToken cancellationToken)
    {
        var receiver = Receiver;
        var messages = await receiver.ReceiveMessagesAsync(maxCount, maxWait, cancellationToken).ConfigureAwait(false);
        var result = new List<ReceivedWakeUp>(messages.Count);
        foreach (var message in messages)
        {
            if (TryParse(message, out var wakeUp))
            {
                result.Add(new ReceivedWakeUp(wakeUp, new ServiceBusWakeUpReceipt(message)));
                continue;
            }

            // Retrying cannot fix a message we cannot read; park it where an operator can see it.
            LogMalformed(_logger, message.MessageId, message.SequenceNumber);
            try
            {
                await receiver.DeadLetterMessageAsync(message, "MalformedWakeUp", "No domain and queue id in the application properties or the body.", cancellationToken).ConfigureAwait(false);
            }
            catch (ServiceBusException ex) when (ex.Reason == ServiceBusFailureReason.MessageLockLost)
            {
                // It comes back and is dead-lettered next time; the good wake-ups of this batch must not be lost over it.
                LogLockLost(_logger, message.MessageId, "dead-letter");
            }
        }

        return result;
    }

    public async Task CompleteAsync(ReceivedWakeUp wakeUp, CancellationToken cancellationToken)
    {
        try
        {
            await Receiver.CompleteMessageAsync(MessageOf(wakeUp), cancellationToken).ConfigureAwait(false);
        }
        catch (ServiceBusException ex) when (ex.Reason == ServiceBusFailureReason.MessageLockLost)
        {
            LogLockLost(_logger, wakeUp.WakeUp.QueueId, "complete");
        }
    }

    public async Task AbandonAsync(ReceivedWakeUp wakeUp, CancellationToken cancellationToken)
    {
        try
        {
            await Receiver.AbandonMessageAsync(MessageOf(wakeUp), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (ServiceBusException ex) when (ex.Reason == ServiceBusFailureReason.MessageLockLost)
        {
            // The lock ran out, so the message is back on the queue anyway.
            LogLockLost(_logger, wakeUp.WakeUp.QueueId, "abandon");
        }
    }

    internal static bool TryParse(ServiceBusReceivedMessage message, out WakeUp wakeUp)
    {
        if (message.ApplicationProperties.TryGetValue(DomainProperty, out var d) && d is string domain && domain.Length > 0
            && message.ApplicationProperties.TryGetValue(QueueIdProperty, out var q) && q is string queueId && queueId.Length > 0)
        {
            wakeUp = new WakeUp(domain, queueId) { DueAt = DueAtOf(message, queueId) };
            return true;
        }

        try
        {
            var body = JsonSerializer.Deserialize(message.Body.ToMemory().Span, WakeUpJsonContext.Default.WakeUpBody);
            if (body is { Domain.Length: > 0, QueueId.Length: > 0 })
            {
                wakeUp = new WakeUp(body.Domain, body.QueueId) { DueAt = DueAtOf(message, body.QueueId) };
                return true;
            }
        }
        catch (JsonException)
        {
        }

        wakeUp = null!;
        return false;
    }

    /// <summary>The scheduled time: the property, or the suffix of a message id made by <see cref="MessageIdFor"/>.</summary>
    private static DateTimeOffset? DueAtOf(ServiceBusReceivedMessage message, string queueId)
    {
        if (message.ApplicationProperties.TryGetValue(DueAtProperty, out var value) && value is long ticks)
        {
            return TicksToInstant(ticks);
        }

        var id = message.MessageId;
        return id is not null && id.Length > queueId.Length + 1 && id.StartsWith(queueId, StringComparison.Ordinal) && id[queueId.Length] == ':'
            && long.TryParse(id.AsSpan(queueId.Length + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var fromId)
            ? TicksToInstant(fromId)
            : null;
    }

    private static DateTimeOffset? TicksToInstant(long ticks) =>
        ticks >= 0 && ticks <= DateTimeOffset.MaxValue.UtcTicks ? new DateTimeOffset(ticks, TimeSpan.Zero) : null;

    private ServiceBusReceiver Receiver =>
        _receiver ?? throw new InvalidOperationException("This wake-up queue was created without a receiver; it can only schedule.");

    private static ServiceBusReceivedMessage MessageOf(ReceivedWakeUp wakeUp) =>
        (wakeUp.Receipt as ServiceBusWakeUpReceipt)?.Message
        ?? throw new ArgumentException("The wake-up was not received from Service Bus.", nameof(wakeUp));

    [LoggerMessage(EventId = 5720, Level = LogLevel.Debug, Message = "Scheduled wake-up of {QueueId} at {DueAt} as sequence number {SequenceNumber}")]
    private static partial void LogScheduled(ILogger logger, string queueId, DateTimeOffset dueAt, long sequenceNumber);

    [LoggerMessage(EventId = 5725, Level = LogLevel.Debug, Message = "Scheduled {Count} wake-ups at {DueAt} from sequence number {FirstSequenceNumber}")]
    private static partial void LogScheduledMany(ILogger logger, int count, DateTimeOffset dueAt, long firstSequenceNumber);

    [LoggerMessage(EventId = 5721, Level = LogLevel.Debug, Message = "Scheduled wake-up {SequenceNumber} was already gone when cancelled")]
    private static partial void LogCancelNotFound(ILogger logger, long sequenceNumber);

    [LoggerMessage(EventId = 5722, Level = LogLevel.Information, Message = "Ignored wake-up token {Token}: not a Service Bus sequence number")]
    private static partial void LogForeignToken(ILogger logger, string token);

    [LoggerMessage(EventId = 5723, Level = LogLevel.Warning, Message = "Dead-lettered malformed wake-up {MessageId} (sequence number {SequenceNumber})")]
    private static partial void LogMalformed(ILogger logger, string messageId, long sequenceNumber);

    [LoggerMessage(EventId = 5724, Level = LogLevel.Information, Message = "Lock on the wake-up of {QueueId} was lost before {Operation}; it will be redelivered and found handled")]
    private static partial void LogLockLost(ILogger logger, string queueId, string operation);
}

/// <summary>The locked Service Bus message a wake-up came in, which completing or abandoning it needs.</summary>
public sealed class ServiceBusWakeUpReceipt(ServiceBusReceivedMessage message) : WakeUpReceipt
{
    public ServiceBusReceivedMessage Message { get; } = message;
}

internal sealed record WakeUpBody(string Domain, string QueueId);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
[System.Text.Json.Serialization.JsonSerializable(typeof(WakeUpBody))]
internal sealed partial class WakeUpJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
