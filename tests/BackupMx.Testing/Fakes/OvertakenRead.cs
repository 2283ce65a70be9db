using BackupMx.Core.Model;
using BackupMx.Core.Ports;

namespace BackupMx.Testing.Fakes;

/// <summary>
/// Lets one read of a record be overtaken by another write before the reader acts on it: the
/// next <see cref="ISpoolStore.GetAsync"/> returns the record as it was, then applies
/// <see cref="Overtake"/> to a fresh read and stores the result, the way intake saves a wake-up token
/// just after scheduling, or a rival worker claims.
/// </summary>
public sealed class OvertakenRead(ISpoolStore inner) : DelegatingSpoolStore(inner)
{
    private readonly ISpoolStore _inner = inner;

    /// <summary>The write that overtakes the next read; cleared once applied.</summary>
    public Func<SpoolRecord, SpoolRecord>? Overtake { get; set; }

    public override async Task<SpoolRecord?> GetAsync(string domain, string queueId, CancellationToken cancellationToken)
    {
        var read = await _inner.GetAsync(domain, queueId, cancellationToken);
        if (read is not null && Overtake is { } overtake)
        {
            Overtake = null;
            var other = await _inner.GetAsync(domain, queueId, cancellationToken);
            if (await _inner.TryUpdateAsync(overtake(other!), cancellationToken) is null)
            {
                throw new InvalidOperationException("The overtaking write lost its own race.");
            }
        }

        return read;
    }
}
