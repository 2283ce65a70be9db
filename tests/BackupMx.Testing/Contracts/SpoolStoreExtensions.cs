using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Xunit;

namespace BackupMx.Testing.Contracts;

public static class SpoolStoreExtensions
{
    /// <summary>A write a test expects to win: fails the test when it does not, and returns the stored version.</summary>
    public static async Task<SpoolRecord> UpdateAsync(this ISpoolStore store, SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        var stored = await store.TryUpdateAsync(record, cancellationToken);
        Assert.True(stored is not null, $"The update of {record.QueueId} lost its race.");
        return stored;
    }
}
