using System.Collections.Concurrent;
using BackupMx.Core.Ports;

namespace BackupMx.Testing.Fakes;

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
        if (FailWritesWith is { } ex)
        {
            throw ex;
        }

        using var buffer = new MemoryStream();
        await content.CopyToAsync(buffer, cancellationToken);
        _bodies[queueId] = buffer.ToArray();
        return buffer.Length;
    }

    public Task<Stream> OpenReadAsync(string queueId, CancellationToken cancellationToken) =>
        _bodies.TryGetValue(queueId, out var bytes)
            ? Task.FromResult<Stream>(new MemoryStream(bytes, writable: false))
            : throw new BodyNotFoundException(queueId);

    public Task DeleteAsync(string queueId, CancellationToken cancellationToken)
    {
        _bodies.TryRemove(queueId, out _);
        return Task.CompletedTask;
    }
}
