// Expiry and repair: the periodic pass over the whole spool.
//
// Wake-ups can be lost (rule 2), so any record that has been due for longer than
// a grace period gets a fresh wake-up. Records past their retention are handed to
// the forwarder at once, which fails their pending recipients with 4.4.7 and
// queues the DSN. Leases left by a crashed worker simply run out; the record is
// then due again and found here. The sweep can also total the spool per domain as
// it goes (QueueTally), so the spool gauges need no second read. A record that
// fails (its wake-up cannot be scheduled, its expiry throws) is logged with its
// queue id and left to the next sweep; it never stops the records after it.
using BackupMx.Core.Forwarding;
using BackupMx.Core.Inspection;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Core.Spool;
using Microsoft.Extensions.Logging;

namespace BackupMx.Core.Expiry;

/// <param name="Failed">Records the sweep could not handle this time (logged with their queue ids).</param>
public sealed record SweepReport(int Examined, int Rescheduled, int Expired, int Failed = 0);

public sealed partial class SpoolSweeper(
    SpoolLedger ledger,
    MessageForwarder forwarder,
    TimeProvider time,
    ILogger<SpoolSweeper> logger)
{
    /// <summary>How long past its due time a record may wait for its wake-up before we assume it was lost.</summary>
    public TimeSpan Grace { get; init; } = TimeSpan.FromMinutes(2);

    public Task<SweepReport> SweepAsync(CancellationToken cancellationToken) => SweepAsync(null, cancellationToken);

    /// <summary>
    /// One sweep that also adds every record left in the spool afterwards to <paramref name="tally"/>.
    /// A record the sweep hands to the forwarder is read again once that is done; a DSN the
    /// forwarder queues meanwhile is counted by the next sweep.
    /// </summary>
    public async Task<SweepReport> SweepAsync(QueueTally? tally, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        int examined = 0, rescheduled = 0, expired = 0, failed = 0;
        var overdue = new List<SpoolRecord>();
        await foreach (var record in ledger.ListAllAsync(cancellationToken).ConfigureAwait(false))
        {
            examined++;
            // A held message waits for its release: it neither expires nor needs a wake-up.
            if (record.IsLeased(now) || record.IsHeld)
            {
                tally?.Add(record);
                continue;
            }

            if (record.ExpiresAt <= now || record.IsFinished)
            {
                overdue.Add(record);
                continue;
            }

            tally?.Add(record);
            if (record.DueAt <= now - Grace)
            {
                try
                {
                    await ledger.RescheduleLostWakeUpAsync(record, now, cancellationToken).ConfigureAwait(false);
                    rescheduled++;
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    failed++;
                    LogRecordFailed(logger, ex, record.QueueId);
                }
            }
        }

        foreach (var record in overdue)
        {
            ForwardOutcome outcome;
            try
            {
                outcome = await forwarder.ProcessAsync(new WakeUp(record.Domain, record.QueueId), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                failed++;
                LogRecordFailed(logger, ex, record.QueueId);
                tally?.Add(record);
                continue;
            }

            if (outcome == ForwardOutcome.Finished)
            {
                expired++;
            }
            else if (tally is not null && outcome != ForwardOutcome.NotFound
                && await ledger.FindAsync(record.Domain, record.QueueId, cancellationToken).ConfigureAwait(false) is { } current)
            {
                tally.Add(current);
            }
        }

        if (rescheduled > 0 || expired > 0 || failed > 0)
        {
            LogSwept(logger, examined, rescheduled, expired, failed);
        }

        return new SweepReport(examined, rescheduled, expired, failed);
    }

    [LoggerMessage(EventId = 1500, Level = LogLevel.Information, Message = "Sweep: {Examined} record(s) examined, {Rescheduled} wake-up(s) re-scheduled, {Expired} finished after expiry, {Failed} failed")]
    private static partial void LogSwept(ILogger logger, int examined, int rescheduled, int expired, int failed);

    [LoggerMessage(EventId = 1501, Level = LogLevel.Error, Message = "Sweep: could not handle {QueueId}; the next sweep tries again")]
    private static partial void LogRecordFailed(ILogger logger, Exception exception, string queueId);
}
