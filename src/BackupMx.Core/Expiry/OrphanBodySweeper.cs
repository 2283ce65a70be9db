using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging;

namespace BackupMx.Core.Expiry;

/// <summary>
/// Deletes bodies that no spool record refers to and that are older than any intake can take:
/// a receiver killed after the body upload and before the record commit leaves one, and nothing
/// else would ever remove it. Bodies of quarantined records are kept (an operator decides).
/// </summary>
/// <remarks>
/// Bodies are listed before records: a body old enough to be a candidate had its record committed
/// (if ever) before the records are read, so a live message is never taken for an orphan. A record
/// removed between the two reads had its body deleted by the ledger; deleting it again is harmless.
/// Reading every record costs a full pass over the spool, so a run is skipped when there are no
/// candidates, and at most one run per <c>interval</c> happens in this process.
/// </remarks>
public sealed partial class OrphanBodySweeper(ISpoolStore spool, IBodyStore bodies, IBodyInventory inventory, TimeProvider time, ILogger<OrphanBodySweeper> logger)
{
    private readonly Lock _lock = new();
    private DateTimeOffset? _nextRun;

    /// <summary>
    /// Runs <see cref="SweepAsync"/> unless this process ran it less than <paramref name="interval"/> ago.
    /// </summary>
    /// <returns>The number of bodies deleted, or null when it was not yet time.</returns>
    public async Task<int?> SweepIfDueAsync(TimeSpan minAge, int maxPerRun, TimeSpan interval, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            if (_nextRun is { } next && now < next)
            {
                return null;
            }

            _nextRun = now + interval;
        }

        return await SweepAsync(minAge, maxPerRun, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deletes up to <paramref name="maxPerRun"/> bodies without a record, last written more than <paramref name="minAge"/> ago.</summary>
    /// <returns>The number of bodies deleted.</returns>
    public async Task<int> SweepAsync(TimeSpan minAge, int maxPerRun, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPerRun, 1);
        var candidates = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var body in inventory.ListWrittenBeforeAsync(time.GetUtcNow() - minAge, cancellationToken).ConfigureAwait(false))
        {
            candidates.Add(body.QueueId);
        }

        if (candidates.Count == 0)
        {
            return 0;
        }

        await foreach (var record in spool.ListAllAsync(cancellationToken).ConfigureAwait(false))
        {
            candidates.Remove(record.QueueId);
        }

        await foreach (var quarantined in spool.ListQuarantinedAsync(cancellationToken).ConfigureAwait(false))
        {
            candidates.Remove(quarantined.QueueId);
        }

        var removed = 0;
        foreach (var queueId in candidates.Order(StringComparer.Ordinal).Take(maxPerRun))
        {
            await bodies.DeleteAsync(queueId, cancellationToken).ConfigureAwait(false);
            LogOrphanRemoved(logger, queueId, minAge);
            removed++;
        }

        if (candidates.Count > removed)
        {
            LogMoreLeft(logger, candidates.Count - removed, maxPerRun);
        }

        return removed;
    }

    [LoggerMessage(EventId = 1990, Level = LogLevel.Warning, Message = "Removed the orphaned body {QueueId}: no spool record refers to it and it is older than {MinAge}")]
    private static partial void LogOrphanRemoved(ILogger logger, string queueId, TimeSpan minAge);

    [LoggerMessage(EventId = 1991, Level = LogLevel.Information, Message = "{Count} more orphaned bodies are left for the next run (at most {MaxPerRun} per run)")]
    private static partial void LogMoreLeft(ILogger logger, int count, int maxPerRun);
}
