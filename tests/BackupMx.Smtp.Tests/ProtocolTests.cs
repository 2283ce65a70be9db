namespace BackupMx.Smtp.Tests;

public sealed class ProtocolTests
{
    [Fact]
    public async Task Ehlo_Default_AdvertisesOnlyHonouredExtensions()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();

        var reply = await client.CommandAsync("EHLO client.test");
        var lines = reply.Split('\n').Select(l => l[4..]).ToList();

        Assert.Contains("SIZE 52428800", lines);
        Assert.Contains("8BITMIME", lines);
        Assert.Contains("PIPELINING", lines);
        Assert.Contains("DSN", lines);
        Assert.Contains("ETRN", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("AUTH", StringComparison.Ordinal));
        Assert.Contains("SMTPUTF8", lines);
        Assert.DoesNotContain("STARTTLS", lines);
        Assert.DoesNotContain("ENHANCEDSTATUSCODES", lines);
    }

    [Theory]
    [InlineData("HELO client.test", "250 mx.backup.test")]
    [InlineData("EHLO client.test", "250-mx.backup.test")]
    public async Task HeloAndEhlo_AnswerWithTheHostNameOnly(string command, string firstLine)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();

        var reply = await client.CommandAsync(command);

        Assert.Equal(firstLine, reply.Split('\n')[0].TrimEnd('\r'));
    }

    [Fact]
    public async Task Ehlo_ConfiguredSize_AdvertisesIt()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxMessageBytes"] = "4096" });
        await using var client = await host.ConnectAsync();

        Assert.Contains("250-SIZE 4096", await client.CommandAsync("EHLO client.test"));
    }

    [Fact]
    public async Task Proxy_FromClient_IsRefusedAndNotApplied()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();

        Assert.StartsWith("502 5.5.1", await client.CommandAsync("PROXY TCP4 192.0.2.1 192.0.2.2 1234 25"));
        await client.BeginAsync();
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nhi\r\n.\r\n"));
        Assert.Equal("127.0.0.1", Assert.Single(await host.RecordsAsync()).ClientAddress);
    }

    [Theory]
    [InlineData("MAIL FROM:<a@sender.test> BODY=7BIT BODY=8BITMIME")]
    [InlineData("MAIL FROM:<a@sender.test> size=10 SIZE=20")]
    [InlineData("MAIL FROM:<a@remote.test> BODY=7BIT body=8BITMIME")]
    [InlineData("MAIL FROM:<\"x y\"@remote.test> ENVID=a ENVID=a")]
    [InlineData("MAIL FROM:<> RET=FULL RET=FULL")]
    public async Task Mail_RepeatedParameter_501AndSessionGoesOn(string command)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("501 5.5.4", await client.CommandAsync(command));
        await client.BeginAsync();
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nhi\r\n.\r\n"));
    }

    [Fact]
    public async Task Rcpt_RepeatedParameter_501()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");
        await client.CommandAsync("MAIL FROM:<a@sender.test>");

        Assert.StartsWith("501 5.5.4", await client.CommandAsync("RCPT TO:<user@example.test> NOTIFY=NEVER NOTIFY=SUCCESS"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
    }

    [Theory]
    [InlineData("AUTH PLAIN AGZvbwBiYXI=")]
    [InlineData("AUTH LOGIN")]
    [InlineData("STARTTLS")]
    public async Task AuthOrStartTls_Always_Refused(string command)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("502 5.5.1", await client.CommandAsync(command));
        Assert.StartsWith("250", await client.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task Rcpt_ConfiguredDomainAnyCase_Accepted()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");
        await client.CommandAsync("MAIL FROM:<a@remote.test>");

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@EXAMPLE.Test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@other.test>"));
    }

    [Theory]
    [InlineData("user@elsewhere.test")]
    [InlineData("user@sub.example.test")]
    [InlineData("user@[127.0.0.1]")]
    [InlineData("\"user@example.test\"@elsewhere.test")]
    [InlineData("\"user@example.test> x\"@elsewhere.test")]
    [InlineData("user%example.test@elsewhere.test")]
    [InlineData("user@example.test.elsewhere.test")]
    [InlineData("@example.test:user@elsewhere.test")]
    public async Task Rcpt_OtherDomain_RelayDenied(string recipient)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");
        await client.CommandAsync("MAIL FROM:<a@remote.test>");

        var reply = await client.CommandAsync($"RCPT TO:<{recipient}>");

        Assert.StartsWith("550 5.7.1", reply);
        Assert.Contains("relaying denied", reply, StringComparison.OrdinalIgnoreCase);
        Assert.StartsWith("5", await client.CommandAsync("DATA"));
        Assert.Empty(await host.RecordsAsync());
    }

    [Fact]
    public async Task Refusals_SentWithoutSmtpServersRetryCount()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        // A command out of order, a filter's refusal (relay) and an unknown command.
        var sequence = await client.CommandAsync("RCPT TO:<user@example.test>");
        await client.CommandAsync("MAIL FROM:<a@remote.test>");
        var relay = await client.CommandAsync("RCPT TO:<user@elsewhere.test>");
        var unknown = await client.CommandAsync("FROB");

        Assert.Equal("503 5.5.1 Bad sequence of commands", sequence);
        Assert.Equal("550 5.7.1 Relaying denied", relay);
        Assert.StartsWith("5", unknown);
        Assert.All(new[] { sequence, relay, unknown }, reply => Assert.DoesNotContain("retry(ies)", reply, StringComparison.Ordinal));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
    }

    [Fact]
    public async Task Rcpt_OtherDomainWithParameters_RelayDeniedNotRecorded()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");
        await client.CommandAsync("MAIL FROM:<a@remote.test>");

        Assert.StartsWith("550 5.7.1", await client.CommandAsync("RCPT TO:<user@elsewhere.test> NOTIFY=NEVER ORCPT=rfc822;user@example.test"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));

        var recipient = Assert.Single(Assert.Single(await host.RecordsAsync()).Recipients);
        Assert.Equal("user@example.test", recipient.Address);
        Assert.Null(recipient.Notify);
        Assert.Null(recipient.OriginalRecipient);
    }

    [Fact]
    public async Task Mail_NullReversePath_Accepted()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();

        await client.BeginAsync(from: "");
        Assert.StartsWith("250", await client.DataAsync("Subject: bounce\r\n\r\nx\r\n.\r\n"));

        Assert.Equal(string.Empty, Assert.Single(await host.RecordsAsync()).Sender);
    }

    [Fact]
    public async Task Rcpt_ManyRefused_SessionStaysOpen()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");
        await client.CommandAsync("MAIL FROM:<a@remote.test>");

        for (var i = 0; i < 150; i++)
        {
            Assert.StartsWith("550 5.7.1", await client.CommandAsync($"RCPT TO:<u{i}@elsewhere.test>"));
        }

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));
    }

    [Fact]
    public async Task Rcpt_OverMaxRecipients_452()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");
        await client.CommandAsync("MAIL FROM:<a@remote.test>");

        for (var i = 0; i < 100; i++)
        {
            Assert.StartsWith("250", await client.CommandAsync($"RCPT TO:<u{i}@example.test>"));
        }

        Assert.StartsWith("452 4.5.3", await client.CommandAsync("RCPT TO:<u100@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));
        Assert.Equal(100, Assert.Single(await host.RecordsAsync()).Recipients.Count);

        // The count starts again with the next transaction.
        await client.CommandAsync("MAIL FROM:<a@remote.test>");
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<u0@example.test>"));
    }

    [Fact]
    public async Task Data_WithoutRecipients_RefusedAndSessionContinues()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");
        await client.CommandAsync("MAIL FROM:<a@remote.test>");

        Assert.StartsWith("5", await client.CommandAsync("DATA"));
        // The CRLF kept back from the DATA line must not turn into an extra reply.
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));
    }

    [Fact]
    public async Task Pipelining_WholeTransactionInOneWrite_EachReplyInOrder()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        await client.SendRawAsync("MAIL FROM:<a@remote.test>\r\nRCPT TO:<x@elsewhere.test>\r\nRCPT TO:<user@example.test>\r\nDATA\r\n");
        Assert.StartsWith("250", await client.ReadReplyAsync());
        Assert.StartsWith("550", await client.ReadReplyAsync());
        Assert.StartsWith("250", await client.ReadReplyAsync());
        Assert.StartsWith("354", await client.ReadReplyAsync());
        await client.SendRawAsync("Subject: p\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@remote.test>\r\nQUIT\r\n");
        Assert.StartsWith("250", await client.ReadReplyAsync());
        Assert.StartsWith("250", await client.ReadReplyAsync());
        Assert.StartsWith("221", await client.ReadReplyAsync());

        var record = Assert.Single(await host.RecordsAsync());
        Assert.Equal("Subject: p\r\n\r\nbody\r\n", host.BodyAfterReceived(record.QueueId));
    }

    [Fact]
    public async Task CommandTimeout_IdleClient_Disconnected()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:CommandTimeout"] = "00:00:01" });
        await using var client = await host.ConnectAsync();

        // RFC 5321 §3.8: the server closing the channel says 421.
        Assert.StartsWith("421 4.4.2 ", await client.ReadReplyAsync());
        Assert.Null(await client.TryReadReplyAsync());
    }

    [Fact]
    public async Task Endpoints_Several_ListensOnEach()
    {
        await using var host = await ReceiverHost.StartAsync(endpointCount: 2);

        foreach (var port in host.Ports)
        {
            await using var client = await RawSmtpClient.ConnectAsync(port);
            Assert.StartsWith("250", await client.CommandAsync("NOOP"));
        }
    }
}
