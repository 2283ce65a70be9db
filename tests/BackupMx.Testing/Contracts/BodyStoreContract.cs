using System.Security.Cryptography;
using BackupMx.Core.Forwarding;
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

    /// <summary>The id of a DSN about several recipients names a body like any other (file, blob).</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    [InlineData(12)]
    [InlineData(100)]
    public async Task Ids_OfDsnsAboutSeveralRecipients_AreWrittenReadAndDeleted(int recipients)
    {
        var store = await CreateStoreAsync();
        var original = SpoolRecords.Sample(recipients: recipients);
        var id = DsnQueue.DsnId(original, original.Recipients.Select(r => new DsnRecipient(r, DsnAction.Failed)).ToList());

        Assert.True(QueueId.IsValid(id), id);
        await store.WriteAsync(id, new MemoryStream([7, 8]), None);
        await using (var read = await store.OpenReadAsync(id, None))
        {
            using var copy = new MemoryStream();
            await read.CopyToAsync(copy);
            Assert.Equal([7, 8], copy.ToArray());
        }

        await store.DeleteAsync(id, None);
        await Assert.ThrowsAsync<BodyNotFoundException>(() => store.OpenReadAsync(id, None));
    }

    /// <summary>Ids become file and blob names: anything but a queue id is refused before any I/O.</summary>
    [Theory]
    [InlineData("")]
    [InlineData("short")]
    [InlineData("../../etc/passwd-0123456789")]
    [InlineData("01M9713EJV9GGRBSHABE-d0.1")]
    [InlineData("01M9713EJV9GGRBSHABE/d0")]
    [InlineData("01M9713EJV9GGRBSHABE-d0-1-2-3-4-5-6-7-8-9")]
    public async Task AnyOperation_IdThatIsNotAQueueId_ThrowsArgumentException(string id)
    {
        var store = await CreateStoreAsync();

        await Assert.ThrowsAsync<ArgumentException>(() => store.WriteAsync(id, new MemoryStream([1]), None));
        await Assert.ThrowsAsync<ArgumentException>(() => store.OpenReadAsync(id, None));
        await Assert.ThrowsAsync<ArgumentException>(() => store.DeleteAsync(id, None));
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
