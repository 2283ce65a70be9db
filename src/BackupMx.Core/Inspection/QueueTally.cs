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
        Add(record.Domain, 1, record.PendingRecipients.Count(), record.ReceivedAt, record.LastError, record.LastAttemptAt);
    }

    /// <summary>
    /// Adds totals a store computed for <paramref name="domain"/>: <paramref name="lastError"/> is the
    /// error of its most recent attempt, made at <paramref name="lastErrorAt"/>.
    /// </summary>
    public void Add(string domain, int messages, int recipients, DateTimeOffset? oldestReceivedAt, string? lastError, DateTimeOffset? lastErrorAt)
    {
        ArgumentNullException.ThrowIfNull(domain);
        if (!_domains.TryGetValue(domain, out var totals))
        {
            _domains[domain] = totals = new DomainTotals();
        }

        totals.Messages += messages;
        totals.Recipients += recipients;
        if (oldestReceivedAt is not null && (totals.OldestReceivedAt is null || oldestReceivedAt < totals.OldestReceivedAt))
        {
            totals.OldestReceivedAt = oldestReceivedAt;
        }

        if (lastError is not null && (totals.LastError is null || Comparer<DateTimeOffset?>.Default.Compare(lastErrorAt, totals.LastErrorAt) > 0))
        {
            totals.LastError = lastError;
            totals.LastErrorAt = lastErrorAt;
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
