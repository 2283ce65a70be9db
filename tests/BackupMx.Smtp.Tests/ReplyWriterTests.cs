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
}
