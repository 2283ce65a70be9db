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
// The SDK resends a request whose response was lost. When the first one had been
// carried out, the resent insert meets 409 and the resent update 412 against our own
// write; taken at face value, the first leaves a record whose intake then fails and
// removes its body, and the second makes a worker drop a delivery it has made. So
// every insert and update carries a fresh write id (column WriteId), and on 409 or
// 412 the stored entity is read back: if it carries our write id, the write is done
// (with the stored ETag).
//
// Cost: Tables has no secondary indexes and no server-side ORDER BY, so ListDueAsync
// is a filtered scan of the whole table (every partition) that reads every due
// record, passes by those whose lease still runs, and keeps the earliest `max` in a bounded heap. That is one request per
// 1,000 due records; fine for a backup MX whose spool holds thousands, not millions.
//
// Quarantine: an entity that cannot be mapped back to a record is copied, columns and
// all, to the partition "%quarantine" (no domain's key can be that: a '%' in a domain
// is escaped as %25) and then deleted under its ETag, by whichever read meets it. The
// table-wide scans leave that partition out, so one bad entity never stops a sweep.
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
    /// <summary>The partition that holds quarantined entities; see the file header.</summary>
    public const string QuarantinePartition = "%quarantine";

    private const string QuarantinedFrom = "QuarantinedFrom";
    private const string QuarantineReason = "QuarantineReason";

    // A string property holds at most 32 K characters; a reason is a short exception message anyway.
    private const int MaxReasonLength = 1024;

    private static readonly string OutsideQuarantine = TableClient.CreateQueryFilter($"PartitionKey ne {QuarantinePartition}");

    private readonly TableClient _table;
    private readonly ILogger _logger;

    public TableSpoolStore(TableClient table, ILogger<TableSpoolStore>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        _table = table;
        _logger = logger ?? NullLogger<TableSpoolStore>.Instance;
    }

    public TableClient Table => _table;

    public async Task<SpoolRecord> CreateAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        CheckId(record.QueueId);
        var entity = SpoolEntityMapper.ToEntity(record);
        var writeId = SpoolEntityMapper.StampWrite(entity);
        try
        {
            var response = await _table.AddEntityAsync(entity, cancellationToken).ConfigureAwait(false);
            return record with { ETag = ETagOf(response) };
        }
        catch (RequestFailedException ex) when (ex.Status == 409)
        {
            if (await FindOwnWriteAsync(entity.PartitionKey, entity.RowKey, writeId, cancellationToken).ConfigureAwait(false) is not { } etag)
            {
                throw new SpoolConflictException(record.QueueId);
            }

            LogOwnWriteRecognised(_logger, record.QueueId, ex.Status);
            return record with { ETag = etag };
        }
    }

    public async Task<SpoolRecord?> GetAsync(string domain, string queueId, CancellationToken cancellationToken)
    {
        var response = await _table.GetEntityIfExistsAsync<TableEntity>(SpoolEntityMapper.PartitionKey(domain), queueId, cancellationToken: cancellationToken).ConfigureAwait(false);
        return response.HasValue ? await ReadOrQuarantineAsync(response.Value!, cancellationToken).ConfigureAwait(false) : null;
    }

    public async Task<SpoolRecord?> TryUpdateAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (string.IsNullOrEmpty(record.ETag))
        {
            // Never stored (or a caller bug): an unconditional write could overwrite a winner.
            return null;
        }

        CheckId(record.QueueId);
        var entity = SpoolEntityMapper.ToEntity(record);
        var writeId = SpoolEntityMapper.StampWrite(entity);
        try
        {
            var response = await _table.UpdateEntityAsync(entity, new ETag(record.ETag), TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
            return record with { ETag = ETagOf(response) };
        }
        catch (RequestFailedException ex) when (ex.Status is 412 or 404)
        {
            if (ex.Status == 412 && await FindOwnWriteAsync(entity.PartitionKey, entity.RowKey, writeId, cancellationToken).ConfigureAwait(false) is { } etag)
            {
                LogOwnWriteRecognised(_logger, record.QueueId, ex.Status);
                return record with { ETag = etag };
            }

            LogLostRace(_logger, record.QueueId, ex.Status);
            return null;
        }
    }

    private static string ETagOf(Response response) =>
        response.Headers.ETag?.ToString() ?? throw new InvalidOperationException("The table service returned no ETag.");

    /// <summary>The ETag of the stored entity when it is the result of write <paramref name="writeId"/>; null otherwise.</summary>
    private async Task<string?> FindOwnWriteAsync(string partitionKey, string rowKey, string writeId, CancellationToken cancellationToken)
    {
        var stored = await _table.GetEntityIfExistsAsync<TableEntity>(partitionKey, rowKey, cancellationToken: cancellationToken).ConfigureAwait(false);
        return stored.HasValue && SpoolEntityMapper.IsWrite(stored.Value!, writeId) ? stored.Value!.ETag.ToString() : null;
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
        var filter = TableClient.CreateQueryFilter($"NextAttemptAt le {SpoolEntityMapper.DueKey(dueBy)}") + " and " + OutsideQuarantine;

        // A max-heap of the earliest `max` seen so far: memory stays O(max) however many are due.
        var earliest = new PriorityQueue<SpoolRecord, (DateTimeOffset Due, string Id)>(max + 1, LatestFirst.Instance);
        var scanned = 0;
        await foreach (var record in QueryAsync(filter, cancellationToken).ConfigureAwait(false))
        {
            scanned++;

            // The filter finds the next attempts; a lease still running at dueBy (a message being
            // delivered right now, a handful at most) is passed by here.
            if (record.DueAt > dueBy)
            {
                continue;
            }

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

    public IAsyncEnumerable<SpoolRecord> ListAllAsync(CancellationToken cancellationToken) => QueryAsync(OutsideQuarantine, cancellationToken);

    public async IAsyncEnumerable<QuarantinedRecord> ListQuarantinedAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {QuarantinePartition}");
        await foreach (var entity in _table.QueryAsync<TableEntity>(filter, maxPerPage: 1000, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            // Read loosely: the columns are whatever the bad entity held.
            var from = entity.TryGetValue(QuarantinedFrom, out var f) && f is string key ? key : string.Empty;
            var domain = entity.TryGetValue(SpoolEntityMapper.Columns.Domain, out var d) && d is string name ? name : from;
            var reason = entity.TryGetValue(QuarantineReason, out var r) && r is string text ? text : string.Empty;
            yield return new QuarantinedRecord(domain, entity.RowKey, reason);
        }
    }

    private async IAsyncEnumerable<SpoolRecord> QueryAsync(string? filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var entity in _table.QueryAsync<TableEntity>(filter, maxPerPage: 1000, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            if (await ReadOrQuarantineAsync(entity, cancellationToken).ConfigureAwait(false) is { } record)
            {
                yield return record;
            }
        }
    }

    /// <summary>The entity's record, or null once an entity that cannot be read is moved to quarantine.</summary>
    private async Task<SpoolRecord?> ReadOrQuarantineAsync(TableEntity entity, CancellationToken cancellationToken)
    {
        Exception error;
        try
        {
            return SpoolEntityMapper.FromEntity(entity);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The mapping only reads the entity already fetched: whatever fails there is in the data.
            error = ex;
        }

        var copy = new TableEntity(QuarantinePartition, entity.RowKey);
        foreach (var (name, value) in entity)
        {
            if (name is not ("PartitionKey" or "RowKey" or "Timestamp" or "odata.etag"))
            {
                copy[name] = value;
            }
        }

        var reason = error.Message.Length <= MaxReasonLength ? error.Message : error.Message[..MaxReasonLength];
        copy[QuarantinedFrom] = entity.PartitionKey;
        copy[QuarantineReason] = reason;
        try
        {
            await _table.UpsertEntityAsync(copy, TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException ex) when (ex.Status == 400)
        {
            // The two extra columns pushed an entity already at the size or column limit over it.
            // The quarantine gets what identifies it, and the entity stays where it is so that its
            // columns are not lost: every read that meets it skips it (and logs it) again.
            var keys = new TableEntity(QuarantinePartition, entity.RowKey) { [QuarantinedFrom] = entity.PartitionKey, [QuarantineReason] = reason };
            if (entity.TryGetValue(SpoolEntityMapper.Columns.Domain, out var domain) && domain is string)
            {
                keys[SpoolEntityMapper.Columns.Domain] = domain;
            }

            await _table.UpsertEntityAsync(keys, TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
            LogQuarantined(_logger, error, entity.RowKey, entity.PartitionKey);
            return null;
        }

        try
        {
            await _table.DeleteEntityAsync(entity.PartitionKey, entity.RowKey, entity.ETag, cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException ex) when (ex.Status == 412)
        {
            // Rewritten since it was read (repaired, or claimed with a good copy): it is no longer ours to move.
            await _table.DeleteEntityAsync(QuarantinePartition, entity.RowKey, ETag.All, cancellationToken).ConfigureAwait(false);
            return null;
        }

        LogQuarantined(_logger, error, entity.RowKey, entity.PartitionKey);
        return null;
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

    [LoggerMessage(EventId = 5710, Level = LogLevel.Debug, Message = "Spool record {QueueId} changed or vanished under us (HTTP {Status})")]
    private static partial void LogLostRace(ILogger logger, string queueId, int status);

    [LoggerMessage(EventId = 5713, Level = LogLevel.Information, Message = "Spool record {QueueId}: a resent write met HTTP {Status} against its own first attempt, which had succeeded")]
    private static partial void LogOwnWriteRecognised(ILogger logger, string queueId, int status);

    [LoggerMessage(EventId = 5711, Level = LogLevel.Debug, Message = "Due scan read {Scanned} record(s), returned {Returned}")]
    private static partial void LogDueScan(ILogger logger, int scanned, int returned);

    [LoggerMessage(EventId = 5712, Level = LogLevel.Error, Message = "The spool record {QueueId} (partition {Partition}) cannot be read; moved it to the quarantine partition, where it waits for an operator (its body is kept)")]
    private static partial void LogQuarantined(ILogger logger, Exception exception, string queueId, string partition);
}
