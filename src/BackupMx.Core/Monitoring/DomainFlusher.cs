using BackupMx.Core.Forwarding;
using BackupMx.Core.Model;
using BackupMx.Core.Spool;
using Microsoft.Extensions.Logging;

namespace BackupMx.Core.Monitoring;

/// <summary>
/// Makes every spooled message of a domain due now with its retry count reset
/// (rule 7): on the primary's recovery, on ETRN and on an operator's request.
/// Where the spool keeps flush epochs (embedded mode) that is one write, and the pump is
/// woken at once, so the first delivery does not wait for the backlog; elsewhere each
/// message's scheduled wake-up is cancelled and replaced by one due at once.
/// </summary>
public sealed partial class DomainFlusher(SpoolLedger ledger, TimeProvider time, ILogger<DomainFlusher> logger, WakeUpSignal? pump = null)
{
    /// <summary>Records updated at the same time: each waits for its own commit, and concurrent ones share one.</summary>
    internal const int Parallelism = 16;

    /// <returns>The number of messages made due.</returns>
    public async Task<int> FlushAsync(string domain, string reason, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (await ledger.TryFlushDomainAsync(domain, now, cancellationToken).ConfigureAwait(false))
        {
            // Counted before the pump is woken: a message it claims is no longer counted as flushed,
            // and the operator would be told that nothing was due. The count is one indexed range.
            var due = await ledger.CountFlushedAsync(domain, cancellationToken).ConfigureAwait(false);
            pump?.Set();
            LogFlushed(logger, domain, due, reason);
            return due;
        }

        var flushed = 0;

        // One record at a time would cost a durable commit each, in sequence: after an outage
        // that is the pace at which the backlog becomes due. In parallel the writes share commits.
        await Parallel.ForEachAsync(
            ledger.ListDomainAsync(domain, cancellationToken),
            new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = cancellationToken },
            async (listed, ct) =>
            {
                if (await FlushOneAsync(listed, now, ct).ConfigureAwait(false))
                {
                    Interlocked.Increment(ref flushed);
                }
            }).ConfigureAwait(false);

        LogFlushed(logger, domain, flushed, reason);
        return flushed;
    }

    /// <summary>
    /// Makes one message due now with its retry count reset, as a flush of its domain would have;
    /// <paramref name="record"/> is the caller's current copy (it saves a read; a stale one costs a retry).
    /// </summary>
    /// <returns>Whether the message was made due now.</returns>
    public async Task<bool> FlushMessageAsync(SpoolRecord record, string reason, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        var flushed = await FlushOneAsync(record, time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        if (flushed)
        {
            LogFlushedMessage(logger, record.QueueId, record.Domain, reason);
        }

        return flushed;
    }

    private async Task<bool> FlushOneAsync(SpoolRecord listed, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var result = await ledger.FlushAsync(listed, now, cancellationToken).ConfigureAwait(false);
        if (result.CancelFailure is { } failure)
        {
            // A stale wake-up finds the record not due (or leased) and does nothing.
            LogCancelFailed(logger, failure.Error, failure.Token);
        }

        return result.Flushed;
    }

    [LoggerMessage(EventId = 1300, Level = LogLevel.Information, Message = "Flushed {Domain}: {Count} message(s) due now ({Reason})")]
    private static partial void LogFlushed(ILogger logger, string domain, int count, string reason);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Information, Message = "Flushed {QueueId} for {Domain}: due now ({Reason})")]
    private static partial void LogFlushedMessage(ILogger logger, string queueId, string domain, string reason);

    [LoggerMessage(EventId = 1301, Level = LogLevel.Debug, Message = "Could not cancel wake-up {Token}")]
    private static partial void LogCancelFailed(ILogger logger, Exception exception, string token);
}
