namespace BackupMx.Core.Ports;

/// <summary>
/// A flush that costs one write however much is spooled (embedded mode, where the pump lists due
/// records from the spool). The store keeps one epoch per domain: every record of the domain that
/// <see cref="Spool.SpoolLedger.FlushableSince"/> says was last attempted (or, never tried,
/// received) before it reads as due at the epoch with its retry count reset
/// (<see cref="Spool.SpoolLedger.ApplyFlushEpoch"/>), in every read and in the due listing, until
/// its next write (its claim) commits that. Held, leased and DSN records are not touched, and
/// nothing changes a record's expiry. Implemented by stores that also implement
/// <see cref="ISpoolStore"/>; Azure mode has none and flushes record by record.
/// </summary>
public interface IFlushEpochStore
{
    /// <summary>
    /// Commits <paramref name="epoch"/> as the domain's flush epoch (an earlier one than the
    /// stored epoch changes nothing) and tells a relay in another process to look at the spool.
    /// </summary>
    Task SetFlushEpochAsync(string domain, DateTimeOffset epoch, CancellationToken cancellationToken);

    /// <summary>
    /// How many records of the domain its epoch has made due and that have not been attempted since,
    /// as one consistent view of the spool. <paramref name="viewFixed"/>, when given, is called once
    /// that view is fixed and before the count is read from it, so a caller can let workers claim
    /// (and so uncount) records meanwhile without changing the answer.
    /// </summary>
    Task<int> CountFlushedAsync(string domain, Action? viewFixed, CancellationToken cancellationToken);
}
