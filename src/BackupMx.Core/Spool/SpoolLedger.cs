// The spool ledger: the one owner of every state change of a spooled message.
//
// Intake, forwarding, DSN queueing, flushing, the sweep and the operator's hold,
// release and delete all change a message through the methods below, named for
// what they mean, and never write the stores themselves. The orderings that make
// "250 means durable" (rule 1) and "state is the truth" (rule 2) hold are kept
// here, once:
//
// - accept: the body, then the record; the wake-up only once the record is
//   committed (Acceptance). A failed acceptance removes the record before the body.
// - commit before schedule: a wake-up is scheduled only after the state it is to
//   find is committed (a wake-up that arrived first would find the old state, do
//   nothing, and be lost), and its token is then kept in the record so a flush,
//   a hold or a delete can cancel it.
// - finish and delete: the record is removed before the body, so no record ever
//   exists without its body.
// - claim: a worker holds a lease (LeaseOwner, LeaseExpiresAt) before it delivers.
//   The lease has its own fields; NextAttemptAt stays the scheduled attempt. Every
//   store's due listing passes a record by while its lease runs (SpoolRecord.DueAt),
//   so a crashed worker's message is due again when the lease runs out. Release
//   writes the next attempt and clears the lease in one write.
// - hold: a held message is not delivered, flushed or expired. Its due time is
//   DateTimeOffset.MaxValue, so no pump lists it; release makes it due now and keeps
//   its expiry, unless that has passed, in which case it gets one more day.
// - flush: where the store keeps flush epochs (embedded mode, IFlushEpochStore), a domain's flush
//   is one write, its epoch: every record of the domain last attempted (or received) before it
//   reads as due with its retries reset (ApplyFlushEpoch), and its claim commits that. Elsewhere
//   (Azure mode) each record is made due and committed, and then given a wake-up of its own; a
//   domain's records go in pages whose wake-ups are scheduled together (FlushManyAsync), each page's
//   only after all its records are committed, so commit before schedule holds for every record.
//
// A SpoolRecord is immutable. The Record* transitions return the record as it becomes; the
// writes return the record as stored (with its new ETag), which the caller's next write must
// start from. A write that loses its race returns null: the caller's copy is then stale.
using BackupMx.Core.Forwarding;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging;

namespace BackupMx.Core.Spool;

