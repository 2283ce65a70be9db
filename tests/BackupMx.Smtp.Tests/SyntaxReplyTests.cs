namespace BackupMx.Smtp.Tests;

/// <summary>
/// Replies to lines SmtpServer's parser cannot read (it answers all of them "502 Unrecognized command"):
/// 501 for a known command with bad arguments, 502 for a known verb we do not implement, 500 for an
/// unknown verb (RFC 5321 §4.2.4, §4.3.2).
/// </summary>
public sealed class SyntaxReplyTests
{
    [Theory]
    [InlineData("MAIL FROM:x@y", "501 5.1.7 ")]
    [InlineData("MAIL FROM:<a@remote.test", "501 5.1.7 ")]
    [InlineData("MAIL FROM:<a@@remote.test>", "501 5.1.7 ")]
    [InlineData("MAIL", "501 5.5.2 ")]
    [InlineData("MAIL TO:<a@remote.test>", "501 5.5.2 ")]
    [InlineData("HELO", "501 5.5.2 ")]
    [InlineData("EHLO", "501 5.5.2 ")]
    [InlineData("RSET now", "501 5.5.2 ")]
    [InlineData("QUIT now", "501 5.5.2 ")]
    [InlineData("VRFY", "501 5.5.2 ")]
    [InlineData("EXPN staff", "502 5.5.1 ")]
    [InlineData("HELP", "502 5.5.1 ")]
    [InlineData("TURN", "502 5.5.1 ")]
    [InlineData("BDAT 10 LAST", "502 5.5.1 ")]
    [InlineData("FROB", "500 5.5.1 ")]
    [InlineData("MAILX FROM:<a@remote.test>", "500 5.5.1 ")]
    [InlineData("", "500 5.5.1 ")]
    public async Task UnparsableLine_OutsideTransaction_ReplyByVerb(string command, string expected)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        Assert.StartsWith("250", await client.CommandAsync("EHLO client.test"));

        var reply = await client.CommandAsync(command);

        Assert.StartsWith(expected, reply);
        Assert.DoesNotContain("retry(ies)", reply, StringComparison.Ordinal);
        await client.BeginAsync();
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));
    }

    [Theory]
    [InlineData("RCPT TO:<>", "501 5.1.3 ")]
    [InlineData("RCPT TO:user@example.test", "501 5.1.3 ")]
    [InlineData("RCPT", "501 5.5.2 ")]
    [InlineData("DATA now", "501 5.5.2 ")]
    public async Task UnparsableLine_InTransaction_501AndRecipientNotAdded(string command, string expected)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        Assert.StartsWith(expected, await client.CommandAsync(command));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));
        Assert.Equal("user@example.test", Assert.Single(Assert.Single(await host.RecordsAsync()).Recipients).Address);
    }

    [Fact]
    public async Task UnparsableLines_Pipelined_EachGetsTheReplyForItsOwnVerb()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        await client.SendRawAsync("FROB\r\nMAIL FROM:x@y\r\nEXPN x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<>\r\nFROB\r\nRCPT TO:<user@example.test>\r\n");

        Assert.StartsWith("500 5.5.1 ", await client.ReadReplyAsync());
        Assert.StartsWith("501 5.1.7 ", await client.ReadReplyAsync());
        Assert.StartsWith("502 5.5.1 ", await client.ReadReplyAsync());
        Assert.StartsWith("250", await client.ReadReplyAsync());
        Assert.StartsWith("501 5.1.3 ", await client.ReadReplyAsync());
        Assert.StartsWith("500 5.5.1 ", await client.ReadReplyAsync());
        Assert.StartsWith("250", await client.ReadReplyAsync());
    }

    [Theory]
    [InlineData("VRFY user")]
    [InlineData("VRFY <user@example.test>")]
    [InlineData("vrfy postmaster")]
    public async Task Vrfy_WithArgument_252WithoutVerifying(string command)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();

        Assert.StartsWith("252 2.5.2 ", await client.CommandAsync(command));
        Assert.StartsWith("250", await client.CommandAsync("EHLO client.test"));
    }

    [Theory]
    [InlineData("NOOP")]
    [InlineData("NOOP anything at all")]
    [InlineData("noop x")]
    public async Task Noop_WithOrWithoutArgument_250(string command)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        Assert.StartsWith("250", await client.CommandAsync(command));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));
    }

    [Theory]
    [InlineData("MAIL FROM:<j\u00f6rg@remote.test>", false)]
    [InlineData("RCPT TO:<j\u00f6rg@example.test>", true)]
    [InlineData("RCPT TO:<user@b\u00fccher.example.test>", true)]
    [InlineData("RCPT TO:<\"\u00e9\"@example.test> NOTIFY=NEVER", true)]
    public async Task NonAsciiPath_WithoutSmtpUtf8_553(string command, bool inTransaction)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");
        if (inTransaction)
        {
            Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
        }

        // UTF-8 octets on the wire, as a client that ignores the missing SMTPUTF8 would send them.
        await client.SendRawAsync(System.Text.Encoding.UTF8.GetBytes(command + "\r\n"));

        Assert.StartsWith("553 5.6.7 ", await client.ReadReplyAsync());
        if (!inTransaction)
        {
            Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
        }

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));
        var record = Assert.Single(await host.RecordsAsync());
        Assert.Equal("a@remote.test", record.Sender);
        Assert.Equal("user@example.test", Assert.Single(record.Recipients).Address);
    }
}
