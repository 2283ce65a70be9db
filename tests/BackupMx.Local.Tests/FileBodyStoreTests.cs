using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing.Contracts;
using Xunit.Abstractions;

namespace BackupMx.Local.Tests;

public sealed class FileBodyStoreTests(ITestOutputHelper output) : IDisposable
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly TempSpool _spool = new();

    public void Dispose() => _spool.Dispose();

    [Theory]
    [InlineData("../../../../etc/passwd")]
    [InlineData("..")]
    [InlineData("0123456789ABCDEFGHJK/../../x")]
    [InlineData("0123456789ABCDEFGHJK.tmp")]
    [InlineData("")]
    public async Task InvalidIds_AreRejected(string id)
    {
        var store = _spool.OpenBodies();
        await Assert.ThrowsAsync<ArgumentException>(() => store.WriteAsync(id, new MemoryStream([1]), None));
        await Assert.ThrowsAsync<ArgumentException>(() => store.OpenReadAsync(id, None));
        await Assert.ThrowsAsync<ArgumentException>(() => store.DeleteAsync(id, None));
    }

    [Fact]
    public async Task CreateShards_EveryShardOfAGeneratedId_OnceOnly()
    {
        var store = _spool.OpenBodies();

        Assert.Equal(1024, store.CreateShards());
        Assert.Equal(0, _spool.OpenBodies().CreateShards());

        var id = QueueId.New(SpoolRecords.T0);
        Assert.True(Directory.Exists(Path.Combine(store.Root, id.Substring(10, 2))));
        await store.WriteAsync(id, new MemoryStream([1, 2, 3]), None);
        Assert.Equal(1024, Directory.GetDirectories(store.Root).Length);
        Assert.Equal(Path.Combine(store.Root, id.Substring(10, 2), id), Assert.Single(Directory.GetFiles(store.Root, "*", SearchOption.AllDirectories)));
    }

    [Fact]
    public async Task WriteAsync_StoresUnderShardInsideBodiesFolder_WithNoTemporaryFileLeft()
    {
        var store = _spool.OpenBodies();
        var id = QueueId.New(SpoolRecords.T0);
        await store.WriteAsync(id, new MemoryStream([1, 2, 3]), None);

        var file = Assert.Single(Directory.GetFiles(store.Root, "*", SearchOption.AllDirectories));
        Assert.Equal(Path.Combine(_spool.Path, "bodies", id.Substring(10, 2), id), file);
    }

    [Fact]
    public async Task WriteAsync_BodiesFolderReplacedAndRestored_FailsThenRecovers()
    {
        // Root ignores permission bits, so a file where the folder should be is how a test breaks the spool.
        var store = _spool.OpenBodies();
        var first = QueueId.New(SpoolRecords.T0);
        await store.WriteAsync(first, new MemoryStream([1]), None);
        Directory.Delete(store.Root, recursive: true);
        await File.WriteAllBytesAsync(store.Root, []);

        await Assert.ThrowsAnyAsync<IOException>(() => store.WriteAsync(first, new MemoryStream([2]), None));

        File.Delete(store.Root);
        Directory.CreateDirectory(store.Root);

        // The same shard as before: known to the store, gone from the disk.
        await store.WriteAsync(first, new MemoryStream([3]), None);
        await using var read = await store.OpenReadAsync(first, None);
        Assert.Equal(3, read.ReadByte());
    }

    [Fact]
    public async Task Reopen_ReadsBodyBack()
    {
        var id = QueueId.New(SpoolRecords.T0);
        await _spool.OpenBodies().WriteAsync(id, new MemoryStream("hello\r\n"u8.ToArray()), None);

        await using var read = await _spool.OpenBodies().OpenReadAsync(id, None);
        using var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        Assert.Equal("hello\r\n"u8.ToArray(), copy.ToArray());
    }

    [Fact]
    public async Task Constructor_LeavesTemporaryFilesAlone()
    {
        // A second process (an operator command) opens the store while the relay may be writing one.
        var store = _spool.OpenBodies();
        var id = QueueId.New(SpoolRecords.T0);
        await store.WriteAsync(id, new MemoryStream([7]), None);
        var shard = Path.GetDirectoryName(store.PathOf(id))!;
        var leftover = Path.Combine(shard, $"{QueueId.New(SpoolRecords.T0)}.{Guid.NewGuid():N}.tmp");
        await File.WriteAllBytesAsync(leftover, [1, 2]);

        _spool.OpenBodies();

        Assert.True(File.Exists(leftover));
        Assert.True(File.Exists(store.PathOf(id)));
    }

    [Fact]
    public async Task WriteAsync_SourceFails_LeavesNothingBehind()
    {
        var store = _spool.OpenBodies();
        var id = QueueId.New(SpoolRecords.T0);
        await Assert.ThrowsAsync<IOException>(() => store.WriteAsync(id, new FailingStream(), None));

        Assert.Empty(Directory.GetFiles(store.Root, "*", SearchOption.AllDirectories));
        await Assert.ThrowsAsync<BodyNotFoundException>(() => store.OpenReadAsync(id, None));
    }

    [Fact]
    public async Task OpenReadAsync_ThenDelete_ReaderKeepsStreaming()
    {
        var store = _spool.OpenBodies();
        var id = QueueId.New(SpoolRecords.T0);
        await store.WriteAsync(id, new MemoryStream(new byte[100_000]), None);

        await using var read = await store.OpenReadAsync(id, None);
        await store.DeleteAsync(id, None);
        using var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        Assert.Equal(100_000, copy.Length);
    }

    [Fact]
    public async Task WriteAsync_LargeBody_IsStreamedNotBuffered()
    {
        var store = _spool.OpenBodies();
        var id = QueueId.New(SpoolRecords.T0);
        const long Size = 50L * 1024 * 1024;

        // Process-wide, so the continuation's thread counts too; other tests run in parallel and
        // may add to it, hence a bound far below the body size rather than a tight one.
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var length = await store.WriteAsync(id, new PatternStream(Size), None);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        output.WriteLine($"50 MiB body written with {allocated / 1024} KiB allocated");

        Assert.Equal(Size, length);
        Assert.Equal(Size, new FileInfo(store.PathOf(id)).Length);
        Assert.True(allocated < 20 * 1024 * 1024, $"allocated {allocated} bytes");
    }

    private sealed class FailingStream : Stream
    {
        private int _reads;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_reads++ > 2)
            {
                throw new IOException("client went away");
            }

            Array.Fill(buffer, (byte)'x', offset, count);
            return count;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>A long stream generated on the fly, so the test itself holds nothing in memory.</summary>
    private sealed class PatternStream(long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, length - _position);
            buffer[..n].Fill((byte)'m');
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
