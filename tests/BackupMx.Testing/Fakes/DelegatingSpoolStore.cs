using BackupMx.Core.Model;
using BackupMx.Core.Ports;

namespace BackupMx.Testing.Fakes;

/// <summary>Passes every call to another store; tests override the calls they fault or count.</summary>
public abstract class DelegatingSpoolStore(ISpoolStore inner) : ISpoolStore
{
    public virtual Task<SpoolRecord> CreateAsync(SpoolRecord record, CancellationToken cancellationToken) => inner.CreateAsync(record, cancellationToken);

    public virtual Task<SpoolRecord?> GetAsync(string domain, string queueId, CancellationToken cancellationToken) => inner.GetAsync(domain, queueId, cancellationToken);

    public virtual Task<SpoolRecord?> TryUpdateAsync(SpoolRecord record, CancellationToken cancellationToken) => inner.TryUpdateAsync(record, cancellationToken);

    public virtual Task<bool> TryDeleteAsync(SpoolRecord record, CancellationToken cancellationToken) => inner.TryDeleteAsync(record, cancellationToken);

    public virtual IAsyncEnumerable<SpoolRecord> ListDomainAsync(string domain, CancellationToken cancellationToken) => inner.ListDomainAsync(domain, cancellationToken);

    public virtual IAsyncEnumerable<SpoolRecord> ListDueAsync(DateTimeOffset dueBy, int max, CancellationToken cancellationToken) => inner.ListDueAsync(dueBy, max, cancellationToken);

    public virtual IAsyncEnumerable<SpoolRecord> ListAllAsync(CancellationToken cancellationToken) => inner.ListAllAsync(cancellationToken);

    public virtual IAsyncEnumerable<QuarantinedRecord> ListQuarantinedAsync(CancellationToken cancellationToken) => inner.ListQuarantinedAsync(cancellationToken);
}
