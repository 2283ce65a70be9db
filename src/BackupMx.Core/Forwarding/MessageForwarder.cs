// Forwarding: one attempt at one spooled message.
//
// A wake-up names a message; the spool record decides (rule 2). The forwarder
// claims the record with its ETag and a lease, so a duplicate wake-up finds it
// leased or changed and does nothing. It then delivers the pending recipients in
// one SMTP transaction and records each outcome (rule 4): 2xx delivered, 5xx
// failed, 4xx and every connection or protocol failure left pending for the next
// attempt on the retry schedule. The attempt as a whole is cut off at
// Delivery:AttemptTimeout, well before the lease ends, so a second worker never
// delivers the same message while this one still might. A body gone from the
// spool fails its recipients for good (5.3.0). At expiry the pending recipients
// fail with 4.4.7. Answers (2xx, 5xx) are committed before a DSN is queued or the
// primary reported, so neither can lose them. Failed recipients get one DSN,
// queued as a spool record of its own (deterministic id, so a crash and retry
// cannot queue it twice) and never sent to the null sender. So do delivered recipients that asked for NOTIFY=SUCCESS
// when the primary does not offer DSN: it never saw the request and will not
// report success, so we say "relayed" (RFC 3461 §5.2.2); a primary with DSN got
// NOTIFY, ORCPT, RET and ENVID and reports itself. Each recipient owed a notice
// is marked in the record with its outcome, and the record is finished only
// once that DSN is queued. A finished record is deleted, then its body. While a
// worker holds the lease the record is not due, so a crashed worker's message
// simply becomes due again when the lease runs out. An attempt that could not
// reach the primary, though the primary came back while it was under way, is
// followed at once by another instead of the retry interval (see Monitoring).
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using BackupMx.Core.Spool;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Forwarding;

public enum ForwardOutcome
{
    /// <summary>No such record: already finished, or the wake-up was stale.</summary>
    NotFound,

    /// <summary>Its next attempt is later (a stale or early wake-up).</summary>
    NotDue,

    /// <summary>Another worker holds it, or it changed under us.</summary>
    Busy,

    /// <summary>An attempt was made; some recipients are still pending.</summary>
    Deferred,

    /// <summary>Every recipient is delivered or failed and notified; the message is gone from the spool.</summary>
    Finished,
}

