using BackupMx.Core.Model;

namespace BackupMx.Core.Ports;

/// <summary>
/// Durable per-message state. Every write is conditional on the record's ETag
/// (optimistic concurrency), so two workers can never both claim or finish one message.
/// Implementations: in-memory (tests), SQLite (embedded), Azure Tables.
/// </summary>
public interface ISpoolStore
{
    /// <summary>
    /// Inserts a new record, committed durably before it returns. Returns the stored version: the
    /// record with its <see cref="SpoolRecord.ETag"/>, which the next write of it must carry.
    /// </summary>
    /// <exception cref="SpoolConflictException">A record with this queue id already exists.</exception>
    Task<SpoolRecord> CreateAsync(SpoolRecord record, CancellationToken cancellationToken);

    /// <summary>Returns the stored record, or null if it does not exist.</summary>
    Task<SpoolRecord?> GetAsync(string domain, string queueId, CancellationToken cancellationToken);

    /// <summary>
    /// Replaces the record if its stored ETag still equals <see cref="SpoolRecord.ETag"/>, and
    /// returns the stored version: <paramref name="record"/> with its new ETag. Returns null when
    /// the record changed meanwhile or no longer exists; <paramref name="record"/> is then stale.
    /// </summary>
    Task<SpoolRecord?> TryUpdateAsync(SpoolRecord record, CancellationToken cancellationToken);

    /// <summary>Deletes the record if its ETag still matches. Returns false otherwise.</summary>
    Task<bool> TryDeleteAsync(SpoolRecord record, CancellationToken cancellationToken);

    /// <summary>Records of one domain, in no particular order.</summary>
    IAsyncEnumerable<SpoolRecord> ListDomainAsync(string domain, CancellationToken cancellationToken);

    /// <summary>
    /// Records due by <paramref name="dueBy"/> (<see cref="SpoolRecord.DueAt"/>: the next attempt is at
    /// or before it and no lease runs past it), earliest next attempt first, at most <paramref name="max"/>.
    /// A leased record is passed by until its lease ends, then listed like any other.
    /// </summary>
    IAsyncEnumerable<SpoolRecord> ListDueAsync(DateTimeOffset dueBy, int max, CancellationToken cancellationToken);

    /// <summary>Every record (operators' views and sweeps).</summary>
    IAsyncEnumerable<SpoolRecord> ListAllAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Records whose stored form could not be read (damaged, or written by a build this one does
    /// not understand). Whichever read meets one moves it here and logs an error with its queue id:
    /// <see cref="GetAsync"/> then returns null and the listings above skip it, so one bad record
    /// never stops its neighbours. Nothing delivers or expires a quarantined record (its body is
    /// kept); it waits for an operator, who sees it in the <c>queue</c> command.
    /// </summary>
    IAsyncEnumerable<QuarantinedRecord> ListQuarantinedAsync(CancellationToken cancellationToken);
}

/// <summary>A record moved aside because it could not be read; <paramref name="Reason"/> is the read error.</summary>
public sealed record QuarantinedRecord(string Domain, string QueueId, string Reason);

/// <summary>A create found the queue id taken.</summary>
public sealed class SpoolConflictException(string queueId)
    : Exception($"A spool record with queue id '{queueId}' already exists.")
{
    public string QueueId { get; } = queueId;
}
