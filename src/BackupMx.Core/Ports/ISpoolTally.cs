using BackupMx.Core.Inspection;

namespace BackupMx.Core.Ports;

/// <summary>
/// A spool that can total its records per domain itself, without handing each one out (the
/// SQLite spool, where the <c>queue</c> summary of 100,000 messages must not read them all).
/// Implemented by stores that also implement <see cref="ISpoolStore"/>; the others are totalled
/// by <see cref="QueueInspector"/> from their listing. Like a listing, it moves unreadable records
/// to the quarantine first.
/// </summary>
public interface ISpoolTally
{
    Task<QueueTally> TallyAsync(CancellationToken cancellationToken);
}
