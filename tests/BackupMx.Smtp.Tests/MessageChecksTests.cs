using System.Buffers;
using System.Text;
using BackupMx.Smtp;
using BackupMx.Smtp.Intake;

namespace BackupMx.Smtp.Tests;

public sealed class MessageChecksTests
{
    /// <summary>The violation a whole message, given in the sequence's pieces, is refused for.</summary>
    private static ContentViolation FindViolation(ReadOnlySequence<byte> content, SmtpReceiverOptions options)
    {
        var checker = new ContentChecker(options);
        foreach (var memory in content)
        {
            checker.Append(memory.Span);
        }

        return checker.Finish();
    }

    private static readonly SmtpReceiverOptions Strict = new() { MaxDataLineLength = 1000, MaxHeaderBytes = 1024, MaxReceivedHeaders = 2 };

    private static readonly string LongLine = new string('x', 999) + "\r\n";

    public static TheoryData<string, string> Cases => new()
    {
        { "Subject: x\r\n\r\nbody\r\n", nameof(ContentViolation.None) },
        { "", nameof(ContentViolation.None) },
        { "Subject: x\r\n\r\nno final line ending", nameof(ContentViolation.None) },
        { "Subject: x\n\r\nbody\r\n", nameof(ContentViolation.BareLineEnding) },
        { "\nSubject: x\r\n\r\nbody\r\n", nameof(ContentViolation.BareLineEnding) },
        { "Subject: x\r\n\r\nbo\rdy\r\n", nameof(ContentViolation.BareLineEnding) },
        { "Subject: x\r\n\r\nbody\r\r\n", nameof(ContentViolation.BareLineEnding) },
        { "Subject: x\r\n\r\nbody\r", nameof(ContentViolation.BareLineEnding) },
        { "Subject: x\r\n\r\nbo\0dy\r\n", nameof(ContentViolation.BareLineEnding) },
        { "Subject: x\r\n\r\nbody\0", nameof(ContentViolation.BareLineEnding) },
        { "Subject: x\r\n\r\n" + new string('x', 999) + "\r\n", nameof(ContentViolation.LineTooLong) },
        { "Subject: x\r\n\r\n" + new string('x', 998) + "\r\n", nameof(ContentViolation.None) },
        { "Subject: x\r\n\r\n" + new string('x', 1001), nameof(ContentViolation.LineTooLong) },
        { "Subject: x\r\n\r\n" + new string('x', 1000), nameof(ContentViolation.None) },
        { "Received: a\r\nreceived : b\r\n\r\nReceived: in body\r\n", nameof(ContentViolation.None) },
        { "Received: a\r\nreceived : b\r\nRECEIVED\t:c\r\n\r\n", nameof(ContentViolation.TooManyHops) },
        { "Received: a\r\nReceivedX: b\r\nReceived-By: c\r\n\r\n", nameof(ContentViolation.None) },
        { string.Concat(Enumerable.Repeat("X-Pad: " + new string('p', 90) + "\r\n", 11)) + "\r\nbody\r\n", nameof(ContentViolation.HeaderTooLarge) },
        { string.Concat(Enumerable.Repeat("X-Pad: " + new string('p', 90) + "\r\n", 10)) + "\r\nbody\r\n", nameof(ContentViolation.None) },
        { string.Concat(Enumerable.Repeat("X-Pad: " + new string('p', 90) + "\r\n", 11)), nameof(ContentViolation.HeaderTooLarge) },
        // The more serious violation wins wherever it sits.
        { "Received: a\r\nReceived: b\r\nReceived: c\r\n\r\n" + LongLine + "late\n", nameof(ContentViolation.BareLineEnding) },
        { "Received: a\r\nReceived: b\r\nReceived: c\r\n\r\n" + LongLine, nameof(ContentViolation.LineTooLong) },
        { string.Concat(Enumerable.Repeat("Received: " + new string('p', 90) + "\r\n", 11)) + "\r\n", nameof(ContentViolation.HeaderTooLarge) },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void FindViolation_Content_MostSeriousFound(string content, string violation)
    {
        var expected = Enum.Parse<ContentViolation>(violation);
        var bytes = Encoding.Latin1.GetBytes(content);

        Assert.Equal(expected, FindViolation(new ReadOnlySequence<byte>(bytes), Strict));

        // The same answer however the buffer is split into segments.
        for (var cut = 1; cut < bytes.Length; cut += Math.Max(1, bytes.Length / 37))
        {
            Assert.Equal(expected, FindViolation(Segmented(bytes, cut), Strict));
        }
    }

    [Fact]
    public void FindViolation_BareLineEndingsAllowed_NextViolationReported()
    {
        var options = new SmtpReceiverOptions { AllowBareLineEndings = true, MaxDataLineLength = 1000, MaxHeaderBytes = 1024, MaxReceivedHeaders = 2 };

        Assert.Equal(ContentViolation.None, FindViolation(Sequence("Subject: x\n\r\nbo\rdy\0\n"), options));
        Assert.Equal(ContentViolation.LineTooLong, FindViolation(Sequence("Subject: x\n\n" + LongLine + "\n"), options));
    }

    private static ReadOnlySequence<byte> Sequence(string text) => new(Encoding.Latin1.GetBytes(text));

    private static ReadOnlySequence<byte> Segmented(byte[] bytes, int cut)
    {
        var first = new Segment(bytes.AsMemory(0, cut), 0);
        var last = first.Append(bytes.AsMemory(cut));
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
