using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Inspection;

/// <summary>One line per domain: what is queued, since when, and why it is not delivered.</summary>
public sealed record DomainQueueSummary(
    string Domain,
    int Messages,
    int Recipients,
    TimeSpan? OldestAge,
    PrimaryState PrimaryState,
    DateTimeOffset? PrimaryStateSince,
    string? LastError);

public sealed record QueuedMessageView(
    string QueueId,
    MessageKind Kind,
    string Sender,
    IReadOnlyList<string> PendingRecipients,
    DateTimeOffset ReceivedAt,
    DateTimeOffset NextAttemptAt,
    DateTimeOffset ExpiresAt,
    int Attempts,
    long Bytes,
    string? LastError);

/// <summary>The operator's view of the spool, shared by the embedded admin command and the Azure admin API.</summary>
public sealed class QueueInspector(ISpoolStore spool, IPrimaryStatusStore statuses, IOptions<BackupMxOptions> options, TimeProvider time)
{
    public async Task<IReadOnlyList<DomainQueueSummary>> SummarizeAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var byDomain = new Dictionary<string, List<SpoolRecord>>(StringComparer.OrdinalIgnoreCase);
        foreach (var domain in options.Value.Domains)
        {
            byDomain[domain.Name] = [];
        }

        await foreach (var record in spool.ListAllAsync(cancellationToken).ConfigureAwait(false))
        {
            if (!byDomain.TryGetValue(record.Domain, out var list))
            {
                byDomain[record.Domain] = list = [];
            }

            list.Add(record);
        }

        var result = new List<DomainQueueSummary>();
        foreach (var (domain, records) in byDomain.OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase))
        {
            var status = await statuses.GetAsync(domain, cancellationToken).ConfigureAwait(false);
            var oldest = records.Count == 0 ? (DateTimeOffset?)null : records.Min(r => r.ReceivedAt);
            var lastError = records.Where(r => r.LastError is not null).OrderByDescending(r => r.LastAttemptAt).FirstOrDefault()?.LastError
                ?? status?.LastError;
            result.Add(new DomainQueueSummary(
                domain,
                records.Count,
                records.Sum(r => r.PendingRecipients.Count()),
                oldest is null ? null : now - oldest.Value,
                status?.State ?? PrimaryState.Unknown,
                status?.Since,
                lastError));
        }

        return result;
    }

    public async Task<IReadOnlyList<QueuedMessageView>> ListAsync(string domain, CancellationToken cancellationToken)
    {
        var result = new List<QueuedMessageView>();
        await foreach (var r in spool.ListDomainAsync(domain, cancellationToken).ConfigureAwait(false))
        {
            result.Add(new QueuedMessageView(
                r.QueueId,
                r.Kind,
                r.Sender,
                r.PendingRecipients.Select(p => p.Address).ToList(),
                r.ReceivedAt,
                r.NextAttemptAt,
                r.ExpiresAt,
                r.Attempts,
                r.BodyLength,
                r.LastError));
        }

        return result.OrderBy(v => v.ReceivedAt).ToList();
    }
}
