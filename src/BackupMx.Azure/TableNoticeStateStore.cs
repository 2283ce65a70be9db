// The outage notifier's state in Azure mode: one row per domain in the primaries table, beside the
// primary's status (PartitionKey = domain, RowKey = "outage-notices"; the status rows have RowKey
// "status", and every reader of them filters on it). The ProbePrimaries timer runs on one instance
// at a time, so the rows have one writer; they are read again before every run because that run
// may be on another instance than the last.
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using BackupMx.Core.Notifications;

namespace BackupMx.Azure;

public sealed class TableNoticeStateStore(TableClient table) : INoticeStateStore
{
    public const string RowKey = "outage-notices";

    // A string property holds at most 64 KiB (32 K UTF-16 characters) and an entity 1 MiB: the JSON
    // is cut into parts, so one domain's outage can track some ten thousand waiting messages.
    private const int PartLength = 30_000;
    private const int MaxParts = 30;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.General);

    // What each domain's row holds now, so an unchanged row costs no write.
    private readonly Dictionary<string, string> _written = new(StringComparer.OrdinalIgnoreCase);

    public string Where => $"table {table.Name} (RowKey {RowKey})";

    public bool Shared => true;

    public async Task<NoticeState> LoadAsync(CancellationToken cancellationToken)
    {
        var state = new NoticeState();
        _written.Clear();
        var filter = TableClient.CreateQueryFilter($"RowKey eq {RowKey}");
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var text = new StringBuilder();
            for (var i = 0; entity.GetString(Part(i)) is { } part; i++)
            {
                text.Append(part);
            }

            var row = JsonSerializer.Deserialize<DomainRow>(text.ToString(), Json);
            if (row is null)
            {
                continue;
            }

            var domain = entity.GetString("Domain") ?? entity.PartitionKey;
            _written[domain] = text.ToString();
            if (row.Outage is not null)
            {
                state.Outages[domain] = row.Outage;
            }

            state.Pending.AddRange(row.Pending);
        }

        return state;
    }

    public async Task SaveAsync(NoticeState state, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(state);
        var domains = state.Outages.Keys.Concat(state.Pending.Select(p => p.Notice.Domain)).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var domain in domains)
        {
            var row = new DomainRow(
                state.Outages.GetValueOrDefault(domain),
                state.Pending.Where(p => string.Equals(p.Notice.Domain, domain, StringComparison.OrdinalIgnoreCase)).ToList());
            var text = JsonSerializer.Serialize(row, Json);
            if (_written.TryGetValue(domain, out var written) && written == text)
            {
                continue;
            }

            var entity = new TableEntity(SpoolEntityMapper.PartitionKey(domain), RowKey) { ["Domain"] = domain };
            var parts = (text.Length + PartLength - 1) / PartLength;
            if (parts > MaxParts)
            {
                throw new InvalidOperationException($"the outage state of {domain} is {text.Length} characters, more than a table row holds");
            }

            for (var i = 0; i < parts; i++)
            {
                entity[Part(i)] = text.Substring(i * PartLength, Math.Min(PartLength, text.Length - (i * PartLength)));
            }

            // Replace, not merge: a shorter state must not keep the parts of a longer one.
            await table.UpsertEntityAsync(entity, TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
            _written[domain] = text;
        }

        // An outage that ended with nothing left to send needs its row no more.
        foreach (var domain in _written.Keys.Where(d => !domains.Contains(d)).ToList())
        {
            try
            {
                await table.DeleteEntityAsync(SpoolEntityMapper.PartitionKey(domain), RowKey, ETag.All, cancellationToken).ConfigureAwait(false);
            }
            catch (RequestFailedException ex) when (ex.Status == 404)
            {
                // Already gone.
            }

            _written.Remove(domain);
        }
    }

    private static string Part(int i) => "State" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private sealed record DomainRow(OutageState? Outage, List<PendingState> Pending);
}
