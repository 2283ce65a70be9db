namespace BackupMx.Core.Intake;

/// <summary>
/// The bytes of a received message, readable from the start as often as needed: intake writes one
/// copy per destination domain. The receiver keeps a large message in a temporary file rather than
/// in memory, so this is a source of streams rather than a buffer.
/// </summary>
public abstract class MessageContent
{
    /// <summary>A new stream over the whole message, positioned at its start.</summary>
    public abstract Stream OpenRead();

    public static MessageContent FromBytes(byte[] bytes) => new BytesContent(bytes);

    private sealed class BytesContent(byte[] bytes) : MessageContent
    {
        public override Stream OpenRead() => new MemoryStream(bytes, writable: false);
    }
}
