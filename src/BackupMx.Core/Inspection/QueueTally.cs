using BackupMx.Core.Model;

namespace BackupMx.Core.Inspection;

/// <summary>
/// Per-domain totals gathered while another pass pages through the spool (the sweep), so that
/// <see cref="QueueInspector.SummarizeAsync(QueueTally, CancellationToken)"/> needs no read of
/// its own. Only the totals are kept, not the records.
/// </summary>
public sealed class QueueTally
{
    private readonly Dictionary<string, DomainTotals> _domains = new(StringComparer.OrdinalIgnoreCase);

    public void Add(SpoolRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!_domains.TryGetValue(record.Domain, out var totals))
        {
            _domains[record.Domain] = totals = new DomainTotals();
        }

        totals.Messages++;
        totals.Recipients += record.PendingRecipients.Count();
        if (totals.OldestReceivedAt is null || record.ReceivedAt < totals.OldestReceivedAt)
        {
            totals.OldestReceivedAt = record.ReceivedAt;
        }

        // The most recent attempt's error; on a tie the first record seen keeps it.
        if (record.LastError is not null
            && (totals.LastError is null || Comparer<DateTimeOffset?>.Default.Compare(record.LastAttemptAt, totals.LastErrorAt) > 0))
        {
            totals.LastError = record.LastError;
            totals.LastErrorAt = record.LastAttemptAt;
        }
    }

    internal IReadOnlyDictionary<string, DomainTotals> Domains => _domains;

    internal sealed class DomainTotals
    {
        public int Messages { get; set; }

        public int Recipients { get; set; }

        public DateTimeOffset? OldestReceivedAt { get; set; }

        public string? LastError { get; set; }

        public DateTimeOffset? LastErrorAt { get; set; }
    }
}
