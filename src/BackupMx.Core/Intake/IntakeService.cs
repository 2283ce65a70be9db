// Intake: turns one received message into spool records.
//
// Recipients are grouped by destination domain and each group becomes one record
// with its own queue id and its own copy of the body (with our Received header).
// Every group's body and then its record are written first; the message is
// accepted (250, rule 1) the moment the last record is committed. Only then are
// the wake-ups scheduled: a wake-up due now can start a delivery at once, so
// scheduling any of them earlier would let a later failure answer 451 for mail
// that is already on its way, and the sender's retry would deliver it twice. A
// wake-up that cannot be scheduled is logged and left to the sweep, which
// re-schedules every due record (rule 2); it never undoes a committed message.
// A failure before every record is committed removes whatever was written for
// this message, record before body, and the receiver answers 451 4.3.0 (452 when
// the storage is full). A record whose creation failed ambiguously (the service
// may have stored it) is looked up and removed too, and if that is not possible
// its body is kept: a record must never exist without its body.
//
// A message for a domain whose primary is known to be Down gets no attempt of its
// own: it waits, like everything else spooled for that domain, for the recovery
// flush (rule 7), with the first retry interval as the fallback. An attempt would
// only fail, and costs a claim, a connection and a release per message. The state
// is read again once the record is committed: a recovery recorded in between may
// have listed the domain before the record existed, so the message is made due
// here instead. Unknown (no probe yet) and Up mean an immediate attempt, as before.
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Core.Spool;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Intake;

