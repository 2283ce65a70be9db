namespace BackupMx.Core.Ports;

public enum PrimaryState
{
    Unknown = 0,
    Up = 1,
    Down = 2,
}

/// <summary>What we last saw of a domain's primary.</summary>
public sealed record PrimaryStatus(string Domain, PrimaryState State, DateTimeOffset? Since, DateTimeOffset? LastChecked, string? LastError, string? Host);

/// <summary>
/// Remembers each primary's state between probes. In embedded mode the relay's memory (a
/// restart starts from Unknown, so the first answer flushes), copied to the spool database
/// for the queue command; a table in Azure mode, where every timer run is a new invocation.
/// </summary>
public interface IPrimaryStatusStore
{
    Task<PrimaryStatus?> GetAsync(string domain, CancellationToken cancellationToken);

    Task SetAsync(PrimaryStatus status, CancellationToken cancellationToken);

    Task<IReadOnlyList<PrimaryStatus>> ListAsync(CancellationToken cancellationToken);
}