public sealed partial class MessageForwarder(
    SpoolLedger ledger,
    IBodyStore bodies,
    IMessageTransport transport,
    DsnQueue dsnQueue,
    PrimaryMonitor monitor,
    IOptions<BackupMxOptions> options,
    TimeProvider time,
    ILogger<MessageForwarder> logger)
{
    // Wake-ups may fire a little before the stored time (clock skew between machines).
    private static readonly TimeSpan EarlyTolerance = TimeSpan.FromSeconds(2);

    private readonly string _owner = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid():N}";

    public async Task<ForwardOutcome> ProcessAsync(WakeUp wakeUp, CancellationToken cancellationToken)
    {
        var record = await ledger.FindAsync(wakeUp.Domain, wakeUp.QueueId, cancellationToken).ConfigureAwait(false);
        if (record is null)
        {
            return ForwardOutcome.NotFound;
        }

        return await ProcessAsync(record, wakeUp.DueAt, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// One attempt at a record the caller has just read from the spool (the pump's listing),
    /// saving a second read. A stale copy is harmless: the claim is conditional on its ETag,
    /// so a record changed meanwhile comes back as <see cref="ForwardOutcome.Busy"/>.
    /// </summary>
    public Task<ForwardOutcome> ProcessAsync(SpoolRecord record, CancellationToken cancellationToken) =>
        ProcessAsync(record, null, cancellationToken);

    private async Task<ForwardOutcome> ProcessAsync(SpoolRecord record, DateTimeOffset? wakeUpDueAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        var now = time.GetUtcNow();
        var config = options.Value.Delivery;
        // The record's own wake-up is due by the queue's clock, whatever this machine's clock says.
        // A claim that meets a record changed without being claimed (intake and every release save
        // the wake-up token right after scheduling, and a wake-up due now can be read before that)
        // reads it again and asks this again, rather than leaving the message to the sweep.
        var claim = await ledger.ClaimAsync(
            record,
            _owner,
            now,
            config.LeaseDuration,
            r => r.NextAttemptAt <= now + EarlyTolerance || r.ExpiresAt <= now || (wakeUpDueAt is { } dueAt && dueAt == r.NextAttemptAt),
            cancellationToken).ConfigureAwait(false);
        switch (claim.Status)
        {
            case ClaimStatus.NotFound:
                return ForwardOutcome.NotFound;
            case ClaimStatus.NotDue:
                return ForwardOutcome.NotDue;
            case ClaimStatus.Busy:
                return ForwardOutcome.Busy;
        }

        record = claim.Record!;

        using var activity = Telemetry.ActivitySource.StartActivity("Forward");
        activity?.SetTag(Telemetry.QueueIdTag, record.QueueId);
        activity?.SetTag(Telemetry.DomainTag, record.Domain);

        DeliveryResult? attempt = null;
        var pendingBefore = record.PendingRecipients.Count();
        if (pendingBefore > 0)
        {
            if (now >= record.ExpiresAt)
            {
                record = Expire(record, now);
            }
            else
            {
                (record, attempt) = await AttemptAsync(record, now, cancellationToken).ConfigureAwait(false);
            }
        }

        // A primary seen again flushes its whole domain (in Azure mode one write per queued message). For a
        // finished message that happens after its outcome is committed: a crash during the flush
        // would otherwise find it still undelivered in the spool and send it a second time. A
        // message that stays queued reports first, while its lease keeps the flush from
        // resetting the retry it has just been given.
        var report = attempt is not null && record.Kind == MessageKind.Relay && !attempt.DecidedLocally && !attempt.ServerBusy;

        // Recipients answered for good (a 250 or a 5xx) are committed before anything else runs:
        // queuing a DSN and reporting the primary come after, and neither their failure, nor a
        // cancellation, nor a crash during them may lose the answers, or the next attempt would
        // deliver those recipients again. A message with nothing to do between the attempt and
        // its release is committed by the release alone.
        var decided = record.PendingRecipients.Count() < pendingBefore;
        if (decided && (record.Recipients.Any(r => r.NeedsNotification) || (report && !record.IsFinished)))
        {
            if (await ledger.SaveOutcomesAsync(record).ConfigureAwait(false) is not { } saved)
            {
                LogLostClaim(logger, record.QueueId);
                return ForwardOutcome.Busy;
            }

            record = saved;
        }

        record = await NotifyAsync(record, cancellationToken).ConfigureAwait(false);

        var finished = record.IsFinished;
        if (report && !finished)
        {
            await ReportPrimaryAsync(record, attempt!, now, cancellationToken).ConfigureAwait(false);
        }

        var (outcome, released) = await ReleaseAsync(record, cancellationToken).ConfigureAwait(false);
        if (report && finished)
        {
            await ReportPrimaryAsync(record, attempt!, now, cancellationToken).ConfigureAwait(false);
        }
        else if (report && outcome == ForwardOutcome.Deferred && !attempt!.ReachedServer)
        {
            await CatchUpMissedRecoveryAsync(released ?? record, now, cancellationToken).ConfigureAwait(false);
        }

        return outcome;
    }

    /// <summary>
    /// A recovery flush passes a leased message by, so one whose attempt began before the primary
    /// came back and then failed would wait out its whole retry interval. Asked here, after the
    /// release is committed, rather than by the flusher marking the leased record: the record stays
    /// the lease holder's alone to write (rule 2), and every order of events is covered, since a
    /// recovery recorded after this question finds the message unleased and flushes it itself.
    /// </summary>
    private async Task CatchUpMissedRecoveryAsync(SpoolRecord record, DateTimeOffset attemptStartedAt, CancellationToken cancellationToken)
    {
        try
        {
            await monitor.FlushIfRecoveredDuringAsync(record, attemptStartedAt, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The retry just committed and scheduled still stands, and the sweep re-schedules a due record.
            LogCatchUpFailed(logger, ex, record.QueueId);
        }
    }

    /// <summary>
    /// Evidence for the monitor. It never undoes the attempt: the outcome is committed (or about to be,
    /// by a write that does not depend on this), so a failure here, a cancellation included, is logged
    /// and the next probe or attempt reports again.
    /// </summary>
    private async Task ReportPrimaryAsync(SpoolRecord record, DeliveryResult result, DateTimeOffset attemptStartedAt, CancellationToken cancellationToken)
    {
        try
        {
            if (result.ReachedServer)
            {
                // A primary that answers is up: if it was down, everything else for it becomes due now.
                await monitor.ReportReachableAsync(record.Domain, result.RemoteHost, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await monitor.ReportUnreachableAsync(record.Domain, record.LastError, attemptStartedAt, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            LogReportFailed(logger, ex, record.Domain, record.QueueId);
        }
    }

    private async Task<(SpoolRecord Record, DeliveryResult Result)> AttemptAsync(SpoolRecord record, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var pending = record.PendingRecipients.ToList();
        DeliveryResult result;

        // Noted here rather than left to the transport's handling: whatever it makes of the
        // exception, a body that is gone can never be delivered, and retrying would only wait
        // out the retention before the same end.
        var bodyMissing = false;

        // The whole attempt ends well before the lease does, so no second worker can claim the
        // message while this one may still be delivering it (see DeliveryOptions.LeaseDuration).
        var limit = options.Value.Delivery.AttemptTimeout;
        using var deadline = new CancellationTokenSource(limit, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            result = await transport.DeliverAsync(
                new DeliveryRequest
                {
                    QueueId = record.QueueId,
                    Kind = record.Kind,
                    Domain = record.Domain,
                    Sender = record.Sender,
                    Parameters = record.Parameters,
                    Recipients = pending,
                    BodyLength = record.BodyLength,
                    OpenBody = async ct =>
                    {
                        try
                        {
                            return await bodies.OpenReadAsync(record.QueueId, ct).ConfigureAwait(false);
                        }
                        catch (BodyNotFoundException)
                        {
                            bodyMissing = true;
                            throw;
                        }
                    },
                },
                linked.Token).ConfigureAwait(false);
            if (bodyMissing)
            {
                result = BodyMissing(record, pending, null);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException ex) when (deadline.IsCancellationRequested)
        {
            // Whatever the primary said before the cut is lost with the connection; those recipients
            // retry like any other interrupted transaction. Nothing is learnt about the primary.
            LogAttemptTimedOut(logger, ex, record.QueueId, limit, pending.Count);
            result = DeliveryResult.AllRecipients(pending, SmtpReply.LocalTransient("4.4.2", $"delivery attempt cut off after {limit:c}"), null, reachedServer: false) with { DecidedLocally = true };
        }
        catch (Exception ex) when (bodyMissing || ex is BodyNotFoundException)
        {
            result = BodyMissing(record, pending, ex);
        }
        catch (Exception ex)
        {
            LogTransportError(logger, ex, record.QueueId);
            result = DeliveryResult.AllRecipients(pending, SmtpReply.LocalTransient("4.4.0", "delivery failed: " + ex.Message), null, reachedServer: false);
        }

        var byAddress = result.Outcomes.GroupBy(o => o.Recipient, StringComparer.OrdinalIgnoreCase).ToDictionary(g => g.Key, g => g.First().Reply, StringComparer.OrdinalIgnoreCase);
        var delivered = 0;
        var failed = 0;
        foreach (var recipient in pending)
        {
            var reply = byAddress.GetValueOrDefault(recipient.Address)
                ?? SmtpReply.LocalTransient("4.4.0", "no outcome reported for this recipient");

            // A permanent failure we decided ourselves (an address we cannot write) was not the
            // host's doing: the DSN must not name it as the reporting Remote-MTA.
            record = SpoolLedger.RecordReply(record, recipient, reply, reply is { FromRemote: false, IsPermanent: true } ? null : result.RemoteHost);
            if (result.Undeliverable)
            {
                record = SpoolLedger.RecordUndeliverable(record, recipient, reply.StatusCode, now);
                failed++;
                LogUndeliverable(logger, record.QueueId, recipient.Address, reply.ToString());
            }
            else if (reply.IsSuccess)
            {
                record = SpoolLedger.RecordDelivered(record, recipient, now, SpoolLedger.MayNotify(record) && !result.RemoteOffersDsn && recipient.WantsSuccessNotice);
                delivered++;
                Telemetry.RecipientsDelivered.Add(1, new KeyValuePair<string, object?>(Telemetry.DomainMetricTag, record.Domain));
                Telemetry.DeliveryLatency.Record((now - record.ReceivedAt).TotalSeconds, new KeyValuePair<string, object?>(Telemetry.DomainMetricTag, record.Domain));
                LogDelivered(logger, record.QueueId, recipient.Address, result.RemoteHost, reply.ToString());
            }
            else if (reply.IsPermanent)
            {
                record = Fail(record, recipient, reply.StatusCode, now);
                failed++;
                LogBounced(logger, record.QueueId, recipient.Address, result.RemoteHost, reply.ToString());
            }
            else
            {
                Telemetry.RecipientsDeferred.Add(1, new KeyValuePair<string, object?>(Telemetry.DomainMetricTag, record.Domain));
                LogDeferred(logger, record.QueueId, recipient.Address, result.RemoteHost, reply.ToString());
            }
        }

        var attempt = new DeliveryAttempt
        {
            At = now,
            Host = result.RemoteHost,
            Reply = (record.PendingRecipients.FirstOrDefault() ?? record.Recipients.FirstOrDefault(r => pending.Count > 0 && r.Address == pending[0].Address))?.LastReply?.ToString(),
            Delivered = delivered,
            Failed = failed,
            Deferred = pending.Count - delivered - failed,
        };
        // The ledger decides the next attempt from what the attempt left pending.
        if (delivered > 0 && record.PendingRecipients.Any() && record.PendingRecipients.All(r => r.LastReply?.Code == 452))
        {
            record = SpoolLedger.RecordPartialAttempt(record, attempt);
        }
        else if (record.PendingRecipients.Any())
        {
            record = SpoolLedger.RecordFailedAttempt(record, attempt, new RetrySchedule(options.Value.Delivery.EffectiveRetryIntervals));
        }
        else
        {
            record = SpoolLedger.RecordCompletedAttempt(record, attempt);
        }

        LogAttempt(logger, record.QueueId, record.Domain, pending.Count, delivered, failed, pending.Count - delivered - failed, result.RemoteHost ?? "(none)");
        return (record, result);
    }

    /// <summary>
    /// A permanent failure of every pending recipient, decided here: the primary was not asked, so
    /// the attempt says nothing about it. A DSN follows as for any failure, without the original.
    /// </summary>
    private DeliveryResult BodyMissing(SpoolRecord record, IReadOnlyList<RecipientState> pending, Exception? exception)
    {
        LogBodyMissing(logger, exception, record.QueueId, pending.Count);
        return DeliveryResult.AllRecipients(pending, SmtpReply.LocalPermanent("5.3.0", "message body missing from the spool"), null, reachedServer: false) with { DecidedLocally = true };
    }

    private SpoolRecord Expire(SpoolRecord record, DateTimeOffset now)
    {
        (record, var expired) = SpoolLedger.Expire(record, now);
        foreach (var recipient in expired)
        {
            Telemetry.RecipientsBounced.Add(1, new KeyValuePair<string, object?>(Telemetry.DomainMetricTag, record.Domain));
            LogExpired(logger, record.QueueId, recipient.Address, recipient.LastReply?.ToString());
        }

        return record;
    }

    private static SpoolRecord Fail(SpoolRecord record, RecipientState recipient, string status, DateTimeOffset now)
    {
        Telemetry.RecipientsBounced.Add(1, new KeyValuePair<string, object?>(Telemetry.DomainMetricTag, record.Domain));
        return SpoolLedger.RecordFailed(record, recipient, status, now);
    }

    /// <summary>
    /// Queues one DSN for every recipient still owed a notice, whatever its action. An attempt that
    /// delivered some recipients and failed others gives one report with "relayed" and "failed"
    /// blocks side by side, which RFC 3464 allows (each per-recipient block has its own Action): the
    /// sender gets one message about one attempt, with every outcome in it, and a crash before the
    /// record is written finds that one DSN again by its id rather than having to match up two.
    /// </summary>
    private async Task<SpoolRecord> NotifyAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        var toNotify = record.Recipients.Where(r => r.NeedsNotification).Select(r => new DsnRecipient(r, r.NoticeAction)).ToList();
        if (toNotify.Count == 0)
        {
            return record;
        }

        try
        {
            var dsnId = await dsnQueue.EnqueueAsync(record, toNotify, cancellationToken).ConfigureAwait(false);
            record = SpoolLedger.RecordNoticeQueued(record, toNotify.Select(n => n.Recipient));

            var relayed = toNotify.Where(n => n.Action == DsnAction.Relayed).Select(n => n.Recipient).ToList();
            if (relayed.Count < toNotify.Count)
            {
                LogDsnQueued(logger, record.QueueId, dsnId, record.Sender, toNotify.Count - relayed.Count);
            }

            // A combined DSN logs both lines under the same DsnId, each counting its own recipients.
            if (relayed.Count > 0)
            {
                LogRelayedDsnQueued(logger, record.QueueId, dsnId, record.Sender, relayed.Count, relayed[0].RemoteHost);
            }
        }
        catch (Exception ex)
        {
            // The recipients stay marked; the next wake-up (or the sweep) tries the DSN again. A
            // cancellation is no different: the outcome it follows is committed, or is by the release.
            LogDsnFailed(logger, ex, record.QueueId);
            record = SpoolLedger.RecordNoticeFailed(record, time.GetUtcNow(), new RetrySchedule(options.Value.Delivery.EffectiveRetryIntervals));
        }

        return record;
    }

    /// <returns>The outcome, and a deferred record as last stored.</returns>
    private async Task<(ForwardOutcome Outcome, SpoolRecord? Released)> ReleaseAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        var released = await ledger.ReleaseAsync(record, cancellationToken).ConfigureAwait(false);
        switch (released.Status)
        {
            case ReleaseStatus.Finished:
                LogFinished(logger, record.QueueId, record.Domain);
                return (ForwardOutcome.Finished, null);
            case ReleaseStatus.LostClaim:
                LogLostClaim(logger, record.QueueId);
                return (ForwardOutcome.Busy, null);
        }

        if (released.WakeUpError is { } error)
        {
            LogWakeUpFailed(logger, error, record.QueueId);
        }

        return (ForwardOutcome.Deferred, released.Record);
    }

    [LoggerMessage(EventId = 1200, Level = LogLevel.Information, Message = "Delivered {QueueId} to {Recipient} via {RemoteHost}: {Reply}")]
    private static partial void LogDelivered(ILogger logger, string queueId, string recipient, string? remoteHost, string reply);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Deferred {QueueId} for {Recipient} via {RemoteHost}: {Reply}")]
    private static partial void LogDeferred(ILogger logger, string queueId, string recipient, string? remoteHost, string reply);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Warning, Message = "Bounced {QueueId} for {Recipient} via {RemoteHost}: {Reply}")]
    private static partial void LogBounced(ILogger logger, string queueId, string recipient, string? remoteHost, string reply);

    [LoggerMessage(EventId = 1203, Level = LogLevel.Warning, Message = "Expired {QueueId} for {Recipient}; last reply: {Reply}")]
    private static partial void LogExpired(ILogger logger, string queueId, string recipient, string? reply);

    [LoggerMessage(EventId = 1204, Level = LogLevel.Information, Message = "Attempt {QueueId} for {Domain}: {RecipientCount} recipient(s), {Delivered} delivered, {Failed} failed, {Deferred} deferred, primary {Primary}")]
    private static partial void LogAttempt(ILogger logger, string queueId, string domain, int recipientCount, int delivered, int failed, int deferred, string primary);

    [LoggerMessage(EventId = 1205, Level = LogLevel.Information, Message = "DSN {DsnId} queued for {QueueId} to <{Sender}> covering {RecipientCount} recipient(s)")]
    private static partial void LogDsnQueued(ILogger logger, string queueId, string dsnId, string sender, int recipientCount);

    [LoggerMessage(EventId = 1218, Level = LogLevel.Information, Message = "Relayed DSN {DsnId} queued for {QueueId} to <{Sender}> covering {RecipientCount} recipient(s) accepted by {RemoteHost}, which does not offer DSN")]
    private static partial void LogRelayedDsnQueued(ILogger logger, string queueId, string dsnId, string sender, int recipientCount, string? remoteHost);

    [LoggerMessage(EventId = 1206, Level = LogLevel.Error, Message = "Could not queue the DSN for {QueueId}; will try again")]
    private static partial void LogDsnFailed(ILogger logger, Exception exception, string queueId);

    [LoggerMessage(EventId = 1207, Level = LogLevel.Information, Message = "Finished {QueueId} for {Domain}; removed from the spool")]
    private static partial void LogFinished(ILogger logger, string queueId, string domain);

    [LoggerMessage(EventId = 1208, Level = LogLevel.Warning, Message = "Lost the claim on {QueueId} (its lease expired during the attempt); it may be delivered again")]
    private static partial void LogLostClaim(ILogger logger, string queueId);

    [LoggerMessage(EventId = 1209, Level = LogLevel.Error, Message = "Body of {QueueId} is missing from the spool; its {RecipientCount} pending recipient(s) fail for good")]
    private static partial void LogBodyMissing(ILogger logger, Exception? exception, string queueId, int recipientCount);

    [LoggerMessage(EventId = 1210, Level = LogLevel.Error, Message = "Transport error for {QueueId}")]
    private static partial void LogTransportError(ILogger logger, Exception exception, string queueId);

    [LoggerMessage(EventId = 1211, Level = LogLevel.Warning, Message = "Could not schedule the next wake-up of {QueueId}; the sweep will")]
    private static partial void LogWakeUpFailed(ILogger logger, Exception exception, string queueId);

    [LoggerMessage(EventId = 1212, Level = LogLevel.Warning, Message = "Dropped {QueueId} for {Recipient} without a DSN: it can never be delivered ({Reply})")]
    private static partial void LogUndeliverable(ILogger logger, string queueId, string recipient, string reply);

    [LoggerMessage(EventId = 1226, Level = LogLevel.Warning, Message = "Could not report the primary of {Domain} after an attempt at {QueueId}; the attempt's outcome stands")]
    private static partial void LogReportFailed(ILogger logger, Exception exception, string domain, string queueId);

    [LoggerMessage(EventId = 1227, Level = LogLevel.Warning, Message = "Attempt at {QueueId} cut off after {Limit}; its {RecipientCount} recipient(s) retry")]
    private static partial void LogAttemptTimedOut(ILogger logger, Exception exception, string queueId, TimeSpan limit, int recipientCount);

    [LoggerMessage(EventId = 1217, Level = LogLevel.Warning, Message = "Could not make {QueueId} due after its primary came back during the attempt; it keeps its retry")]
    private static partial void LogCatchUpFailed(ILogger logger, Exception exception, string queueId);
}
