using BackupMx.Core.Model;
using BackupMx.Core.Ports;

namespace BackupMx.Core.Forwarding;

/// <summary>
/// The one way to wake a spooled message: call it only after the record's state is committed
/// (a wake-up that arrived first would find the old state, do nothing, and be lost), then keep
/// the token of a future wake-up in the record so a later flush can cancel it.
/// </summary>
public static class WakeUpScheduling
{
    /// <summary>
    /// Schedules a wake-up for <paramref name="record"/> at <paramref name="dueAt"/> and, when it is
    /// due later than <paramref name="now"/>, stores its token. A wake-up due now is never worth
    /// cancelling (a flush would only make the message due now again), so it costs no state write:
    /// in Azure that is one Table transaction less per accepted message and per flush.
    /// Scheduling failures propagate; a lost race on storing the token only returns false, because a
    /// token that is not kept costs no more than one redundant wake-up later.
    /// </summary>
    public static async Task<bool> ScheduleAfterCommitAsync(
        this IWakeUpQueue wakeUps,
        ISpoolStore spool,
        SpoolRecord record,
        DateTimeOffset dueAt,
        DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        var token = await wakeUps.ScheduleAsync(new WakeUp(record.Domain, record.QueueId), dueAt, cancellationToken).ConfigureAwait(false);
        if (token is null || dueAt <= now)
        {
            return true;
        }

        record.WakeUpToken = token;
        return await spool.TryUpdateAsync(record, cancellationToken).ConfigureAwait(false);
    }
}
