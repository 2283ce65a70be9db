using BackupMx.Core.Ports;

namespace BackupMx.Local;

/// <summary>
/// The embedded spool's bodies as one <see cref="IBodyStore"/>: a small body lives in the spool
/// database with its record (<see cref="SqliteSpoolStore.CreateWithBodyAsync"/>, chosen at
/// intake), any other one is a file (<see cref="FileBodyStore"/>).
/// </summary>
public sealed class LocalBodyStore(FileBodyStore files, SqliteSpoolStore spool) : IBodyStore
{
    internal FileBodyStore Files => files;

    /// <summary>A body written on its own, before or without its record, is a file.</summary>
    public Task<long> WriteAsync(string queueId, Stream content, CancellationToken cancellationToken) =>
        files.WriteAsync(queueId, content, cancellationToken);

    /// <summary>
    /// The database is asked first: a body stored there was committed with the record that refers
    /// to it, so it is the current one even if a file of the same id was left behind.
    /// </summary>
    public async Task<Stream> OpenReadAsync(string queueId, CancellationToken cancellationToken)
    {
        var stored = await spool.ReadBodyAsync(queueId, cancellationToken).ConfigureAwait(false);
        return stored is null
            ? await files.OpenReadAsync(queueId, cancellationToken).ConfigureAwait(false)
            : new MemoryStream(stored, writable: false);
    }

    /// <summary>Deletes the file; a body in the database was deleted with its record.</summary>
    public Task DeleteAsync(string queueId, CancellationToken cancellationToken) =>
        files.DeleteAsync(queueId, cancellationToken);
}
