using System.Collections.Concurrent;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;

namespace BackupMx.Testing.Fakes;

/// <summary>
/// The reference <see cref="IBodyStore"/>: it refuses what the file and blob stores refuse (an id
/// that is not a queue id names no file or blob) and runs the same contract suite.
/// </summary>
public sealed class InMemoryBodyStore : IBodyStore
{
    private readonly ConcurrentDictionary<string, byte[]> _bodies = new(StringComparer.Ordinal);

    /// <summary>When set, writes throw this (to simulate a full or read-only disk).</summary>
    public Exception? FailWritesWith { get; set; }

    public int Count => _bodies.Count;

    public bool Contains(string queueId) => _bodies.ContainsKey(queueId);

    public byte[] Get(string queueId) => _bodies[queueId];

    public async Task<long> WriteAsync(string queueId, Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        CheckId(queueId);
        if (FailWritesWith is { } ex)
        {
            throw ex;
        }

        // Stored only once whole, as the real stores make a body visible only once it is complete.
        using var buffer = new MemoryStream();
        await content.CopyToAsync(buffer, cancellationToken);
        _bodies[queueId] = buffer.ToArray();
        return buffer.Length;
    }

    public Task<Stream> OpenReadAsync(string queueId, CancellationToken cancellationToken)
    {
        CheckId(queueId);
        return _bodies.TryGetValue(queueId, out var bytes)
            ? Task.FromResult<Stream>(new MemoryStream(bytes, writable: false))
            : throw new BodyNotFoundException(queueId);
    }

    public Task DeleteAsync(string queueId, CancellationToken cancellationToken)
    {
        CheckId(queueId);
        _bodies.TryRemove(queueId, out _);
        return Task.CompletedTask;
    }

    private static void CheckId(string queueId)
    {
        if (!QueueId.IsValid(queueId))
        {
            throw new ArgumentException($"'{queueId}' is not a valid queue id.", nameof(queueId));
        }
    }
}
