using System.Text;
using BackupMx.Smtp.Connection;

namespace BackupMx.Smtp.Tests;

public sealed class ReplyWriterTests
{
    [Theory]
    [InlineData("550 5.7.1 Relaying denied, 999 retry(ies) remaining.", "550 5.7.1 Relaying denied")]
    [InlineData("503 Bad sequence of commands, 4 retry(ies) remaining.", "503 Bad sequence of commands")]
    [InlineData("452 4.5.3 Too many recipients, 0 retry(ies) remaining.", "452 4.5.3 Too many recipients")]
    public void Repaired_RefusalWithRetryCount_RemovesIt(string line, string expected) =>
        Assert.Equal(expected, Strip(line));

    [Theory]
    [InlineData("501 expected NOOP/RSET/QUIT/HELO/EHLO/MAIL, 999 retry(ies) remaining.")]
    [InlineData("501 expected NOOP/RSET/QUIT/RCPT")]
    public void Repaired_OutOfSequence_Is503(string line) =>
        Assert.Equal("503 5.5.1 Bad sequence of commands", Strip(line));

    [Theory]
    [InlineData("501 5.5.4 Syntax error in parameters")]
    [InlineData("250 2.0.0 Ok: queued, 3 retry(ies) remaining.")]
    [InlineData("550 5.7.1 no count retry(ies) remaining.")]
    [InlineData("550 5.7.1 Relaying denied,  retry(ies) remaining.")]
    [InlineData("550 5.7.1 Relaying denied")]
    [InlineData("550")]
    [InlineData("")]
    public void Repaired_AnythingElse_Unchanged(string line) =>
        Assert.Equal(line, Strip(line));

    [Theory]
    [InlineData("MAIL FROM:x@y\r\n", "501 5.1.7 Bad sender address syntax")]
    [InlineData("rcpt to:<>\r\n", "501 5.1.3 Bad recipient address syntax")]
    [InlineData("EHLO\r\n", "501 5.5.2 Syntax error in parameters or arguments")]
    [InlineData("EXPN staff\r\n", "502 5.5.1 Command not implemented")]
    [InlineData("FROB\r\n", "500 5.5.1 Command unrecognized")]
    [InlineData(null, "500 5.5.1 Command unrecognized")]
    public void Repaired_Unrecognized_ByVerbOfTheLine(string? command, string expected) =>
        Assert.Equal(expected, Encoding.ASCII.GetString(ReplyWriter.Repaired("502 Unrecognized command, 4 retry(ies) remaining."u8, command)));

    private static string Strip(string line) =>
        Encoding.ASCII.GetString(ReplyWriter.Repaired(Encoding.ASCII.GetBytes(line)));

    [Fact]
    public async Task Shutdown_DoneReplyPassesThenFirstOtherBecomesShutdownReplyAndRestDropped()
    {
        var pipe = new System.IO.Pipelines.Pipe();
        var writer = new ReplyWriter(pipe.Writer);
        writer.BeginShutdown("421 4.3.2 mx Service shutting down\r\n"u8.ToArray());

        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await writer.WriteAsync("250 2.0.0 Ok: queued as X\r\n"u8.ToArray(), cancelled.Token);
        await writer.WriteAsync("554 \r\n"u8.ToArray(), cancelled.Token);
        await writer.WriteAsync("221 The session has be cancelled.\r\n"u8.ToArray(), cancelled.Token);
        writer.EndShutdown();
        await pipe.Writer.CompleteAsync();

        var read = await pipe.Reader.ReadAtLeastAsync(int.MaxValue);
        Assert.Equal("250 2.0.0 Ok: queued as X\r\n421 4.3.2 mx Service shutting down\r\n", Encoding.ASCII.GetString(read.Buffer));
    }
}
