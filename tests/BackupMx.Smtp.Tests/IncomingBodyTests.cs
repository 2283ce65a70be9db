using System.Text;
using BackupMx.Smtp.Connection;
using BackupMx.Smtp.Intake;

namespace BackupMx.Smtp.Tests;

public sealed class IncomingBodyTests : IDisposable
{
    private readonly string _spill = Directory.CreateTempSubdirectory("backupmx-spill-test-").FullName;

    public void Dispose() => Directory.Delete(_spill, recursive: true);

    public static TheoryData<string, string> Framing => new()
    {
        // The DATA phase as sent (after 354), and the content it carries.
        { ".\r\n", "" },
        { "\r\n.\r\n", "\r\n" },
        { "..first: line\r\nSubject: x\r\n\r\n..later\r\n...\r\n.\r\n", ".first: line\r\nSubject: x\r\n\r\n.later\r\n..\r\n" },
        { ".x\r\n.\r\n", "x\r\n" },
        { "a\r\n.abc\r\n.\r\n", "a\r\nabc\r\n" },
        { "a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n" },
        { "a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n" },
        { "a\n.\nb\r\n.\r\n", "a\n.\nb\r\n" },
        { "a\r\n.\nb\r\n.\r\n", "a\r\n.\nb\r\n" },
        { "a\r\r\n..\r\n.\r\n", "a\r\r\n.\r\n" },
        { "no final line ending.\r\n.\r\n", "no final line ending.\r\n" },
    };

    [Theory]
    [MemberData(nameof(Framing))]
    public async Task Read_SplitAnywhere_SameContentAndEnd(string phase, string content)
    {
        var sent = Encoding.Latin1.GetBytes(phase + "MAIL FROM:<next@remote.test>\r\n");
        var end = Encoding.Latin1.GetByteCount(phase);
        for (var cut = 0; cut <= end; cut++)
        {
            using var body = NewBody(allowBare: true);
            Assert.Equal(end, await FeedAsync(body, sent, cut, sent.Length));
            Assert.Equal(content, Encoding.Latin1.GetString(Read(body)));
        }

        using var byteByByte = NewBody(allowBare: true);
        Assert.Equal(end, await FeedAsync(byteByByte, sent, 0, 1, oneByteAtATime: true));
        Assert.Equal(content, Encoding.Latin1.GetString(Read(byteByByte)));
    }

    public static TheoryData<string, string> Normalised => new()
    {
        // Bare LF becomes CRLF but starts no SMTP line: only CRLF.CRLF ends, only after CRLF is a dot stuffing.
        { "a\nb\r\n.\r\n", "a\r\nb\r\n" },
        { "a\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n" },
        { "a\n.\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n" },
        { "a\r\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n" },
        { "a\n..b\r\n..c\r\n.\r\n", "a\r\n..b\r\n.c\r\n" },
        { "\n.\r\n.\r\n", "\r\n.\r\n" },
        { "\n\n\r\n.\r\n", "\r\n\r\n\r\n" },
        { "a\r.\r\nb\r\n.\r\n", "(refused)" },
        { "a\r\n.\r\n", "a\r\n" },
    };

