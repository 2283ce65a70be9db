// The spool in Azure Tables.
//
// Layout: one table (default "spool"), one entity per message. PartitionKey is the
// destination domain in lower case, so a flush of one domain is a single-partition
// query; RowKey is the queue id. Scalars are columns of their own (instants as UTC
// ticks, NextAttemptAt as a fixed-width tick string that filters correctly); the
// per-recipient state is JSON in one string column, or Brotli-compressed across
// 64 KiB binary columns when it outgrows a string property (see SpoolEntityMapper).
//
// Concurrency: every change is conditional on the ETag the record was read with
// (If-Match; Replace mode, so a column that became null really disappears). The
// service answers 412 when someone else wrote first and 404 when the record is
// gone; both mean "you lost" and become false, never an exception. Creation is an
// insert, which the service refuses with 409 if the key exists.
//
// Cost: Tables has no secondary indexes and no server-side ORDER BY, so ListDueAsync
// is a filtered scan of the whole table (every partition) that reads every due
// record and keeps the earliest `max` in a bounded heap. That is one request per
// 1,000 due records; fine for a backup MX whose spool holds thousands, not millions.
using System.Runtime.CompilerServices;
using Azure;
using Azure.Data.Tables;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupMx.Azure;

public sealed partial class TableSpoolStore : ISpoolStore
{
    private readonly TableClient _table;
    private readonly ILogger _logger;

    public TableSpoolStore(TableClient table, ILogger<TableSpoolStore>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        _table = table;
        _logger = logger ?? NullLogger<TableSpoolStore>.Instance;
    }

    public TableClient Table => _table;

    public async Task CreateAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        CheckId(record.QueueId);
        var entity = SpoolEntityMapper.ToEntity(record);
        try
        {
            var response = await _table.AddEntityAsync(entity, cancellationToken).ConfigureAwait(false);
            record.ETag = response.Headers.ETag?.ToString() ?? throw new InvalidOperationException("The table service returned no ETag.");
        }
        catch (RequestFailedException ex) when (ex.Status == 409)
        {
            throw new SpoolConflictException(record.QueueId);
        }
    }

    public async Task<SpoolRecord?> GetAsync(string domain, string queueId, CancellationToken cancellationToken)
    {
        var response = await _table.GetEntityIfExistsAsync<TableEntity>(SpoolEntityMapper.PartitionKey(domain), queueId, cancellationToken: cancellationToken).ConfigureAwait(false);
        return response.HasValue ? SpoolEntityMapper.FromEntity(response.Value!) : null;
    }

    public async Task<bool> TryUpdateAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (string.IsNullOrEmpty(record.ETag))
        {
            // Never stored (or a caller bug): an unconditional write could overwrite a winner.
            return false;
        }

        CheckId(record.QueueId);
        var entity = SpoolEntityMapper.ToEntity(record);
        try
        {
            var response = await _table.UpdateEntityAsync(entity, new ETag(record.ETag), TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
            record.ETag = response.Headers.ETag?.ToString() ?? throw new InvalidOperationException("The table service returned no ETag.");
            return true;
        }
        catch (RequestFailedException ex) when (ex.Status is 412 or 404)
        {
            LogLostRace(_logger, record.QueueId, ex.Status);
            return false;
        }
    }

    public async Task<bool> TryDeleteAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (string.IsNullOrEmpty(record.ETag))
        {
            return false;
        }

        try
        {
            // The SDK reports a missing entity as a 404 response rather than an exception.
            var response = await _table.DeleteEntityAsync(SpoolEntityMapper.PartitionKey(record.Domain), record.QueueId, new ETag(record.ETag), cancellationToken).ConfigureAwait(false);
            return response.Status != 404;
        }
        catch (RequestFailedException ex) when (ex.Status is 412 or 404)
        {
            LogLostRace(_logger, record.QueueId, ex.Status);
            return false;
        }
    }

    /// <summary>Row keys are queue ids, as file names are in embedded mode: the two spools take the same ids.</summary>
    private static void CheckId(string queueId)
    {
        if (!QueueId.IsValid(queueId))
        {
            throw new ArgumentException($"'{queueId}' is not a valid queue id.", nameof(queueId));
        }
    }

    public IAsyncEnumerable<SpoolRecord> ListDomainAsync(string domain, CancellationToken cancellationToken) =>
        QueryAsync(TableClient.CreateQueryFilter($"PartitionKey eq {SpoolEntityMapper.PartitionKey(domain)}"), cancellationToken);

    public async IAsyncEnumerable<SpoolRecord> ListDueAsync(DateTimeOffset dueBy, int max, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (max <= 0)
        {
            yield break;
        }

        // Only the value is interpolated: CreateQueryFilter quotes every argument as a literal.
        var filter = TableClient.CreateQueryFilter($"NextAttemptAt le {SpoolEntityMapper.DueKey(dueBy)}");

        // A max-heap of the earliest `max` seen so far: memory stays O(max) however many are due.
        var earliest = new PriorityQueue<SpoolRecord, (DateTimeOffset Due, string Id)>(max + 1, LatestFirst.Instance);
        var scanned = 0;
        await foreach (var record in QueryAsync(filter, cancellationToken).ConfigureAwait(false))
        {
            scanned++;
            earliest.Enqueue(record, (record.NextAttemptAt, record.QueueId));
            if (earliest.Count > max)
            {
                earliest.Dequeue();
            }
        }

        var result = new SpoolRecord[earliest.Count];
        for (var i = result.Length - 1; i >= 0; i--)
        {
            result[i] = earliest.Dequeue();
        }

        LogDueScan(_logger, scanned, result.Length);
        foreach (var record in result)
        {
            yield return record;
        }
    }

    public IAsyncEnumerable<SpoolRecord> ListAllAsync(CancellationToken cancellationToken) => QueryAsync(null, cancellationToken);

    private async IAsyncEnumerable<SpoolRecord> QueryAsync(string? filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var entity in _table.QueryAsync<TableEntity>(filter, maxPerPage: 1000, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            yield return SpoolEntityMapper.FromEntity(entity);
        }
    }

    /// <summary>Orders the heap so that the latest (then the highest id) is dequeued first.</summary>
    private sealed class LatestFirst : IComparer<(DateTimeOffset Due, string Id)>
    {
        public static readonly LatestFirst Instance = new();

        public int Compare((DateTimeOffset Due, string Id) x, (DateTimeOffset Due, string Id) y)
        {
            var byDue = y.Due.CompareTo(x.Due);
            return byDue != 0 ? byDue : string.CompareOrdinal(y.Id, x.Id);
        }
    }

    [LoggerMessage(EventId = 710, Level = LogLevel.Debug, Message = "Spool record {QueueId} changed or vanished under us (HTTP {Status})")]
    private static partial void LogLostRace(ILogger logger, string queueId, int status);

    [LoggerMessage(EventId = 711, Level = LogLevel.Debug, Message = "Due scan read {Scanned} record(s), returned {Returned}")]
    private static partial void LogDueScan(ILogger logger, int scanned, int returned);
}
