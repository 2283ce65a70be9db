using System.Collections.Concurrent;
using System.Globalization;
using BackupMx.Core.Ports;

namespace BackupMx.Core.Monitoring;

/// <summary>
/// Primary status for a single process. Deliberately not persisted: after a restart every
/// primary is Unknown again, so its first answer flushes whatever is spooled for it.
/// </summary>
public sealed class InMemoryPrimaryStatusStore : IPrimaryStatusStore
{
    private readonly ConcurrentDictionary<string, VersionedPrimaryStatus> _statuses = new(StringComparer.OrdinalIgnoreCase);
    private readonly Lock _writeLock = new();

    // One counter for every domain, never reset: a version is never handed out twice, so a
    // writer holding an old one can never match a newer status that happens to reuse it.
    private long _lastVersion;

    public Task<VersionedPrimaryStatus?> GetAsync(string domain, CancellationToken cancellationToken) =>
        Task.FromResult(_statuses.GetValueOrDefault(domain));

    public Task<bool> TrySetAsync(PrimaryStatus status, string? expectedVersion, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(status);
        lock (_writeLock)
        {
            if (_statuses.GetValueOrDefault(status.Domain)?.Version != expectedVersion)
            {
                return Task.FromResult(false);
            }

            _statuses[status.Domain] = new VersionedPrimaryStatus(status, (++_lastVersion).ToString(CultureInfo.InvariantCulture));
            return Task.FromResult(true);
        }
    }

    /// <summary>Forgets every status; versions handed out before stay unused, so no old writer can match.</summary>
    public void Clear() => _statuses.Clear();

    public Task<IReadOnlyList<PrimaryStatus>> ListAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<PrimaryStatus>>(_statuses.Values.Select(s => s.Status).ToList());
}
