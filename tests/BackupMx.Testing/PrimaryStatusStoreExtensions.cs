using BackupMx.Core.Ports;

namespace BackupMx.Testing;

public static class PrimaryStatusStoreExtensions
{
    /// <summary>
    /// Stores <paramref name="status"/> whatever is stored now, as a test's starting state. Nothing in
    /// BackupMx writes unconditionally, so the port has no such call; this one wins by retrying.
    /// </summary>
    public static async Task OverwriteAsync(this IPrimaryStatusStore store, PrimaryStatus status, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(status);
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var current = await store.GetAsync(status.Domain, cancellationToken).ConfigureAwait(false);
            if (await store.TrySetAsync(status, current?.Version, cancellationToken).ConfigureAwait(false))
            {
                return;
            }
        }

        throw new InvalidOperationException($"Could not store the status of {status.Domain}: every write conflicted.");
    }
}
