using BackupMx.Core.Intake;
using Microsoft.Win32.SafeHandles;

namespace BackupMx.Smtp.Intake;

/// <summary>
/// Where a message body is kept while it arrives and until intake has stored it: in memory up to
/// <see cref="MemoryLimit"/>, beyond that in a temporary file, so a session holds a bounded amount
/// of memory whatever the message size.
/// </summary>
/// <remarks>
/// The file is unlinked as soon as it is created: nothing outlives the session, not even after a
/// crash, and nothing but this object can reach it. It is not synced: the body store makes the
/// copy that counts durable.
/// </remarks>
internal sealed class BodySpill(string directory) : MessageContent, IDisposable
{
    /// <summary>Bytes kept in memory before they go to the file (most mail never reaches a file).</summary>
    public const int MemoryLimit = 64 * 1024;

    private byte[] _buffer = new byte[4096];
    private int _buffered;
    private SafeFileHandle? _file;
    private long _fileLength;
    private bool _disposed;

    public long Length => _fileLength + _buffered;

    /// <summary>True once the body no longer fits in memory.</summary>
    public bool InFile => _file is not null;

    public void Append(ReadOnlySpan<byte> bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_buffered + bytes.Length > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _buffered + bytes.Length));
        }

        bytes.CopyTo(_buffer.AsSpan(_buffered));
        _buffered += bytes.Length;
    }

    /// <summary>Moves the buffered bytes to the file once they reach <see cref="MemoryLimit"/>.</summary>
    public ValueTask SpillIfFullAsync(CancellationToken cancellationToken) =>
        _buffered >= MemoryLimit ? WriteOutAsync(cancellationToken) : ValueTask.CompletedTask;

    /// <summary>Called once the whole body is appended: a body that went to the file goes there completely.</summary>
    public ValueTask CompleteAsync(CancellationToken cancellationToken) =>
        _file is not null && _buffered > 0 ? WriteOutAsync(cancellationToken) : ValueTask.CompletedTask;

    public override Stream OpenRead()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _file is null
            ? new MemoryStream(_buffer, 0, _buffered, writable: false)
            : new FileReadStream(_file, _fileLength);
    }

    private async ValueTask WriteOutAsync(CancellationToken cancellationToken)
    {
        _file ??= CreateFile();
        await RandomAccess.WriteAsync(_file, _buffer.AsMemory(0, _buffered), _fileLength, cancellationToken).ConfigureAwait(false);
        _fileLength += _buffered;
        _buffered = 0;
    }

    private SafeFileHandle CreateFile()
    {
        var path = Path.Combine(directory, "backupmx-body-" + Guid.NewGuid().ToString("N") + ".tmp");
        var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Delete, FileOptions.DeleteOnClose);
        try
        {
            // Gone from the folder at once on Unix; where an open file cannot be unlinked, DeleteOnClose removes it.
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return file;
    }

    public void Dispose()
    {
        _disposed = true;
        _file?.Dispose();
        _file = null;
        _buffer = [];
        _buffered = 0;
    }

    /// <summary>Reads the file from its start; the handle stays the spill's.</summary>
    private sealed class FileReadStream(SafeFileHandle file, long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = RandomAccess.Read(file, buffer[..Remaining(buffer.Length)], _position);
            _position += n;
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await RandomAccess.ReadAsync(file, buffer[..Remaining(buffer.Length)], _position, cancellationToken).ConfigureAwait(false);
            _position += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private int Remaining(int wanted) => (int)Math.Min(wanted, length - _position);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
