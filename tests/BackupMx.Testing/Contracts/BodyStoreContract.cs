using System.Security.Cryptography;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Xunit;

namespace BackupMx.Testing.Contracts;

/// <summary>What every <see cref="IBodyStore"/> must do: bytes out exactly as they went in.</summary>
public abstract class BodyStoreContract
{
    protected abstract Task<IBodyStore> CreateStoreAsync();

    private static readonly CancellationToken None = CancellationToken.None;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(3 * 1024 * 1024 + 17)]
    public async Task WriteThenRead_ReturnsIdenticalBytesAndLength(int size)
    {
        var store = await CreateStoreAsync();
        var id = QueueId.New(SpoolRecords.T0);
        var bytes = RandomNumberGenerator.GetBytes(size);

        var length = await store.WriteAsync(id, new MemoryStream(bytes), None);

        Assert.Equal(size, length);
        await using var read = await store.OpenReadAsync(id, None);
        using var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        Assert.Equal(bytes, copy.ToArray());
    }

    [Fact]
    public async Task WriteAsync_NonSeekableStream_StoresAllBytes()
    {
        var store = await CreateStoreAsync();
        var id = QueueId.New(SpoolRecords.T0);
        var bytes = RandomNumberGenerator.GetBytes(100_000);

        var length = await store.WriteAsync(id, new NonSeekableStream(bytes), None);

        Assert.Equal(bytes.Length, length);
        await using var read = await store.OpenReadAsync(id, None);
        using var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        Assert.Equal(bytes, copy.ToArray());
    }

    [Fact]
    public async Task WriteAsync_SameIdTwice_KeepsTheLatest()
    {
        var store = await CreateStoreAsync();
        var id = QueueId.New(SpoolRecords.T0);
        await store.WriteAsync(id, new MemoryStream([1, 2, 3]), None);
        await store.WriteAsync(id, new MemoryStream([4, 5]), None);

        await using var read = await store.OpenReadAsync(id, None);
        using var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        Assert.Equal([4, 5], copy.ToArray());
    }

    [Fact]
    public async Task OpenReadAsync_Unknown_ThrowsBodyNotFound()
    {
        var store = await CreateStoreAsync();
        await Assert.ThrowsAsync<BodyNotFoundException>(() => store.OpenReadAsync(QueueId.New(SpoolRecords.T0), None));
    }

    [Fact]
    public async Task DeleteAsync_RemovesAndIsIdempotent()
    {
        var store = await CreateStoreAsync();
        var id = QueueId.New(SpoolRecords.T0);
        await store.WriteAsync(id, new MemoryStream([1]), None);

        await store.DeleteAsync(id, None);
        await store.DeleteAsync(id, None);

        await Assert.ThrowsAsync<BodyNotFoundException>(() => store.OpenReadAsync(id, None));
    }

    [Fact]
    public async Task Ids_WithDsnSuffix_AreAccepted()
    {
        var store = await CreateStoreAsync();
        var id = QueueId.New(SpoolRecords.T0) + "-d1";
        await store.WriteAsync(id, new MemoryStream([9]), None);
        await using var read = await store.OpenReadAsync(id, None);
        Assert.Equal(9, read.ReadByte());
    }

    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }
    }
}
