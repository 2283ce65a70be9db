namespace BackupMx.Smtp.Tests;

/// <summary>
/// ESMTP parameters on MAIL and RCPT (RFC 5321 §4.1.1.11, RFC 1870, RFC 3461, RFC 6152): each line
/// is read once, and the parameters are what follows the path, however odd the path is.
/// </summary>
public sealed class EnvelopeParameterTests
{
    [Theory]
    [InlineData("MAIL FROM:<\"x> SIZE=1 SIZE=2\"@remote.test>")]
    [InlineData("MAIL FROM:<\"a b=c x\"@remote.test> BODY=8BITMIME")]
    [InlineData("MAIL FROM:<\"q\\\"> RET=FULL RET=HDRS\"@remote.test> RET=HDRS")]
    public async Task Mail_QuotedLocalPartLooksLikeParameters_Accepted(string command)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("250", await client.CommandAsync(command));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nhi\r\n.\r\n"));
    }

    [Fact]
    public async Task Mail_ParametersAfterQuotedLocalPart_Used()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<\"x> ENVID=wrong\"@remote.test> ENVID=right+2B RET=HDRS"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nhi\r\n.\r\n"));

        var parameters = Assert.Single(await host.RecordsAsync()).Parameters;
        Assert.Equal("right+", parameters.EnvelopeId);
        Assert.Equal("HDRS", parameters.Ret);
    }

    [Fact]
    public async Task Rcpt_QuotedLocalPartLooksLikeParameters_ParametersFromAfterPath()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");
        await client.CommandAsync("MAIL FROM:<a@remote.test>");

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<\"a> NOTIFY=NEVER NOTIFY=DELAY\"@example.test> NOTIFY=SUCCESS"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<\"a b=c x\"@example.test> ORCPT=rfc822;a+2Bb@example.test"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nhi\r\n.\r\n"));

        var recipients = Assert.Single(await host.RecordsAsync()).Recipients;
        Assert.Equal(2, recipients.Count);
        Assert.Equal("SUCCESS", recipients[0].Notify);
        Assert.Null(recipients[0].OriginalRecipient);
        Assert.Null(recipients[1].Notify);
        Assert.Equal("rfc822;a+2Bb@example.test", recipients[1].OriginalRecipient);
    }

    [Fact]
    public async Task QuotedLocalParts_StoredAsWritten()
    {
        // SmtpServer hands these over unquoted ("a b@example.test") and with "\n" turned into a
        // line feed: neither can be sent on, and the line feed must never reach the primary.
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<\"s x\"@remote.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<\"a b\"@example.test> NOTIFY=NEVER"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<\"a\\nb\\\"c\"@example.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<@relay.test:plain.user@EXAMPLE.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nhi\r\n.\r\n"));

        var record = Assert.Single(await host.RecordsAsync());
        Assert.Equal("\"s x\"@remote.test", record.Sender);
        Assert.Equal(["\"a b\"@example.test", "\"a\\nb\\\"c\"@example.test", "plain.user@EXAMPLE.test"], record.Recipients.Select(r => r.Address));
        Assert.Equal("NEVER", record.Recipients[0].Notify);
    }

    [Theory]
    [InlineData("a b", "\"a b\"@d.test")]
    [InlineData("a\"b\\c", "\"a\\\"b\\\\c\"@d.test")]
    [InlineData("first.last+tag", "first.last+tag@d.test")]
    [InlineData(".lead", "\".lead\"@d.test")]
    [InlineData("j\u00f6rg", "j\u00f6rg@d.test")]
    public void Format_QuotesOnlyWhatIsNoDotString(string user, string expected) =>
        Assert.Equal(expected, BackupMx.Smtp.Protocol.EnvelopeAddress.Format(user, "d.test"));

    [Theory]
    [InlineData("MAIL FROM:<a@remote.test> FOO=BAR")]
    [InlineData("MAIL FROM:<a@remote.test> AUTH=<>")]
    [InlineData("MAIL FROM:<a@remote.test> BODY=8BITMIME NOTIFY=NEVER")]
    public async Task Mail_UnknownParameter_555AndSessionGoesOn(string command)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("555 5.5.4", await client.CommandAsync(command));
        await client.BeginAsync();
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nhi\r\n.\r\n"));
    }

    [Theory]
    [InlineData("RCPT TO:<user@example.test> SIZE=10")]
    [InlineData("RCPT TO:<user@example.test> NOTIFY=NEVER X-FOO")]
    public async Task Rcpt_UnknownParameter_555AndRecipientNotAdded(string command)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");
        await client.CommandAsync("MAIL FROM:<a@remote.test>");

        Assert.StartsWith("555 5.5.4", await client.CommandAsync(command));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<second@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nhi\r\n.\r\n"));
        Assert.Equal("second@example.test", Assert.Single(Assert.Single(await host.RecordsAsync()).Recipients).Address);
    }

    [Theory]
    [InlineData("MAIL FROM:<a@remote.test> SIZE")]
    [InlineData("MAIL FROM:<a@remote.test> SIZE=")]
    [InlineData("MAIL FROM:<a@remote.test> ENVID")]
    public async Task Mail_KnownParameterWithoutValue_501(string command)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("501 5.5.4", await client.CommandAsync(command));
    }

    [Fact]
    public async Task Pipelining_MailAndRcptWithParameters_EachLineItsOwnParameters()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        await client.SendRawAsync(
            "MAIL FROM:<a@remote.test> ENVID=e1 RET=HDRS\r\n" +
            "RCPT TO:<one@example.test> NOTIFY=FAILURE\r\n" +
            "RCPT TO:<two@example.test> FOO=1\r\n" +
            "RCPT TO:<three@example.test> ORCPT=rfc822;3+40x\r\n" +
            "RCPT TO:<four@example.test> NOTIFY=DELAY NOTIFY=DELAY\r\n" +
            "DATA\r\n");
        Assert.StartsWith("250", await client.ReadReplyAsync());
        Assert.StartsWith("250", await client.ReadReplyAsync());
        Assert.StartsWith("555", await client.ReadReplyAsync());
        Assert.StartsWith("250", await client.ReadReplyAsync());
        Assert.StartsWith("501", await client.ReadReplyAsync());
        Assert.StartsWith("354", await client.ReadReplyAsync());
        await client.SendRawAsync("Subject: p\r\n\r\nbody\r\n.\r\n");
        Assert.StartsWith("250", await client.ReadReplyAsync());

        var record = Assert.Single(await host.RecordsAsync());
        Assert.Equal("e1", record.Parameters.EnvelopeId);
        Assert.Equal(["one@example.test", "three@example.test"], record.Recipients.Select(r => r.Address));
        Assert.Equal("FAILURE", record.Recipients[0].Notify);
        Assert.Null(record.Recipients[0].OriginalRecipient);
        Assert.Null(record.Recipients[1].Notify);
        Assert.Equal("rfc822;3+40x", record.Recipients[1].OriginalRecipient);
    }

    [Theory]
    [InlineData("MAIL FROM:<b@remote.test> BODY=BINARYMIME")]
    [InlineData("MAIL FROM:<b@remote.test> SIZE=x")]
    [InlineData("MAIL FROM:<b@remote.test> FOO=1")]
    [InlineData("MAIL FROM:<b@remote.test> RET=FULL RET=FULL")]
    public async Task Mail_RefusedDuringTransaction_TransactionAndRecipientParametersKept(string command)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync(mailParameters: " ENVID=first", rcptParameters: " NOTIFY=NEVER");

        Assert.StartsWith("5", await client.CommandAsync(command));
        var reply = await client.CommandAsync("DATA");
        if (reply.StartsWith("354", StringComparison.Ordinal))
        {
            // SmtpServer kept the transaction: the body must be read as a body and keep what was said for it.
            await client.SendRawAsync("Subject: x\r\n\r\nhi\r\n.\r\n");
            Assert.StartsWith("250", await client.ReadReplyAsync());
            var record = Assert.Single(await host.RecordsAsync());
            Assert.Equal("first", record.Parameters.EnvelopeId);
            Assert.Equal("NEVER", Assert.Single(record.Recipients).Notify);
        }
        else
        {
            Assert.StartsWith("503", reply);
        }

        Assert.StartsWith("250", await client.CommandAsync("NOOP"));
    }

    [Theory]
    [InlineData(100, "250")]
    [InlineData(101, "501 5.5.4 ")]
    public async Task Mail_EnvidLength_AtMost100(int length, string expected)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith(expected, await client.CommandAsync("MAIL FROM:<a@remote.test> ENVID=" + new string('e', length)));
    }

    [Theory]
    [InlineData(500, "250")]
    [InlineData(501, "501 5.5.4 ")]
    public async Task Rcpt_OrcptLength_AtMost500(int length, string expected)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");
        await client.CommandAsync("MAIL FROM:<a@remote.test>");
        var orcpt = "rfc822;" + new string('o', length - "rfc822;@example.test".Length) + "@example.test";

        Assert.StartsWith(expected, await client.CommandAsync("RCPT TO:<user@example.test> ORCPT=" + orcpt));
    }

    [Theory]
    [InlineData("MAIL FROM:<a@remote.test> BODY=8BITMIME", false)]
    [InlineData("MAIL FROM:<a@remote.test> SIZE=100", false)]
    [InlineData("RCPT TO:<user@example.test> NOTIFY=NEVER", true)]
    public async Task Parameters_AfterHelo_555(string command, bool inTransaction)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        Assert.StartsWith("250", await client.CommandAsync("HELO client.test"));
        if (inTransaction)
        {
            Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
        }

        Assert.StartsWith("555 5.5.4 ", await client.CommandAsync(command));

        // Without parameters the same session goes on; after EHLO the parameters are fine.
        if (!inTransaction)
        {
            Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
        }

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));
        Assert.StartsWith("250", await client.CommandAsync("EHLO client.test"));
        Assert.StartsWith("250", await client.CommandAsync(inTransaction ? "MAIL FROM:<a@remote.test>" : command));
    }
}
