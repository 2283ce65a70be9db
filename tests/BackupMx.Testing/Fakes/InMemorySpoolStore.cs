using System.Runtime.CompilerServices;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Core.Spool;

namespace BackupMx.Testing.Fakes;

/// <summary>
/// The reference <see cref="ISpoolStore"/>: what the contract suite says, and nothing durable. It
/// refuses what the real stores refuse (an id that is not a queue id, a write without an ETag, a
/// cancelled call), so a test cannot pass here on something SQLite or Tables would not take.
/// </summary>
public sealed class InMemorySpoolStore : ISpoolStore, IFlushEpochStore
{
    private readonly Dictionary<string, DateTimeOffset> _epochs = new(StringComparer.OrdinalIgnoreCase);

    private readonly Dictionary<string, SpoolRecord> _records = new(StringComparer.Ordinal);

    // Records marked unreadable by Corrupt, and where reads move them (see ISpoolStore.ListQuarantinedAsync).
    private readonly HashSet<string> _unreadable = new(StringComparer.Ordinal);
    private readonly List<QuarantinedRecord> _quarantined = [];
    private readonly Lock _lock = new();
    private long _version;

    /// <summary>When set, every call throws this (to simulate a failing store).</summary>
    public Exception? FailWith { get; set; }

    /// <summary>
    /// When set, a due listing awaits this after handing out its last record and before it ends
    /// (to hold a reader inside its listing while other work completes).
    /// </summary>
    public Func<Task>? AfterDueListing { get; set; }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _records.Count;
            }
        }
    }

    public Task<SpoolRecord> CreateAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        ThrowIfFailing();
        cancellationToken.ThrowIfCancellationRequested();
        CheckId(record.QueueId);
        lock (_lock)
        {
            if (_records.ContainsKey(record.QueueId))
            {
                throw new SpoolConflictException(record.QueueId);
            }

            var stored = record with { ETag = NextETag() };
            _records[record.QueueId] = stored;
            return Task.FromResult(stored);
        }
    }

    public Task<SpoolRecord?> GetAsync(string domain, string queueId, CancellationToken cancellationToken)
    {
        ThrowIfFailing();
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            return Task.FromResult(_records.TryGetValue(queueId, out var r) && string.Equals(r.Domain, domain, StringComparison.OrdinalIgnoreCase) && !Quarantine(r) ? Present(r) : null);
        }
    }

    public Task<SpoolRecord?> TryUpdateAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        ThrowIfFailing();
        cancellationToken.ThrowIfCancellationRequested();
        if (string.IsNullOrEmpty(record.ETag))
        {
            // Never stored: an unconditional write could overwrite a winner.
            return Task.FromResult<SpoolRecord?>(null);
        }

        CheckId(record.QueueId);
        lock (_lock)
        {
            if (!_records.TryGetValue(record.QueueId, out var current) || current.ETag != record.ETag)
            {
                return Task.FromResult<SpoolRecord?>(null);
            }

            var stored = record with { ETag = NextETag() };
            _records[record.QueueId] = stored;
            _unreadable.Remove(record.QueueId);
            return Task.FromResult<SpoolRecord?>(stored);
        }
    }

    public Task<bool> TryDeleteAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        ThrowIfFailing();
        cancellationToken.ThrowIfCancellationRequested();
        if (string.IsNullOrEmpty(record.ETag))
        {
            return Task.FromResult(false);
        }

        lock (_lock)
        {
            if (!_records.TryGetValue(record.QueueId, out var current) || current.ETag != record.ETag)
            {
                return Task.FromResult(false);
            }

            _records.Remove(record.QueueId);
            _unreadable.Remove(record.QueueId);
            return Task.FromResult(true);
        }
    }

    public IAsyncEnumerable<SpoolRecord> ListDomainAsync(string domain, CancellationToken cancellationToken) =>
        Snapshot(r => string.Equals(r.Domain, domain, StringComparison.OrdinalIgnoreCase), int.MaxValue, cancellationToken);

    public async IAsyncEnumerable<SpoolRecord> ListDueAsync(DateTimeOffset dueBy, int max, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var record in Snapshot(r => r.DueAt <= dueBy, max, cancellationToken).ConfigureAwait(false))
        {
            yield return record;
        }

        if (AfterDueListing is { } hook)
        {
            await hook().ConfigureAwait(false);
        }
    }

    public IAsyncEnumerable<SpoolRecord> ListAllAsync(CancellationToken cancellationToken) =>
        Snapshot(_ => true, int.MaxValue, cancellationToken);

    private async IAsyncEnumerable<SpoolRecord> Snapshot(Func<SpoolRecord, bool> filter, int max, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ThrowIfFailing();
        cancellationToken.ThrowIfCancellationRequested();
        List<SpoolRecord> snapshot;
        lock (_lock)
        {
            snapshot = _records.Values.Select(Present).Where(filter).OrderBy(r => r.NextAttemptAt).ThenBy(r => r.QueueId, StringComparer.Ordinal).ToList()
                .Where(r => !Quarantine(r)).Take(max).ToList();
        }

        foreach (var record in snapshot)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return record;
        }

        await Task.CompletedTask;
    }

    public Task SetFlushEpochAsync(string domain, DateTimeOffset epoch, CancellationToken cancellationToken)
    {
        ThrowIfFailing();
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            _epochs[domain] = _epochs.TryGetValue(domain, out var stored) && stored > epoch ? stored : epoch;
        }

        return Task.CompletedTask;
    }

    public Task<int> CountFlushedAsync(string domain, Action? viewFixed, CancellationToken cancellationToken)
    {
        ThrowIfFailing();
        int count;
        lock (_lock)
        {
            count = _epochs.TryGetValue(domain, out var epoch)
                ? _records.Values.Count(r => string.Equals(r.Domain, domain, StringComparison.OrdinalIgnoreCase) && SpoolLedger.FlushableSince(r) < epoch)
                : 0;
        }

        // Counted under the lock, so the view was fixed before anything that viewFixed starts.
        viewFixed?.Invoke();
        return Task.FromResult(count);
    }

    /// <summary>Under the lock: <paramref name="record"/> as its domain's flush epoch makes it.</summary>
    private SpoolRecord Present(SpoolRecord record) =>
        SpoolLedger.ApplyFlushEpoch(record, _epochs.TryGetValue(record.Domain, out var epoch) ? epoch : null);

    public IAsyncEnumerable<QuarantinedRecord> ListQuarantinedAsync(CancellationToken cancellationToken)
    {
        ThrowIfFailing();
        lock (_lock)
        {
            return _quarantined.ToList().ToAsyncEnumerable();
        }
    }

    /// <summary>Makes the stored record unreadable, as damaged storage would: the next read that meets it quarantines it.</summary>
    public void Corrupt(string queueId)
    {
        lock (_lock)
        {
            if (!_records.ContainsKey(queueId))
            {
                throw new InvalidOperationException($"No record {queueId} to corrupt.");
            }

            _unreadable.Add(queueId);
        }
    }

    /// <summary>Under the lock: moves <paramref name="record"/> to quarantine if it is unreadable, and says whether it did.</summary>
    private bool Quarantine(SpoolRecord record)
    {
        if (!_unreadable.Remove(record.QueueId))
        {
            return false;
        }

        _records.Remove(record.QueueId);
        _quarantined.Add(new QuarantinedRecord(record.Domain, record.QueueId, "corrupted by the test"));
        return true;
    }

    private static void CheckId(string queueId)
    {
        if (!QueueId.IsValid(queueId))
        {
            throw new ArgumentException($"'{queueId}' is not a valid queue id.", nameof(queueId));
        }
    }

    private string NextETag() => Interlocked.Increment(ref _version).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private void ThrowIfFailing()
    {
        if (FailWith is { } ex)
        {
            throw ex;
        }
    }
}
