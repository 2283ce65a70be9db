using System.Collections.Concurrent;
using BackupMx.Core.Ports;

namespace BackupMx.Core.Monitoring;

/// <summary>
/// Primary status for a single process. Deliberately not persisted: after a restart every
/// primary is Unknown again, so its first answer flushes whatever is spooled for it.
/// </summary>
public sealed class InMemoryPrimaryStatusStore : IPrimaryStatusStore
{
    private readonly ConcurrentDictionary<string, PrimaryStatus> _statuses = new(StringComparer.OrdinalIgnoreCase);

    public Task<PrimaryStatus?> GetAsync(string domain, CancellationToken cancellationToken) =>
        Task.FromResult(_statuses.GetValueOrDefault(domain));

    public Task SetAsync(PrimaryStatus status, CancellationToken cancellationToken)
    {
        _statuses[status.Domain] = status;
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<PrimaryStatus>> ListAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<PrimaryStatus>>(_statuses.Values.ToList());
}
