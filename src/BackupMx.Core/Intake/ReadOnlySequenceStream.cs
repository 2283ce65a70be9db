using System.Buffers;

namespace BackupMx.Core.Intake;

/// <summary>
/// Reads a prefix and then a <see cref="ReadOnlySequence{T}"/> as one stream, so a body
/// is written to the store in one pass with no copy of the message.
/// </summary>
internal sealed class ReadOnlySequenceStream(ReadOnlyMemory<byte> prefix, ReadOnlySequence<byte> sequence) : Stream
{
    private readonly long _length = prefix.Length + sequence.Length;
    private ReadOnlyMemory<byte> _prefix = prefix;
    private ReadOnlySequence<byte> _rest = sequence;
    private long _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => _length;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var written = 0;
        if (!_prefix.IsEmpty && buffer.Length > 0)
        {
            var n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
            written += n;
        }

        if (written < buffer.Length && !_rest.IsEmpty)
        {
            var n = (int)Math.Min(buffer.Length - written, _rest.Length);
            _rest.Slice(0, n).CopyTo(buffer[written..]);
            _rest = _rest.Slice(n);
            written += n;
        }

        _position += written;
        return written;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
