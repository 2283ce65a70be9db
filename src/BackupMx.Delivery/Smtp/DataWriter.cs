using System.Buffers;

namespace BackupMx.Delivery.Smtp;

/// <summary>
/// Writes a stored body as SMTP DATA content (RFC 5321 §4.5.2): a dot at the start of a line is
/// doubled, nothing else changes, and a final CRLF is added only when the body lacks one (the
/// end-of-data line must start a line). A line starts after any LF, bare or not, so a body with a
/// bare-LF line of a single dot cannot end the data early at a server that treats LF as a line end.
/// </summary>
internal static class DataWriter
{
    private static readonly byte[] Dot = "."u8.ToArray();
    private static readonly byte[] CrLf = "\r\n"u8.ToArray();
    private static readonly byte[] Lf = "\n"u8.ToArray();

    public static async Task WriteAsync(Stream body, Stream wire, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            var lineStart = true;
            byte last = 0;
            byte beforeLast = 0;
            long total = 0;
            int read;
            while ((read = await body.ReadAsync(buffer.AsMemory(0, buffer.Length), cancellationToken).ConfigureAwait(false)) > 0)
            {
                var from = 0;
                for (var i = 0; i < read; i++)
                {
                    if (lineStart && buffer[i] == (byte)'.')
                    {
                        // Everything before this dot, then the extra one; the original goes with the next chunk.
                        await wire.WriteAsync(buffer.AsMemory(from, i - from), cancellationToken).ConfigureAwait(false);
                        await wire.WriteAsync(Dot, cancellationToken).ConfigureAwait(false);
                        from = i;
                    }

                    lineStart = buffer[i] == (byte)'\n';
                }

                await wire.WriteAsync(buffer.AsMemory(from, read - from), cancellationToken).ConfigureAwait(false);
                beforeLast = read >= 2 ? buffer[read - 2] : last;
                last = buffer[read - 1];
                total += read;
            }

            if (total > 0 && !(beforeLast == (byte)'\r' && last == (byte)'\n'))
            {
                await wire.WriteAsync(last == (byte)'\r' ? Lf : CrLf, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