public sealed partial class SpoolLedger(
    ISpoolStore spool,
    IBodyStore bodies,
    IWakeUpQueue wakeUps,
    TimeProvider time,
    ILogger<SpoolLedger> logger,
    IFlushEpochStore? flushEpochs = null)
{
    /// <summary>How many attempts a record keeps in its <see cref="SpoolRecord.AttemptHistory"/>: the latest.</summary>
    public const int MaxAttemptHistory = 20;

    /// <summary>How long a released message whose expiry passed while it was held is kept: one more day.</summary>
    public static readonly TimeSpan ReleaseGrace = TimeSpan.FromDays(1);

    // Conditional writes tried on one request when the record changed under it.
    private const int MaxWrites = 3;

    /// <summary>The store's copy, or null (finished, never existed, or quarantined).</summary>
    public Task<SpoolRecord?> FindAsync(string domain, string queueId, CancellationToken cancellationToken) =>
        spool.GetAsync(domain, queueId, cancellationToken);

    public IAsyncEnumerable<SpoolRecord> ListDomainAsync(string domain, CancellationToken cancellationToken) =>
        spool.ListDomainAsync(domain, cancellationToken);

    public IAsyncEnumerable<SpoolRecord> ListAllAsync(CancellationToken cancellationToken) =>
        spool.ListAllAsync(cancellationToken);

    // ----- accept -----

    /// <summary>Starts accepting one message (one or more records): bodies, then records, then wake-ups.</summary>
    public Acceptance BeginAccept() => new(spool, bodies);

    /// <summary>
    /// Schedules the wake-up of a committed record at <paramref name="dueAt"/> and, when it is due
    /// later than now, keeps its token in the record. A wake-up due now is never worth cancelling (a
    /// flush would only make the message due now again; a held or deleted message is passed by when
    /// it arrives), so it costs no state write: in Azure one Table transaction less per accepted and
    /// per flushed message. Scheduling failures propagate, and so do failures to keep the token; a
    /// lost race on keeping it only returns null, because a token that is not kept costs no more than
    /// one redundant wake-up later.
    /// </summary>
    /// <returns>The record as stored afterwards (with its token when one was kept); null when it changed meanwhile.</returns>
    public async Task<SpoolRecord?> ScheduleWakeUpAsync(SpoolRecord record, DateTimeOffset dueAt, CancellationToken cancellationToken)
    {
        var token = await ScheduleAsync(record, dueAt, cancellationToken).ConfigureAwait(false);
        return token is null ? record : await KeepTokenAsync(record, token, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// <see cref="ScheduleWakeUpAsync"/> for a just-accepted record, which is accepted whatever happens
    /// here: once the wake-up is scheduled, a failure to keep its token is returned rather than thrown.
    /// Scheduling failures propagate.
    /// </summary>
    public async Task<FirstWakeUp> ScheduleFirstWakeUpAsync(SpoolRecord record, DateTimeOffset dueAt, CancellationToken cancellationToken)
    {
        var token = await ScheduleAsync(record, dueAt, cancellationToken).ConfigureAwait(false);
        if (token is null)
        {
            return new FirstWakeUp(TokenKept: true, null);
        }

        try
        {
            return new FirstWakeUp(await KeepTokenAsync(record, token, cancellationToken).ConfigureAwait(false) is not null, null);
        }
        catch (Exception ex)
        {
            return new FirstWakeUp(TokenKept: false, ex);
        }
    }

    /// <summary>Schedules the wake-up; returns its token when it is worth keeping (due later than now).</summary>
    private async Task<string?> ScheduleAsync(SpoolRecord record, DateTimeOffset dueAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        var token = await wakeUps.ScheduleAsync(new WakeUp(record.Domain, record.QueueId), dueAt, cancellationToken).ConfigureAwait(false);
        return token is null || dueAt <= time.GetUtcNow() ? null : token;
    }

    private Task<SpoolRecord?> KeepTokenAsync(SpoolRecord record, string token, CancellationToken cancellationToken) =>
        spool.TryUpdateAsync(record with { WakeUpToken = token }, cancellationToken);

    /// <summary>
    /// Makes a just-accepted record due now (its primary came back while it was written). Returns the
    /// record as stored, or null when it changed meanwhile (a flush or a sweep, which also woke it).
    /// </summary>
    public Task<SpoolRecord?> MakeDueNowAsync(SpoolRecord record, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        return spool.TryUpdateAsync(record with { NextAttemptAt = now }, cancellationToken);
    }

    // ----- claim, outcomes, release, finish -----

    /// <summary>
    /// Claims <paramref name="record"/> (the caller's copy, fresh or listed) for <paramref name="owner"/>
    /// until <paramref name="now"/> + <paramref name="leaseDuration"/>. A record changed under the claim
    /// without being claimed (its wake-up token saved after the wake-up was read, say) is read again and
    /// judged again, a few times. <paramref name="isDue"/> says whether the record may be attempted now.
    /// </summary>
    public async Task<ClaimResult> ClaimAsync(
        SpoolRecord record,
        string owner,
        DateTimeOffset now,
        TimeSpan leaseDuration,
        Func<SpoolRecord, bool> isDue,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(isDue);
        for (var claim = 1; ; claim++)
        {
            if (record.IsLeased(now))
            {
                return new ClaimResult(ClaimStatus.Busy, record);
            }

            if (record.IsHeld || !isDue(record))
            {
                return new ClaimResult(ClaimStatus.NotDue, record);
            }

            if (await spool.TryUpdateAsync(record with { LeaseOwner = owner, LeaseExpiresAt = now + leaseDuration }, cancellationToken).ConfigureAwait(false) is { } claimed)
            {
                return new ClaimResult(ClaimStatus.Claimed, claimed);
            }

            if (claim == MaxWrites)
            {
                return new ClaimResult(ClaimStatus.Busy, record);
            }

            var current = await spool.GetAsync(record.Domain, record.QueueId, cancellationToken).ConfigureAwait(false);
            if (current is null)
            {
                return new ClaimResult(ClaimStatus.NotFound, null);
            }

            record = current;
        }
    }

    /// <summary>
    /// The primary accepted <paramref name="recipient"/> (one of the record's, known by its address);
    /// <paramref name="notify"/>: a "relayed" DSN is owed.
    /// </summary>
    public static SpoolRecord RecordDelivered(SpoolRecord record, RecipientState recipient, DateTimeOffset now, bool notify) =>
        WithRecipient(record, recipient, r => r with
        {
            Status = RecipientStatus.Delivered,
            CompletedAt = now,

            // Marked in the same write as the delivery, so a crash before the DSN is queued
            // leaves the record unfinished and the next wake-up queues it.
            NeedsNotification = notify,
        });

    /// <summary>
    /// <paramref name="recipient"/> failed for good with <paramref name="status"/>; a DSN is owed unless
    /// the record may not notify (rule 5) or the recipient did not ask for one.
    /// </summary>
    public static SpoolRecord RecordFailed(SpoolRecord record, RecipientState recipient, string? status, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(record);
        return WithRecipient(record, recipient, r => Failed(record, r, status, now));
    }

    /// <summary>Failed for good without any notice: the message can never be delivered and no DSN could say more.</summary>
    public static SpoolRecord RecordUndeliverable(SpoolRecord record, RecipientState recipient, string status, DateTimeOffset now) =>
        WithRecipient(record, recipient, r => r with
        {
            Status = RecipientStatus.Failed,
            FailureStatus = status,
            CompletedAt = now,
        });

    /// <summary>The reply and host an attempt got for <paramref name="recipient"/>, whatever its outcome.</summary>
    public static SpoolRecord RecordReply(SpoolRecord record, RecipientState recipient, SmtpReply reply, string? remoteHost) =>
        WithRecipient(record, recipient, r => r with { LastReply = reply, RemoteHost = remoteHost });

    /// <summary>Past retention: every pending recipient fails with 4.4.7. Returns the record and those recipients as they became.</summary>
    public static (SpoolRecord Record, IReadOnlyList<RecipientState> Expired) Expire(SpoolRecord record, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(record);
        var expired = new List<RecipientState>();
        var recipients = record.Recipients.Select(r =>
        {
            if (r.Status != RecipientStatus.Pending)
            {
                return r;
            }

            var failed = Failed(record, r, "4.4.7", now);
            expired.Add(failed);
            return failed;
        }).ToArray();
        return (record with { Recipients = recipients }, expired);
    }

    private static RecipientState Failed(SpoolRecord record, RecipientState recipient, string? status, DateTimeOffset now) => recipient with
    {
        Status = RecipientStatus.Failed,
        FailureStatus = status,
        CompletedAt = now,
        NeedsNotification = MayNotify(record) && recipient.WantsFailureNotice,
    };

    /// <summary>
    /// The record with its recipient <paramref name="recipient"/> (known by its address, which intake
    /// keeps unique in a record) changed by <paramref name="change"/>.
    /// </summary>
    private static SpoolRecord WithRecipient(SpoolRecord record, RecipientState recipient, Func<RecipientState, RecipientState> change)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(recipient);
        var recipients = record.Recipients.ToArray();
        var found = false;
        for (var i = 0; i < recipients.Length; i++)
        {
            if (string.Equals(recipients[i].Address, recipient.Address, StringComparison.Ordinal))
            {
                recipients[i] = change(recipients[i]);
                found = true;
            }
        }

        return found
            ? record with { Recipients = recipients }
            : throw new ArgumentException($"{recipient.Address} is not a recipient of {record.QueueId}.", nameof(recipient));
    }

    /// <summary>
    /// The end of an attempt that left recipients pending: it counts as a failure, its reply is the
    /// last error, and the next attempt is the retry schedule's wait after it, never past expiry.
    /// </summary>
    public static SpoolRecord RecordFailedAttempt(SpoolRecord record, DeliveryAttempt attempt, RetrySchedule schedule)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(attempt);
        ArgumentNullException.ThrowIfNull(schedule);
        return RecordAttempt(record, attempt, schedule.NextAttempt(attempt.At, record.Attempts + 1, record.ExpiresAt), countsAsFailure: true);
    }

    /// <summary>
    /// The primary took part of the message and wants the rest in another transaction (its recipient
    /// limit, RFC 5321 §4.5.3.1.10): due again at once, not counted as a failure. Each such round
    /// delivers someone, so this cannot repeat without end.
    /// </summary>
    public static SpoolRecord RecordPartialAttempt(SpoolRecord record, DeliveryAttempt attempt)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(attempt);
        return RecordAttempt(record, attempt, attempt.At, countsAsFailure: false);
    }

    private static SpoolRecord RecordAttempt(SpoolRecord record, DeliveryAttempt attempt, DateTimeOffset nextAttemptAt, bool countsAsFailure) => record with
    {
        LastAttemptAt = attempt.At,
        LastError = attempt.Reply,
        Attempts = countsAsFailure ? record.Attempts + 1 : record.Attempts,
        NextAttemptAt = nextAttemptAt,
        AttemptHistory = WithAttempt(record.AttemptHistory, attempt),
    };

    /// <summary>The end of an attempt that left nothing pending.</summary>
    public static SpoolRecord RecordCompletedAttempt(SpoolRecord record, DeliveryAttempt attempt)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(attempt);
        return record with
        {
            LastAttemptAt = attempt.At,
            LastError = null,
            AttemptHistory = WithAttempt(record.AttemptHistory, attempt),
        };
    }

    // The oldest attempt gives way: operators want the recent ones, and a record must stay small.
    private static IReadOnlyList<DeliveryAttempt> WithAttempt(IReadOnlyList<DeliveryAttempt> history, DeliveryAttempt attempt) =>
        [.. history.Skip(Math.Max(0, history.Count - (MaxAttemptHistory - 1))), attempt];

    /// <summary>The DSN owed for <paramref name="recipients"/> (the record's, known by their addresses) is queued: they are owed nothing more.</summary>
    public static SpoolRecord RecordNoticeQueued(SpoolRecord record, IEnumerable<RecipientState> recipients)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        foreach (var recipient in recipients)
        {
            record = WithRecipient(record, recipient, r => r with { NeedsNotification = false });
        }

        return record;
    }

    /// <summary>The DSN could not be queued: the record is due again after the schedule's first wait, to try it again.</summary>
    public static SpoolRecord RecordNoticeFailed(SpoolRecord record, DateTimeOffset now, RetrySchedule schedule)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(schedule);
        return record with { NextAttemptAt = now + schedule.DelayAfter(1) };
    }

    /// <summary>Never a DSN to the null sender, never a DSN about a DSN (rule 5); NOTIFY decides the rest (RFC 3461 §4.1).</summary>
    public static bool MayNotify(SpoolRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return record.Kind == MessageKind.Relay && record.Sender.Length > 0;
    }

    /// <summary>
    /// Commits the outcomes recorded so far while keeping the lease, so the record stays the claimant's
    /// and a flush still passes it by. A crash from here on finds it due at the lease's end, with its
    /// answered recipients answered. Returns the record as stored; null when the claim was lost.
    /// </summary>
    public Task<SpoolRecord?> SaveOutcomesAsync(SpoolRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return spool.TryUpdateAsync(record, CancellationToken.None);
    }

    /// <summary>
    /// Ends the claim: a finished record is finished (<see cref="FinishAsync"/>), any other is committed
    /// with its next attempt and only then given a wake-up for it. The writes are not cancellable: the
    /// attempt's outcome must be kept even when the host is stopping.
    /// </summary>
    public async Task<ReleaseResult> ReleaseAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        record = record with { LeaseOwner = null, LeaseExpiresAt = null };

        if (record.IsFinished)
        {
            return new ReleaseResult(await FinishAsync(record).ConfigureAwait(false) ? ReleaseStatus.Finished : ReleaseStatus.LostClaim);
        }

        // Commit first, then schedule: a wake-up must never find the record still leased.
        if (await spool.TryUpdateAsync(record, CancellationToken.None).ConfigureAwait(false) is not { } released)
        {
            return new ReleaseResult(ReleaseStatus.LostClaim);
        }

        try
        {
            // A lost race on keeping the token leaves the committed release standing; the caller's copy is then stale.
            var scheduled = await ScheduleWakeUpAsync(released, released.NextAttemptAt, cancellationToken).ConfigureAwait(false);
            return new ReleaseResult(ReleaseStatus.Deferred, Record: scheduled ?? released);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The sweep re-schedules due records whose wake-up is missing.
            return new ReleaseResult(ReleaseStatus.Deferred, ex, released);
        }
    }

    /// <summary>Removes a finished record, then its body. False when the record changed meanwhile (it stays).</summary>
    public async Task<bool> FinishAsync(SpoolRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!await spool.TryDeleteAsync(record, CancellationToken.None).ConfigureAwait(false))
        {
            return false;
        }

        await bodies.DeleteAsync(record.QueueId, CancellationToken.None).ConfigureAwait(false);
        return true;
    }

    // ----- flush, lost wake-ups -----

    /// <summary>
    /// Makes one relayed message due now with its retry count reset (rule 7); <paramref name="listed"/>
    /// is the caller's copy (a stale one costs a read). A leased message is being delivered and needs
    /// no nudge; a held one waits for its release; one already due that never failed has a wake-up on
    /// its way. "Due now" is committed before its old wake-up is cancelled and a new one scheduled.
    /// </summary>
    public async Task<FlushResult> FlushAsync(SpoolRecord listed, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var (record, result) = await CommitFlushAsync(listed, now, cancellationToken).ConfigureAwait(false);
        if (record is not null)
        {
            await ScheduleWakeUpAsync(record, now, cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    /// <summary>
    /// Flushes several messages as <see cref="FlushAsync"/> flushes one, but sends their new wake-ups
    /// together: every record is first made due now and committed (its old wake-up cancelled),
    /// <paramref name="parallelism"/> at a time, and only then are the wake-ups of the committed ones
    /// scheduled, in one <see cref="IWakeUpQueue.ScheduleManyAsync"/>. Commit before schedule holds for
    /// each record as it does one by one: a crash or a failed schedule between the two leaves a record
    /// that is due with no wake-up on its way, which the sweep gives one (rule 2), and a wake-up never
    /// arrives before the state it is to find. A schedule that failed is reported, not thrown; a wake-up
    /// it sent after all is a duplicate that the claim turns away once the message is delivered.
    /// </summary>
    public async Task<FlushManyResult> FlushManyAsync(IReadOnlyList<SpoolRecord> listed, DateTimeOffset now, int parallelism, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(listed);
        var committed = new SpoolRecord?[listed.Count];
        var cancelFailures = new System.Collections.Concurrent.ConcurrentQueue<(string Token, Exception Error)>();
        await Parallel.ForEachAsync(
            Enumerable.Range(0, listed.Count),
            new ParallelOptions { MaxDegreeOfParallelism = parallelism, CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                var (record, result) = await CommitFlushAsync(listed[i], now, ct).ConfigureAwait(false);
                committed[i] = record;
                if (result.CancelFailure is { } failure)
                {
                    cancelFailures.Enqueue(failure);
                }
            }).ConfigureAwait(false);

        var flushed = committed.OfType<SpoolRecord>().ToList();
        Exception? scheduleFailure = null;
        if (flushed.Count > 0)
        {
            try
            {
                // Due now, so no token is kept (see ScheduleWakeUpAsync): a later flush would only make
                // the message due now again, and its claim turns a left-over wake-up away.
                await wakeUps.ScheduleManyAsync([.. flushed.Select(r => new WakeUp(r.Domain, r.QueueId))], now, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                scheduleFailure = ex;
            }
        }

        return new FlushManyResult(flushed.Count, [.. cancelFailures], scheduleFailure);
    }

    /// <summary>The first half of a flush: "due now" committed and the old wake-up cancelled; the committed record, or null.</summary>
    private async Task<(SpoolRecord? Record, FlushResult Result)> CommitFlushAsync(SpoolRecord listed, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(listed);
        var record = listed;
        for (var attempt = 0; attempt < MaxWrites && record is not null; attempt++)
        {
            if (record.Kind != MessageKind.Relay || !record.PendingRecipients.Any() || record.IsLeased(now) || record.IsHeld)
            {
                return (null, FlushResult.NotFlushed);
            }

            if (record.NextAttemptAt <= now && record.Attempts == 0)
            {
                return (null, FlushResult.NotFlushed);
            }

            var oldToken = record.WakeUpToken;
            if (await spool.TryUpdateAsync(record with { NextAttemptAt = now, Attempts = 0, WakeUpToken = null }, cancellationToken).ConfigureAwait(false) is { } flushed)
            {
                (string, Exception)? cancelFailure = null;
                if (oldToken is not null && await CancelQuietlyAsync(oldToken, cancellationToken).ConfigureAwait(false) is { } cancelError)
                {
                    cancelFailure = (oldToken, cancelError);
                }

                return (flushed, new FlushResult(true, cancelFailure));
            }

            record = await spool.GetAsync(listed.Domain, listed.QueueId, cancellationToken).ConfigureAwait(false);
        }

        return (null, FlushResult.NotFlushed);
    }

    /// <summary>
    /// Flushes a whole domain with one write, its flush epoch, where the store keeps them: every
    /// record of it that <see cref="FlushableSince"/> says was last attempted before
    /// <paramref name="now"/> is due from then on with its retry count reset. The caller wakes the pump.
    /// </summary>
    /// <returns>False when the store keeps no epochs: flush record by record (<see cref="FlushAsync"/>).</returns>
    public async Task<bool> TryFlushDomainAsync(string domain, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (flushEpochs is null)
        {
            return false;
        }

        await flushEpochs.SetFlushEpochAsync(domain, now, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>How many records of the domain its last flush made due and that have not been attempted since (0 without epochs).</summary>
    public Task<int> CountFlushedAsync(string domain, Action? viewFixed, CancellationToken cancellationToken)
    {
        if (flushEpochs is null)
        {
            viewFixed?.Invoke();
            return Task.FromResult(0);
        }

        return flushEpochs.CountFlushedAsync(domain, viewFixed, cancellationToken);
    }

    /// <summary>
    /// The moment after which a flush of the record's domain makes it due: its last attempt or, never
    /// tried, its arrival. Null when no flush touches it: a DSN, a held or leased message, or one with
    /// no recipient pending. Stores that keep flush epochs index this.
    /// </summary>
    public static DateTimeOffset? FlushableSince(SpoolRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return record.Kind != MessageKind.Relay || record.IsHeld || record.LeaseExpiresAt is not null || !record.PendingRecipients.Any()
            ? null
            : record.LastAttemptAt ?? record.ReceivedAt;
    }

    /// <summary>
    /// The record as its domain's flush at <paramref name="epoch"/> makes it: due at the epoch (or
    /// earlier, if it already was) with its retry count reset, if it was last attempted before the
    /// epoch; otherwise unchanged. Stores that keep flush epochs apply this to every record they read.
    /// </summary>
    public static SpoolRecord ApplyFlushEpoch(SpoolRecord record, DateTimeOffset? epoch)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (epoch is not { } flushedAt || FlushableSince(record) is not { } since || since >= flushedAt)
        {
            return record;
        }

        return record with
        {
            Attempts = 0,
            NextAttemptAt = record.NextAttemptAt > flushedAt ? flushedAt : record.NextAttemptAt,
        };
    }

    /// <summary>
    /// Gives a record whose wake-up went missing a new one due at <paramref name="now"/> (rule 2). The
    /// record's state is already committed; only the wake-up and its token are new.
    /// </summary>
    public Task<SpoolRecord?> RescheduleLostWakeUpAsync(SpoolRecord record, DateTimeOffset now, CancellationToken cancellationToken) =>
        ScheduleWakeUpAsync(record, now, cancellationToken);

    // ----- hold, release, delete -----

    /// <summary>
    /// Holds a message: it is not delivered, flushed or expired until released. A message being
    /// delivered (leased) cannot be held until its attempt ends.
    /// </summary>
    public async Task<LedgerChange> HoldAsync(string domain, string queueId, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        for (var attempt = 0; attempt < MaxWrites; attempt++)
        {
            var record = await spool.GetAsync(domain, queueId, cancellationToken).ConfigureAwait(false);
            if (record is null)
            {
                return LedgerChange.NotFound;
            }

            if (record.IsHeld)
            {
                return LedgerChange.Unchanged;
            }

            if (record.IsLeased(now))
            {
                return LedgerChange.Busy;
            }

            var oldToken = record.WakeUpToken;
            if (await spool.TryUpdateAsync(record with { HeldAt = now, NextAttemptAt = DateTimeOffset.MaxValue, WakeUpToken = null }, cancellationToken).ConfigureAwait(false) is not null)
            {
                if (oldToken is not null)
                {
                    await CancelQuietlyAsync(oldToken, cancellationToken).ConfigureAwait(false);
                }

                LogHeld(logger, queueId, domain);
                return LedgerChange.Done;
            }
        }

        return LedgerChange.Busy;
    }

    /// <summary>
    /// Releases a held message: due now, with the expiry given, or else its own unless that has
    /// passed, in which case it gets one more day (<see cref="ReleaseGrace"/>).
    /// </summary>
    public async Task<LedgerChange> ReleaseHeldAsync(string domain, string queueId, DateTimeOffset? expiresAt, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        for (var attempt = 0; attempt < MaxWrites; attempt++)
        {
            var record = await spool.GetAsync(domain, queueId, cancellationToken).ConfigureAwait(false);
            if (record is null)
            {
                return LedgerChange.NotFound;
            }

            if (!record.IsHeld)
            {
                return LedgerChange.Unchanged;
            }

            var released = record with
            {
                ExpiresAt = expiresAt ?? (record.ExpiresAt > now ? record.ExpiresAt : now + ReleaseGrace),
                HeldAt = null,
                NextAttemptAt = now,
            };
            if (await spool.TryUpdateAsync(released, cancellationToken).ConfigureAwait(false) is { } stored)
            {
                LogReleased(logger, queueId, domain, stored.ExpiresAt);
                try
                {
                    await ScheduleWakeUpAsync(stored, now, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogReleasedWakeUpFailed(logger, ex, queueId);
                }

                return LedgerChange.Done;
            }
        }

        return LedgerChange.Busy;
    }

    /// <summary>
    /// Deletes a message without delivering it or sending any notice: the record, then its body, then
    /// its pending wake-up (best effort). A message being delivered (leased) cannot be deleted until its
    /// attempt ends.
    /// </summary>
    public async Task<LedgerChange> DeleteAsync(string domain, string queueId, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        for (var attempt = 0; attempt < MaxWrites; attempt++)
        {
            var record = await spool.GetAsync(domain, queueId, cancellationToken).ConfigureAwait(false);
            if (record is null)
            {
                return LedgerChange.NotFound;
            }

            if (record.IsLeased(now))
            {
                return LedgerChange.Busy;
            }

            if (await spool.TryDeleteAsync(record, cancellationToken).ConfigureAwait(false))
            {
                await bodies.DeleteAsync(queueId, CancellationToken.None).ConfigureAwait(false);
                if (record.WakeUpToken is { } token)
                {
                    await CancelQuietlyAsync(token, CancellationToken.None).ConfigureAwait(false);
                }

                LogDeleted(logger, queueId, domain);
                return LedgerChange.Done;
            }
        }

        return LedgerChange.Busy;
    }

    private async Task<Exception?> CancelQuietlyAsync(string token, CancellationToken cancellationToken)
    {
        try
        {
            await wakeUps.CancelAsync(token, cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A stale wake-up finds the record not due (or leased, or held) and does nothing.
            return ex;
        }
    }

    [LoggerMessage(EventId = 1950, Level = LogLevel.Information, Message = "Held {QueueId} for {Domain}; it is not delivered or expired until released")]
    private static partial void LogHeld(ILogger logger, string queueId, string domain);

    [LoggerMessage(EventId = 1951, Level = LogLevel.Information, Message = "Released {QueueId} for {Domain}; due now, expires {ExpiresAt}")]
    private static partial void LogReleased(ILogger logger, string queueId, string domain, DateTimeOffset expiresAt);

    [LoggerMessage(EventId = 1952, Level = LogLevel.Warning, Message = "Deleted {QueueId} for {Domain} without delivering it")]
    private static partial void LogDeleted(ILogger logger, string queueId, string domain);

    [LoggerMessage(EventId = 1953, Level = LogLevel.Warning, Message = "Could not schedule the wake-up of released {QueueId}; the sweep will")]
    private static partial void LogReleasedWakeUpFailed(ILogger logger, Exception exception, string queueId);
}

public enum ClaimStatus
{
    Claimed,
    NotFound,
    NotDue,
    Busy,
}

/// <param name="Record">The claimed record (or the last copy read); null when it no longer exists.</param>
public readonly record struct ClaimResult(ClaimStatus Status, SpoolRecord? Record);

public enum ReleaseStatus
{
    /// <summary>Committed with its next attempt (and a wake-up, unless <see cref="ReleaseResult.WakeUpError"/>).</summary>
    Deferred,

    /// <summary>Every recipient answered and notified: the record and its body are gone.</summary>
    Finished,

    /// <summary>The record changed under the claim (its lease ran out and someone else took it).</summary>
    LostClaim,
}

/// <param name="WakeUpError">Why the next wake-up could not be scheduled; the sweep will.</param>
/// <param name="Record">A deferred record as last stored; null when it finished or the claim was lost.</param>
public readonly record struct ReleaseResult(ReleaseStatus Status, Exception? WakeUpError = null, SpoolRecord? Record = null);

/// <param name="TokenKept">The token is kept in the record, or there was none worth keeping.</param>
/// <param name="TokenError">Why the token could not be kept; the wake-up is scheduled all the same.</param>
public readonly record struct FirstWakeUp(bool TokenKept, Exception? TokenError);

/// <param name="CancelFailure">The old wake-up that could not be cancelled, and why; it will find the record changed and do nothing.</param>
public readonly record struct FlushResult(bool Flushed, (string Token, Exception Error)? CancelFailure = null)
{
    public static FlushResult NotFlushed => default;
}

/// <param name="Flushed">How many records were made due now.</param>
/// <param name="CancelFailures">Old wake-ups that could not be cancelled; each will find its record changed and do nothing.</param>
/// <param name="ScheduleFailure">Why the new wake-ups could not be scheduled (some may have been); the sweep gives the records new ones.</param>
public sealed record FlushManyResult(int Flushed, IReadOnlyList<(string Token, Exception Error)> CancelFailures, Exception? ScheduleFailure);

/// <summary>The outcome of an operator's change (hold, release, delete).</summary>
public enum LedgerChange
{
    Done,

    /// <summary>Already in the state asked for (held, or not held).</summary>
    Unchanged,

    NotFound,

    /// <summary>Being delivered right now, or changed under every try: try again later.</summary>
    Busy,
}
