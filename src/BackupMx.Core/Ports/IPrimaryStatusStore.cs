namespace BackupMx.Core.Ports;

public enum PrimaryState
{
    Unknown = 0,
    Up = 1,
    Down = 2,
}

/// <summary>What we last saw of a domain's primary.</summary>
public sealed record PrimaryStatus(string Domain, PrimaryState State, DateTimeOffset? Since, DateTimeOffset? LastChecked, string? LastError, string? Host)
{
    /// <summary>The last failure seen, bounded by <see cref="Model.StoredText"/>.</summary>
    public string? LastError { get; init => field = Model.StoredText.Bound(value); } = Model.StoredText.Bound(LastError);
}

/// <summary>
/// A stored status with the version a conditional write must name to replace it. The version is
/// opaque (an ETag in Azure, a counter in memory) and kept apart from <see cref="PrimaryStatus"/>
/// so that two statuses saying the same thing are still equal.
/// </summary>
public sealed record VersionedPrimaryStatus(PrimaryStatus Status, string Version);

/// <summary>
/// Remembers each primary's state between probes. In embedded mode the relay's memory (a
/// restart starts from Unknown, so the first answer flushes), copied to the spool database
/// for the queue command; a table in Azure mode, where every timer run is a new invocation.
/// Several writers may report on one primary at once (in Azure mode, function invocations on
/// several instances), so writes are conditional: a writer that decided from a state someone
/// has since replaced must read again rather than overwrite it.
/// </summary>
public interface IPrimaryStatusStore
{
    Task<VersionedPrimaryStatus?> GetAsync(string domain, CancellationToken cancellationToken);

    /// <summary>
    /// Stores <paramref name="status"/> if the domain's stored version is still
    /// <paramref name="expectedVersion"/>, or, when that is null, if nothing is stored for it yet.
    /// </summary>
    /// <returns>False, with nothing changed, when another write came first.</returns>
    Task<bool> TrySetAsync(PrimaryStatus status, string? expectedVersion, CancellationToken cancellationToken);

    Task<IReadOnlyList<PrimaryStatus>> ListAsync(CancellationToken cancellationToken);
}