    [Theory]
    [MemberData(nameof(Normalised))]
    public async Task Read_Normalising_SplitAnywhere_BareLfAsCrLfSameEnd(string phase, string content)
    {
        var sent = Encoding.Latin1.GetBytes(phase + "MAIL FROM:<next@remote.test>\r\n");
        var end = Encoding.Latin1.GetByteCount(phase);
        for (var cut = 0; cut <= end; cut++)
        {
            using var body = NewNormalisingBody();
            Assert.Equal(end, await FeedAsync(body, sent, cut, sent.Length));
            Assert.Equal(content, Encoding.Latin1.GetString(ReadAny(body)));
        }

        using var byteByByte = NewNormalisingBody();
        Assert.Equal(end, await FeedAsync(byteByByte, sent, 0, 1, oneByteAtATime: true));
        Assert.Equal(content, Encoding.Latin1.GetString(ReadAny(byteByByte)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4093)]
    public async Task Read_Normalising_WellFormedMessage_ByteIdentical(int step)
    {
        var (sent, content) = LargeMessage(512 * 1024, seed: step);
        using var body = new IncomingBody(new BodyLimits(long.MaxValue, new SmtpReceiverOptions { NormalizeBareLineFeeds = true }, _spill));

        Assert.Equal(sent.Length, await FeedAsync(body, sent, 0, step));
        Assert.Equal(content, Read(body));
    }

    [Fact]
    public async Task Read_LargeBody_KeptInFileNotMemory_ReadableTwice_NothingInFolder()
    {
        var (sent, content) = LargeMessage(3 * 1024 * 1024);
        using var body = NewBody();

        Assert.Equal(sent.Length, await FeedAsync(body, sent, 0, 4093));

        Assert.Equal(content.Length, Spill(body).Length);
        Assert.True(Spill(body).InFile);
        Assert.Equal(content, Read(body));
        Assert.Equal(content, Read(body));
        Assert.Empty(Directory.GetFileSystemEntries(_spill));
    }

    [Fact]
    public async Task Read_OverLimit_OversizedReadToEndNothingKept()
    {
        var (sent, _) = LargeMessage(1024 * 1024);
        using var body = new IncomingBody(new BodyLimits(512 * 1024, new SmtpReceiverOptions(), _spill));

        Assert.Equal(sent.Length, await FeedAsync(body, sent, 0, 8192));

        Assert.True(body.Oversized);
        Assert.Null(body.Content);
    }

    [Fact]
    public async Task Read_BareCrLateInLargeBody_ViolationNothingKept()
    {
        var (sent, _) = LargeMessage(1024 * 1024, tail: "late bare\rx\r\n");
        using var body = NewBody();

        Assert.Equal(sent.Length, await FeedAsync(body, sent, 0, 8192));

        Assert.Equal(ContentViolation.BareLineEnding, body.Violation);
        Assert.Null(body.Content);
    }

    [Fact]
    public async Task Read_SpillFolderGone_StorageErrorReadToEnd()
    {
        var (sent, _) = LargeMessage(1024 * 1024);
        using var body = new IncomingBody(new BodyLimits(long.MaxValue, new SmtpReceiverOptions(), Path.Combine(_spill, "missing")));

        Assert.Equal(sent.Length, await FeedAsync(body, sent, 0, 8192));

        Assert.IsAssignableFrom<IOException>(body.StorageError);
        Assert.Null(body.Content);
    }

    /// <summary>
    /// A message with lines of every kind of length, a good share of them starting with dots, and
    /// the DATA phase that sends it (dot-stuffed, with the final dot).
    /// </summary>
    internal static (byte[] Sent, byte[] Content) LargeMessage(int size, string tail = "", int seed = 7)
    {
        var random = new Random(seed);
        var content = new StringBuilder("Subject: large\r\nFrom: a@remote.test\r\n\r\n");
        while (content.Length < size)
        {
            var line = random.Next(6) switch
            {
                0 => "",
                1 => "." + new string('.', random.Next(3)) + new string('d', random.Next(80)),
                _ => new string((char)('a' + random.Next(26)), random.Next(300)),
            };
            content.Append(line).Append("\r\n");
        }

        content.Append(tail).Append(".\r\nlast\r\n");
        var bytes = Encoding.Latin1.GetBytes(content.ToString());
        var sent = Testing.SmtpSender.DotStuff(bytes).Concat(".\r\n"u8.ToArray()).ToArray();
        return (sent, bytes);
    }

    private IncomingBody NewBody(bool allowBare = false) =>
        new(new BodyLimits(long.MaxValue, new SmtpReceiverOptions { AllowBareLineEndings = allowBare }, _spill));

    // Bare CR in the content is refused by the checks, but the framing is what is tested here.
    private IncomingBody NewNormalisingBody() =>
        new(new BodyLimits(long.MaxValue, new SmtpReceiverOptions { NormalizeBareLineFeeds = true, MaxDataLineLength = int.MaxValue }, _spill));

    private static byte[] ReadAny(IncomingBody body) => body.Content is null && body.Violation == ContentViolation.BareLineEnding ? "(refused)"u8.ToArray() : Read(body);

    private static BodySpill Spill(IncomingBody body) => Assert.IsType<BodySpill>(body.Content);

    private static byte[] Read(IncomingBody body)
    {
        using var stream = Assert.IsAssignableFrom<Core.Intake.MessageContent>(body.Content).OpenRead();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>Feeds the first piece of <paramref name="first"/> bytes, then pieces of <paramref name="step"/>; returns the bytes the body took.</summary>
    private static async Task<int> FeedAsync(IncomingBody body, byte[] sent, int first, int step, bool oneByteAtATime = false)
    {
        var used = 0;
        var position = 0;
        while (position < sent.Length && !body.Ended)
        {
            var length = oneByteAtATime ? 1 : Math.Min(sent.Length - position, position == 0 && first > 0 ? first : step);
            used += body.Read(sent.AsSpan(position, length));
            position += length;
            await body.AfterReadAsync(CancellationToken.None);
        }

        Assert.True(body.Ended);
        await body.CompleteAsync(CancellationToken.None);
        return used;
    }
}
