// Expiry and repair: the periodic pass over the whole spool.
//
// Wake-ups can be lost (rule 2), so any record that has been due for longer than
// a grace period gets a fresh wake-up. Records past their retention are handed to
// the forwarder at once, which fails their pending recipients with 4.4.7 and
// queues the DSN. Leases left by a crashed worker simply run out; the record is
// then due again and found here.
using BackupMx.Core.Forwarding;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging;

namespace BackupMx.Core.Expiry;

public sealed record SweepReport(int Examined, int Rescheduled, int Expired);

public sealed partial class SpoolSweeper(
    ISpoolStore spool,
    IWakeUpQueue wakeUps,
    MessageForwarder forwarder,
    TimeProvider time,
    ILogger<SpoolSweeper> logger)
{
    /// <summary>How long past its due time a record may wait for its wake-up before we assume it was lost.</summary>
    public TimeSpan Grace { get; init; } = TimeSpan.FromMinutes(2);

    public async Task<SweepReport> SweepAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        int examined = 0, rescheduled = 0, expired = 0;
        var overdue = new List<SpoolRecord>();
        await foreach (var record in spool.ListAllAsync(cancellationToken).ConfigureAwait(false))
        {
            examined++;
            if (record.IsLeased(now))
            {
                continue;
            }

            if (record.ExpiresAt <= now || record.IsFinished)
            {
                overdue.Add(record);
            }
            else if (record.NextAttemptAt <= now - Grace)
            {
                await wakeUps.ScheduleAfterCommitAsync(spool, record, now, cancellationToken).ConfigureAwait(false);

                rescheduled++;
            }
        }

        foreach (var record in overdue)
        {
            var outcome = await forwarder.ProcessAsync(new WakeUp(record.Domain, record.QueueId), cancellationToken).ConfigureAwait(false);
            if (outcome == ForwardOutcome.Finished)
            {
                expired++;
            }
        }

        if (rescheduled > 0 || expired > 0)
        {
            LogSwept(logger, examined, rescheduled, expired);
        }

        return new SweepReport(examined, rescheduled, expired);
    }

    [LoggerMessage(EventId = 500, Level = LogLevel.Information, Message = "Sweep: {Examined} record(s) examined, {Rescheduled} wake-up(s) re-scheduled, {Expired} finished after expiry")]
    private static partial void LogSwept(ILogger logger, int examined, int rescheduled, int expired);
}
