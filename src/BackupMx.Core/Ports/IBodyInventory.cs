namespace BackupMx.Core.Ports;

/// <summary>
/// What a body store holds, for finding bodies that no spool record refers to: a crash between
/// the body write and the record commit leaves one. Implemented by the Blob Storage body store;
/// the file store has its own scan at start (no intake runs then).
/// </summary>
public interface IBodyInventory
{
    /// <summary>Bodies last written before <paramref name="cutoff"/>, in no particular order.</summary>
    IAsyncEnumerable<StoredBody> ListWrittenBeforeAsync(DateTimeOffset cutoff, CancellationToken cancellationToken);
}

/// <summary>A stored body and the time it was last written.</summary>
public sealed record StoredBody(string QueueId, DateTimeOffset WrittenAt);
