using System.Security.Cryptography;

namespace BackupMx.Azure;

/// <summary>
/// Passes a downloaded body through and, at its end, checks the length and SHA-256 recorded at
/// upload. A mismatch throws instead of ending normally, so a corrupted body is never forwarded
/// as if it were complete (the forwarder treats the exception as a transient failure).
/// </summary>
internal sealed class VerifyingReadStream(Stream inner, long expectedLength, string? expectedSha256, string queueId) : Stream
{
    private readonly IncrementalHash? _sha256 = expectedSha256 is null ? null : IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _position;
    private bool _verified;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => expectedLength;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var read = inner.Read(buffer);
        return Account(buffer.Length, buffer[..read]);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Account(buffer.Length, buffer.Span[..read]);
    }

    private int Account(int requested, ReadOnlySpan<byte> data)
    {
        if (data.Length > 0)
        {
            _position += data.Length;
            _sha256?.AppendData(data);

            // Check before handing over the last bytes, so a reader that stops at Length (or a
            // transport that would send the final dot next) never sees a corrupted body complete.
            if (_position >= expectedLength && !_verified)
            {
                Verify();
            }

            return data.Length;
        }

        // Zero bytes for an empty buffer says nothing; zero bytes for a real one is the end.
        if (requested > 0 && !_verified)
        {
            Verify();
        }

        return 0;
    }

    private void Verify()
    {
        _verified = true;
        if (_position != expectedLength)
        {
            throw new IOException($"Body {queueId} ended after {_position} of {expectedLength} bytes.");
        }

        if (_sha256 is not null && !string.Equals(Convert.ToHexStringLower(_sha256.GetHashAndReset()), expectedSha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidDataException($"Body {queueId} does not match the SHA-256 recorded when it was stored.");
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            _sha256?.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync().ConfigureAwait(false);
        _sha256?.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
