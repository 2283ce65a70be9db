// Primary status in Azure Tables: one entity per domain in table "primaries"
// (PartitionKey = domain in lower case, RowKey = "status"). Every Functions timer
// run is a new invocation, so the monitor's memory of "was down" must live here.
//
// Concurrency: the probe timer and every Forward invocation report on the same
// primary, possibly on several instances at once. A blind upsert would let one of
// them overwrite a change it never saw (Up → Down → Up with nobody flushing), so a
// write is conditional on the ETag it was decided from (If-Match, Replace mode),
// and the first write of a domain is an insert. The service answers 412 (someone
// wrote first), 404 (the entity is gone) or 409 (someone inserted first); each
// becomes false, and the monitor reads again and decides again.
using System.Runtime.CompilerServices;
using Azure;
using Azure.Data.Tables;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;

namespace BackupMx.Azure;

public sealed class TablePrimaryStatusStore : IPrimaryStatusStore
{
    private const string RowKey = "status";

    private readonly TableClient _table;

    public TablePrimaryStatusStore(TableClient table)
    {
        ArgumentNullException.ThrowIfNull(table);
        _table = table;
    }

    public TableClient Table => _table;

    public async Task<VersionedPrimaryStatus?> GetAsync(string domain, CancellationToken cancellationToken)
    {
        var response = await _table.GetEntityIfExistsAsync<TableEntity>(SpoolEntityMapper.PartitionKey(domain), RowKey, cancellationToken: cancellationToken).ConfigureAwait(false);
        return response.HasValue ? new VersionedPrimaryStatus(FromEntity(response.Value!), response.Value!.ETag.ToString()) : null;
    }

    public async Task<bool> TrySetAsync(PrimaryStatus status, string? expectedVersion, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(status);
        var entity = new TableEntity(SpoolEntityMapper.PartitionKey(status.Domain), RowKey)
        {
            ["Domain"] = status.Domain,
            ["State"] = (int)status.State,
        };
        if (status.Since is { } since)
        {
            entity["SinceTicks"] = since.UtcTicks;
        }

        if (status.LastChecked is { } checkedAt)
        {
            entity["LastCheckedTicks"] = checkedAt.UtcTicks;
        }

        if (status.LastError is not null)
        {
            // Bounded in Core already; a string property holds 32K UTF-16 characters whatever Core decides.
            entity["LastError"] = StoredText.Bound(status.LastError, SpoolEntityMapper.MaxPlainRecipientChars);
        }

        if (status.Host is not null)
        {
            entity["Host"] = status.Host;
        }

        try
        {
            if (expectedVersion is null)
            {
                await _table.AddEntityAsync(entity, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await _table.UpdateEntityAsync(entity, new ETag(expectedVersion), TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
            }

            return true;
        }
        catch (RequestFailedException ex) when (expectedVersion is null ? ex.Status == 409 : ex.Status is 412 or 404)
        {
            return false;
        }
    }

    public async Task<IReadOnlyList<PrimaryStatus>> ListAsync(CancellationToken cancellationToken)
    {
        var list = new List<PrimaryStatus>();
        await foreach (var entity in Query(cancellationToken).ConfigureAwait(false))
        {
            list.Add(entity);
        }

        return list;
    }

    private async IAsyncEnumerable<PrimaryStatus> Query([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var filter = TableClient.CreateQueryFilter($"RowKey eq {RowKey}");
        await foreach (var entity in _table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            yield return FromEntity(entity);
        }
    }

    private static PrimaryStatus FromEntity(TableEntity entity) => new(
        entity.GetString("Domain") ?? entity.PartitionKey,
        (PrimaryState)(entity.GetInt32("State") ?? 0),
        entity.GetInt64("SinceTicks") is { } since ? new DateTimeOffset(since, TimeSpan.Zero) : null,
        entity.GetInt64("LastCheckedTicks") is { } checkedAt ? new DateTimeOffset(checkedAt, TimeSpan.Zero) : null,
        entity.GetString("LastError"),
        entity.GetString("Host"));
}
