using System.Buffers;

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

    public static MessageContent FromBytes(ReadOnlySequence<byte> bytes) => new SequenceContent(bytes);

    public static MessageContent FromBytes(byte[] bytes) => new SequenceContent(new ReadOnlySequence<byte>(bytes));

    private sealed class SequenceContent(ReadOnlySequence<byte> bytes) : MessageContent
    {
        public override Stream OpenRead() => new ReadOnlySequenceStream(default, bytes);
    }
}