public sealed partial class IntakeService(
    SpoolLedger ledger,
    IPrimaryStatusStore statuses,
    IOptions<BackupMxOptions> options,
    TimeProvider time,
    ILogger<IntakeService> logger)
{
    public async Task<IntakeResult> AcceptAsync(IncomingMessage message, CancellationToken cancellationToken)
    {
        var config = options.Value;
        var now = time.GetUtcNow();
        var groups = new List<(string Domain, List<IncomingRecipient> Recipients)>();
        foreach (var recipient in message.Recipients)
        {
            var domain = DomainOf(recipient.Address);
            // A reload may have removed the domain since RCPT accepted it: that acceptance stands.
            var configured = config.FindDomainForDelivery(domain);
            if (configured is null)
            {
                // The receiver's RCPT filter refuses these; reaching here is a bug, not a reason to relay.
                LogUnconfiguredRecipient(logger, recipient.Address);
                return new IntakeResult.Failed($"recipient domain '{domain}' is not configured");
            }

            var group = groups.Find(g => g.Domain == configured.Name);
            if (group.Recipients is null)
            {
                groups.Add((configured.Name, [recipient]));
            }
            else
            {
                group.Recipients.Add(recipient);
            }
        }

        if (groups.Count == 0)
        {
            return new IntakeResult.Failed("no recipients");
        }

        var baseId = QueueId.New(now);
        var expiresAt = now + config.Delivery.Retention;
        var firstRetryAt = now + config.Delivery.EffectiveRetryIntervals[0];
        if (firstRetryAt > expiresAt)
        {
            firstRetryAt = expiresAt;
        }

        // One span per message, named by its (first) queue id, so a trace in the receiver can be
        // joined with the Forward spans and the logs of the same message.
        using var activity = Telemetry.ActivitySource.StartActivity("Intake");
        activity?.SetTag(Telemetry.QueueIdTag, baseId);
        activity?.SetTag(Telemetry.DomainTag, groups[0].Domain);
        if (groups.Count > 1)
        {
            activity?.SetTag(Telemetry.QueueIdsTag, Enumerable.Range(0, groups.Count).Select(i => i == 0 ? baseId : $"{baseId}-{i + 1}").ToArray());
        }

        var acceptance = ledger.BeginAccept();
        try
        {
            for (var i = 0; i < groups.Count; i++)
            {
                var (domain, recipients) = groups[i];
                var primaryDown = await IsPrimaryDownAsync(domain, cancellationToken).ConfigureAwait(false);
                var queueId = i == 0 ? baseId : $"{baseId}-{i + 1}";
                var header = ReceivedHeader.Build(
                    config.HostName,
                    message.HeloName,
                    message.ClientAddress,
                    queueId,
                    recipients.Count == 1 ? recipients[0].Address : null,
                    message.Secure,
                    now,
                    message.Extended);

                long length;
                await using (var content = new PrefixedStream(header, message.Content.OpenRead()))
                {
                    length = await acceptance.WriteBodyAsync(queueId, content, cancellationToken).ConfigureAwait(false);
                }

                var record = new SpoolRecord
                {
                    QueueId = queueId,
                    Kind = MessageKind.Relay,
                    Domain = domain,
                    Sender = message.Sender,
                    Parameters = message.Parameters,
                    Recipients = recipients.Select(r => new RecipientState
                    {
                        Address = r.Address,
                        Notify = r.Notify,
                        OriginalRecipient = r.OriginalRecipient,
                    }).ToList(),
                    ReceivedAt = now,
                    ExpiresAt = expiresAt,
                    NextAttemptAt = primaryDown ? firstRetryAt : now,
                    BodyLength = length,
                    ClientAddress = message.ClientAddress,
                    HeloName = message.HeloName,
                };
                await acceptance.CommitAsync(record, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            LogSpoolFailure(logger, ex, baseId);
            activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, "spool write failed");
            foreach (var (queueId, error) in await acceptance.UndoAsync().ConfigureAwait(false))
            {
                LogUndoFailed(logger, error, queueId);
            }

            Telemetry.MessagesRefused.Add(1);
            return new IntakeResult.Failed(ex.Message) { InsufficientStorage = StorageErrors.IsOutOfSpace(ex) };
        }

        // Every record is committed: the message is accepted whatever happens from here on.
        var written = acceptance.Committed;
        foreach (var record in written)
        {
            await WakeAsync(record, now, cancellationToken).ConfigureAwait(false);
        }

        foreach (var record in written)
        {
            LogAccepted(logger, record.QueueId, record.Domain, record.Sender, record.Recipients.Count, record.BodyLength, message.ClientAddress);
            Telemetry.MessagesAccepted.Add(1, new KeyValuePair<string, object?>(Telemetry.DomainMetricTag, record.Domain));
        }

        return new IntakeResult.Accepted(written.Select(r => r.QueueId).ToList());
    }

    /// <summary>
    /// Whether the primary is known to be down. The answer only decides when the first attempt comes,
    /// so a status that cannot be read never refuses mail: it counts as not down (an attempt at once).
    /// </summary>
    private async Task<bool> IsPrimaryDownAsync(string domain, CancellationToken cancellationToken)
    {
        try
        {
            return (await statuses.GetAsync(domain, cancellationToken).ConfigureAwait(false))?.Status.State == PrimaryState.Down;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogStatusUnreadable(logger, ex, domain);
            return false;
        }
    }

    /// <summary>
    /// Makes a committed record due at once if its primary came back meanwhile, then schedules its
    /// first wake-up. Nothing here may fail the message: a record left without a wake-up is due
    /// (or becomes due at its first retry), and the sweep re-schedules it.
    /// </summary>
    private async Task WakeAsync(SpoolRecord record, DateTimeOffset now, CancellationToken cancellationToken)
    {
        try
        {
            if (record.NextAttemptAt > now && !await IsPrimaryDownAsync(record.Domain, cancellationToken).ConfigureAwait(false))
            {
                // The primary came back while this message was written: the recovery flush may have missed it.
                if (await ledger.MakeDueNowAsync(record, now, cancellationToken).ConfigureAwait(false) is not { } due)
                {
                    // Changed by a flush or a sweep already, which also woke it.
                    return;
                }

                record = due;
            }
        }
        catch (Exception ex)
        {
            // It keeps its first retry, like any message whose primary is down.
            LogWakeUpNotScheduled(logger, ex, record.QueueId);
            return;
        }

        try
        {
            var scheduled = await ledger.ScheduleFirstWakeUpAsync(record, record.NextAttemptAt, cancellationToken).ConfigureAwait(false);
            if (!scheduled.TokenKept)
            {
                LogTokenNotSaved(logger, scheduled.TokenError, record.QueueId);
            }
        }
        catch (Exception ex)
        {
            LogWakeUpNotScheduled(logger, ex, record.QueueId);
        }
    }

    public static string DomainOf(string address)
    {
        var at = address.LastIndexOf('@');
        return at < 0 ? string.Empty : address[(at + 1)..].TrimEnd('.').ToLowerInvariant();
    }

    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "Accepted {QueueId} for {Domain} from <{Sender}>: {RecipientCount} recipient(s), {Bytes} bytes, client {ClientAddress}")]
    private static partial void LogAccepted(ILogger logger, string queueId, string domain, string sender, int recipientCount, long bytes, string? clientAddress);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Error, Message = "Spool write failed for {QueueId}; the client is told to retry")]
    private static partial void LogSpoolFailure(ILogger logger, Exception exception, string queueId);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Error, Message = "Could not remove partly written {QueueId} after a spool failure")]
    private static partial void LogUndoFailed(ILogger logger, Exception exception, string queueId);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Warning, Message = "Wake-up token of {QueueId} not saved; a flush will not cancel its wake-up")]
    private static partial void LogTokenNotSaved(ILogger logger, Exception? exception, string queueId);

    [LoggerMessage(EventId = 1106, Level = LogLevel.Warning, Message = "Accepted {QueueId} but could not schedule its wake-up; the sweep will")]
    private static partial void LogWakeUpNotScheduled(ILogger logger, Exception exception, string queueId);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Warning, Message = "Could not read the primary status of {Domain}; the new message is tried at once")]
    private static partial void LogStatusUnreadable(ILogger logger, Exception exception, string domain);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Error, Message = "Recipient {Recipient} reached intake although its domain is not configured")]
    private static partial void LogUnconfiguredRecipient(ILogger logger, string recipient);
}
