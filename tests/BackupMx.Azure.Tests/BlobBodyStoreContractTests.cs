using System.Security.Cryptography;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing.Azurite;
using BackupMx.Testing.Contracts;

namespace BackupMx.Azure.Tests;

[Collection(AzuriteFixture.CollectionName)]
public sealed class BlobBodyStoreContractTests(AzuriteFixture azurite) : BodyStoreContract
{
    private static readonly CancellationToken None = CancellationToken.None;

    protected override async Task<IBodyStore> CreateStoreAsync() => await CreateBlobStoreAsync(BlobBodyStore.DefaultBlockSize);

    private async Task<BlobBodyStore> CreateBlobStoreAsync(int blockSize)
    {
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(AzuriteFixture.UniqueName("bodies"));
        await container.CreateIfNotExistsAsync();
        return new BlobBodyStore(container, blockSize);
    }

    [Theory]
    [InlineData(64 * 1024)]
    [InlineData(64 * 1024 * 5)]
    [InlineData(64 * 1024 * 5 + 1)]
    public async Task WriteAsync_BodyLargerThanABlock_StagesBlocksAndReadsBackIdentical(int size)
    {
        var store = await CreateBlobStoreAsync(64 * 1024);
        var id = QueueId.New(SpoolRecords.T0);
        var bytes = RandomNumberGenerator.GetBytes(size);

        Assert.Equal(size, await store.WriteAsync(id, new TrickleStream(bytes), None));

        var blocks = await store.Container.GetBlockBlobClient(id).GetBlockListAsync(BlockListTypes.Committed);
        Assert.Equal((size + (64 * 1024) - 1) / (64 * 1024), blocks.Value.CommittedBlocks.Count());
        await using var read = await store.OpenReadAsync(id, None);
        using var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        Assert.Equal(bytes, copy.ToArray());
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(200_000)]
    public async Task GetInfoAsync_ExposesLengthMd5AndSha256OfTheBody(int size)
    {
        var store = await CreateBlobStoreAsync(64 * 1024);
        var id = QueueId.New(SpoolRecords.T0);
        var bytes = RandomNumberGenerator.GetBytes(size);
        await store.WriteAsync(id, new MemoryStream(bytes), None);

        var info = await store.GetInfoAsync(id, None);
        Assert.NotNull(info);
        Assert.Equal(size, info.Length);
        Assert.Equal(MD5.HashData(bytes), info.ContentMd5);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), info.Sha256);
        Assert.Null(await store.GetInfoAsync(QueueId.New(SpoolRecords.T0), None));
    }

    [Fact]
    public async Task OpenReadAsync_BytesChangedBehindOurBack_ThrowsAtTheEnd()
    {
        var store = await CreateBlobStoreAsync(BlobBodyStore.DefaultBlockSize);
        var id = QueueId.New(SpoolRecords.T0);
        await store.WriteAsync(id, new MemoryStream([1, 2, 3, 4]), None);

        // Same length, other bytes, original metadata: only the SHA-256 check can notice.
        var blob = store.Container.GetBlobClient(id);
        var metadata = (await blob.GetPropertiesAsync()).Value.Metadata;
        await blob.UploadAsync(new BinaryData(new byte[] { 1, 2, 3, 5 }), new BlobUploadOptions { Metadata = metadata });

        await using var read = await store.OpenReadAsync(id, None);
        await Assert.ThrowsAsync<InvalidDataException>(() => read.CopyToAsync(Stream.Null));
    }

    [Fact]
    public async Task WriteAsync_NotAQueueId_IsRefusedBeforeAnyRequest()
    {
        var store = await CreateBlobStoreAsync(BlobBodyStore.DefaultBlockSize);
        await Assert.ThrowsAsync<ArgumentException>(() => store.WriteAsync("../../etc/passwd", new MemoryStream([1]), None));
    }

    [Fact]
    public async Task WriteAsync_StoresOpaqueOctetStream()
    {
        var store = await CreateBlobStoreAsync(BlobBodyStore.DefaultBlockSize);
        var id = QueueId.New(SpoolRecords.T0);
        await store.WriteAsync(id, new MemoryStream("Subject: hi\r\n\r\nbody\r\n"u8.ToArray()), None);

        var properties = await store.Container.GetBlobClient(id).GetPropertiesAsync();
        Assert.Equal("application/octet-stream", properties.Value.ContentType);
        Assert.Equal(BlobType.Block, properties.Value.BlobType);
    }

    /// <summary>Non-seekable and returns at most 1,000 bytes a read, like a network stream.</summary>
    private sealed class TrickleStream(byte[] data) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(Math.Min(count, 1000), data.Length - _position);
            Array.Copy(data, _position, buffer, offset, n);
            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
