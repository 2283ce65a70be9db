using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using BackupMx.Core.Intake;
using BackupMx.Smtp.Connection;

namespace BackupMx.Smtp.Tests;

/// <summary>
/// The socket's reader and writer (<c>PipeReader.Create</c>, <c>PipeWriter.Create</c> over a
/// stream) keep an internal token that a cancelled caller's token cancels and that outlives the
/// read or flush: cancelled just as a reply went out, it makes the next flush report
/// <see cref="FlushResult.IsCanceled"/> with its bytes left unsent (the 421 of a shutdown was lost
/// this way), and the next read report <see cref="ReadResult.IsCanceled"/>, which SmtpServer takes
/// for the end of the session. <c>CancelPendingFlush</c> and <c>CancelPendingRead</c> leave those
/// writers and readers in exactly that state.
/// </summary>
public sealed class StaleCancellationTests
{
    [Fact]
    public async Task FlushAsync_InnerWriterHoldsAStaleCancellation_TheReplyStillGoesOut()
    {
        using var stream = new MemoryStream();
        var inner = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
        var writer = new ReplyWriter(inner);
        inner.CancelPendingFlush();

        await writer.WriteAsync("250 2.1.5 Ok\r\n"u8.ToArray());

        Assert.Equal("250 2.1.5 Ok\r\n", Encoding.ASCII.GetString(stream.ToArray()));
    }

    [Fact]
    public async Task EndShutdown_InnerWriterHoldsAStaleCancellation_TheShutdownReplyStillGoesOut()
    {
        using var stream = new MemoryStream();
        var inner = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
        var writer = new ReplyWriter(inner, timeouts: SessionTimeouts.Default);
        await writer.WriteAsync("250 2.1.5 Ok\r\n"u8.ToArray());
        writer.BeginShutdown("421 4.3.2 mx Service shutting down\r\n"u8.ToArray());
        inner.CancelPendingFlush();

        writer.EndShutdown();

        Assert.Equal("250 2.1.5 Ok\r\n421 4.3.2 mx Service shutting down\r\n", Encoding.ASCII.GetString(stream.ToArray()));
    }

    [Fact]
    public async Task ReadAsync_CommandAfterAStaleCancellation_IsReadNotTakenForTheEnd()
    {
        using var stream = new MemoryStream("NOOP\r\n"u8.ToArray());
        var inner = PipeReader.Create(stream);
        var input = NewInput(inner);
        inner.CancelPendingRead();

        var result = await input.ReadAsync();

        Assert.False(result.IsCanceled);
        Assert.False(result.IsCompleted);
        Assert.Equal("NOOP\r\n", Encoding.ASCII.GetString(result.Buffer.ToArray()));
    }

    [Fact]
    public async Task ReadAsync_BodyAcrossAStaleCancellation_IsReadWhole()
    {
        using var stream = new MemoryStream("Subject: x\r\n\r\nbody\r\n.\r\n"u8.ToArray());
        var inner = PipeReader.Create(stream);
        var input = NewInput(inner);
        input.DataAccepted = true;
        inner.CancelPendingRead();

        var result = await input.ReadAsync();

        Assert.False(result.IsCanceled);
        Assert.False(result.IsCompleted);
        using var body = input.TakeBody();
        using var content = Assert.IsType<MessageContent>(body?.Content, exactMatch: false).OpenRead();
        using var text = new StreamReader(content);
        Assert.Equal("Subject: x\r\n\r\nbody\r\n", await text.ReadToEndAsync());
    }

    private static SessionInput NewInput(PipeReader inner) => new(
        inner,
        new InputLimits(new BodyLimits(1_000_000, new SmtpReceiverOptions(), Path.GetTempPath()), 512, 1000),
        (_, _) => ValueTask.CompletedTask);
}
