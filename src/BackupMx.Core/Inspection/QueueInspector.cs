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
    string? LastError,
    DateTimeOffset? HeldAt = null);

/// <summary>The operator's view of the spool, shared by the embedded admin command and the Azure admin API.</summary>
public sealed class QueueInspector(ISpoolStore spool, IPrimaryStatusStore statuses, IOptions<BackupMxOptions> options, TimeProvider time)
{
    public async Task<IReadOnlyList<DomainQueueSummary>> SummarizeAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        QueueTally tally;
        if (spool is ISpoolTally totals)
        {
            tally = await totals.TallyAsync(cancellationToken).ConfigureAwait(false);
        }
        else
        {
            tally = new QueueTally();
            await foreach (var record in spool.ListAllAsync(cancellationToken).ConfigureAwait(false))
            {
                tally.Add(record);
            }
        }

        return await SummarizeAsync(tally, now, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The summary from totals another pass over the spool gathered (the sweep's), without reading the spool again.</summary>
    public Task<IReadOnlyList<DomainQueueSummary>> SummarizeAsync(QueueTally tally, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tally);
        return SummarizeAsync(tally, time.GetUtcNow(), cancellationToken);
    }

    private async Task<IReadOnlyList<DomainQueueSummary>> SummarizeAsync(QueueTally tally, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // Configured names first, so their spelling wins over a record's differently cased one.
        var domains = new SortedSet<string>(options.Value.Domains.Select(d => d.Name), StringComparer.OrdinalIgnoreCase);
        domains.UnionWith(tally.Domains.Keys);

        var result = new List<DomainQueueSummary>();
        foreach (var domain in domains)
        {
            var status = (await statuses.GetAsync(domain, cancellationToken).ConfigureAwait(false))?.Status;
            tally.Domains.TryGetValue(domain, out var totals);
            var oldest = totals?.OldestReceivedAt;
            result.Add(new DomainQueueSummary(
                domain,
                totals?.Messages ?? 0,
                totals?.Recipients ?? 0,
                oldest is null ? null : now - oldest.Value,
                status?.State ?? PrimaryState.Unknown,
                status?.Since,
                totals?.LastError ?? status?.LastError));
        }

        return result;
    }

    /// <summary>
    /// Records moved aside because they could not be read, of <paramref name="domain"/> or of every
    /// domain: they are neither delivered nor expired, so only an operator can settle them.
    /// </summary>
    public async Task<IReadOnlyList<QuarantinedRecord>> ListQuarantinedAsync(string? domain, CancellationToken cancellationToken)
    {
        var result = new List<QuarantinedRecord>();
        await foreach (var record in spool.ListQuarantinedAsync(cancellationToken).ConfigureAwait(false))
        {
            if (domain is null || string.Equals(record.Domain, domain, StringComparison.OrdinalIgnoreCase))
            {
                result.Add(record);
            }
        }

        return result.OrderBy(r => r.QueueId, StringComparer.Ordinal).ToList();
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
                r.LastError,
                r.HeldAt));
        }

        return result.OrderBy(v => v.ReceivedAt).ToList();
    }
}
