namespace BackupMx.Core.Ports;

/// <summary>
/// Message bodies, stored as opaque bytes (rule 3): what is written is exactly what
/// is read back. Implementations: in-memory (tests), files (embedded), Blob Storage.
/// </summary>
public interface IBodyStore
{
    /// <summary>
    /// Writes the whole stream under <paramref name="queueId"/> and makes it durable
    /// (fsync, or a completed upload) before returning. Overwrites a previous body with that id.
    /// </summary>
    /// <returns>The number of bytes stored.</returns>
    Task<long> WriteAsync(string queueId, Stream content, CancellationToken cancellationToken);

    /// <summary>Opens the body for reading.</summary>
    /// <exception cref="BodyNotFoundException">No body with this id.</exception>
    Task<Stream> OpenReadAsync(string queueId, CancellationToken cancellationToken);

    /// <summary>Deletes the body; no error if it is already gone.</summary>
    Task DeleteAsync(string queueId, CancellationToken cancellationToken);
}

public sealed class BodyNotFoundException(string queueId)
    : Exception($"No message body is stored for queue id '{queueId}'.")
{
    public string QueueId { get; } = queueId;
}
