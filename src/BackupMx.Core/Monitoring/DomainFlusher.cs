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
/// message's scheduled wake-up is cancelled and replaced by one due at once, the replacements
/// of a page of messages scheduled together.
/// </summary>
public sealed partial class DomainFlusher(SpoolLedger ledger, TimeProvider time, ILogger<DomainFlusher> logger, WakeUpSignal? pump = null)
{
    /// <summary>Records updated at the same time: each waits for its own commit, and concurrent ones share one.</summary>
    internal const int Parallelism = 16;

    /// <summary>Records committed before their wake-ups are scheduled together, where a flush writes each record.</summary>
    internal const int PageSize = 100;

    /// <returns>The number of messages made due.</returns>
    public async Task<int> FlushAsync(string domain, string reason, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (await ledger.TryFlushDomainAsync(domain, now, cancellationToken).ConfigureAwait(false))
        {
            // Counted in a view of the spool fixed before the pump is woken: a message it claims is no
            // longer counted as flushed, and the operator would be told that nothing was due. The pump
            // need not wait for the count itself (one indexed range, long on a large spool).
            var due = await ledger.CountFlushedAsync(domain, () => pump?.Set(), cancellationToken).ConfigureAwait(false);
            LogFlushed(logger, domain, due, reason);
            return due;
        }

        // Pages of records: each page is committed, Parallelism records at a time (one by one would
        // cost a durable commit each, in sequence), and then its wake-ups go out together (in Azure,
        // Service Bus schedule calls of up to 100 messages instead of one call per message). A page
        // is small so that the first wake-ups leave early.
        var flushed = 0;
        var page = new List<SpoolRecord>(PageSize);
        await foreach (var listed in ledger.ListDomainAsync(domain, cancellationToken).ConfigureAwait(false))
        {
            page.Add(listed);
            if (page.Count == PageSize)
            {
                flushed += await FlushPageAsync(domain, page, now, cancellationToken).ConfigureAwait(false);
                page.Clear();
            }
        }

        if (page.Count > 0)
        {
            flushed += await FlushPageAsync(domain, page, now, cancellationToken).ConfigureAwait(false);
        }

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

    private async Task<int> FlushPageAsync(string domain, List<SpoolRecord> page, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var result = await ledger.FlushManyAsync(page, now, Parallelism, cancellationToken).ConfigureAwait(false);
        foreach (var (token, error) in result.CancelFailures)
        {
            LogCancelFailed(logger, error, token);
        }

        if (result.ScheduleFailure is { } failure)
        {
            // The records are committed as due: the sweep gives each a wake-up once it has been due
            // for its grace period. The rest of the domain is still flushed.
            LogScheduleFailed(logger, failure, result.Flushed, domain);
        }

        return result.Flushed;
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

    [LoggerMessage(EventId = 1303, Level = LogLevel.Warning, Message = "Flushed {Count} message(s) of {Domain} but could not schedule their wake-ups; the sweep will")]
    private static partial void LogScheduleFailed(ILogger logger, Exception exception, int count, string domain);

    [LoggerMessage(EventId = 1301, Level = LogLevel.Debug, Message = "Could not cancel wake-up {Token}")]
    private static partial void LogCancelFailed(ILogger logger, Exception exception, string token);
}
