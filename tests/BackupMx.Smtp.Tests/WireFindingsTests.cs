using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BackupMx.Smtp.Tests;

/// <summary>What a client may send that SmtpServer alone would mishandle, over loopback.</summary>
public sealed class WireFindingsTests
{
    [Fact]
    public async Task QuotedLocalPart_EveryQuotedPair_AcceptedOrSyntaxErrorSessionGoesOn()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectInTransactionAsync();
        var accepted = new List<string>();
        for (var c = ' '; c <= '~'; c++)
        {
            var address = $"\"a\\{c}\"@example.test";
            var reply = await client.TryReadReplyAfterAsync($"RCPT TO:<{address}>");
            Assert.True(reply is not null, $"connection closed after {address}");
            Assert.True(reply.StartsWith("250 ", StringComparison.Ordinal) || reply.StartsWith("501 5.1.3 ", StringComparison.Ordinal), $"{address}: {reply}");
            if (reply.StartsWith("250 ", StringComparison.Ordinal))
            {
                accepted.Add(address);
            }
        }

        // Only a value SmtpServer cannot be handed at all is refused: one ending in a quote.
        Assert.Equal(94, accepted.Count);
        Assert.StartsWith("250", await client.DataAsync("Subject: q\r\n\r\nq\r\n.\r\n"));
        var stored = (await host.RecordsAsync()).SelectMany(r => r.Recipients).Select(r => r.Address).ToList();
        Assert.Contains("\"a\\q\"@example.test", stored);
        Assert.Contains("\"a\\ \"@example.test", stored);
        Assert.Contains("\"a\\\\\"@example.test", stored);
    }

    [Fact]
    public async Task QuotedLocalPart_InMailFrom_KeptAsWritten()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        Assert.StartsWith("250", await client.CommandAsync("EHLO client.test"));
        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<\"a\\q b\"@remote.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: q\r\n\r\nq\r\n.\r\n"));
        Assert.Equal("\"a\\q b\"@remote.test", Assert.Single(await host.RecordsAsync()).Sender);
    }

    [Fact]
    public async Task Domain_TrailingDot_AcceptedAndStoredWithout()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectInTransactionAsync();

        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<u@example.test.>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: d\r\n\r\nd\r\n.\r\n"));
        Assert.Equal("u@example.test", Assert.Single(Assert.Single(await host.RecordsAsync()).Recipients).Address);
    }

    [Fact]
    public async Task Recipient_GivenTwice_250BothStoredOnceCountedOnce()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxRecipients"] = "100" });
        await using var client = await host.ConnectInTransactionAsync();
        for (var i = 0; i < 100; i++)
        {
            Assert.StartsWith("250", await client.CommandAsync($"RCPT TO:<u{i}@example.test>"));
        }

        // The limit is full, but a repeat is not a new recipient.
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<u7@example.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<u7@EXAMPLE.test>"));
        Assert.StartsWith("452", await client.CommandAsync("RCPT TO:<u100@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: d\r\n\r\nd\r\n.\r\n"));

        var recipients = Assert.Single(await host.RecordsAsync()).Recipients.Select(r => r.Address).ToList();
        Assert.Equal(100, recipients.Count);
        Assert.Single(recipients, r => r.Equals("u7@example.test", StringComparison.OrdinalIgnoreCase));
    }

    [Theory]
    [InlineData("a+0D+0AX-Injected:+20yes")]
    [InlineData("a+0Db")]
    [InlineData("a+00")]
    [InlineData("a+7F")]
    [InlineData("a+C3+A9")]
    public async Task EnvId_DecodesToNonPrintable_501AndMailNotTaken(string envid)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        Assert.StartsWith("250", await client.CommandAsync("EHLO client.test"));

        Assert.StartsWith("501 5.5.4 ", await client.CommandAsync($"MAIL FROM:<a@remote.test> ENVID={envid}"));
        Assert.StartsWith("503", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test> ENVID=ok+20id"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: e\r\n\r\ne\r\n.\r\n"));
        Assert.Equal("ok id", Assert.Single(await host.RecordsAsync()).Parameters.EnvelopeId);
    }

    [Fact]
    public async Task MaxConsecutiveErrors_Reached_421ThenClosed()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxConsecutiveErrors"] = "5" });
        await using var client = await host.ConnectInTransactionAsync();
        for (var i = 0; i < 4; i++)
        {
            Assert.StartsWith("550 5.7.1 ", await client.CommandAsync($"RCPT TO:<u{i}@elsewhere.test>"));
        }

        var last = await client.CommandAsync("RCPT TO:<u5@elsewhere.test>");
        Assert.StartsWith("550 5.7.1 ", last);
        Assert.StartsWith("421 4.7.0 ", await client.ReadReplyAsync());
        Assert.Null(await client.TryReadReplyAsync());
    }

    [Fact]
    public async Task DotLine_NotStuffedBySender_DotDeleted()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        Assert.StartsWith("250", await client.DataAsync("Subject: d\r\n\r\n.abc\r\n..def\r\n.\r\n"));
        Assert.Equal("Subject: d\r\n\r\nabc\r\n.def\r\n", host.BodyAfterReceived(Assert.Single(await host.RecordsAsync()).QueueId));
    }

    [Theory]
    [InlineData("HELO", "with SMTP id ")]
    [InlineData("EHLO", "with ESMTP id ")]
    public async Task ReceivedHeader_GreetingVerb_NamesProtocol(string verb, string expected)
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        Assert.StartsWith("250", await client.CommandAsync(verb + " client.test"));
        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.DataAsync("Subject: r\r\n\r\nr\r\n.\r\n"));

        var stored = Encoding.Latin1.GetString(host.Bodies.Get(Assert.Single(await host.RecordsAsync()).QueueId));
        Assert.Contains(expected, stored[..stored.IndexOf("\r\nSubject:", StringComparison.Ordinal)]);
    }

    [Fact]
    public async Task ReceivedHeader_Ipv6Client_TaggedAddressLiteral()
    {
        var port = BackupMx.Testing.FreePort.Next();
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:Endpoints:0"] = $"[::1]:{port}" });
        await using var client = await RawSmtpClient.ConnectAsync(port, host: "::1");
        await client.BeginAsync();
        Assert.StartsWith("250", await client.DataAsync("Subject: r\r\n\r\nr\r\n.\r\n"));

        var stored = Encoding.Latin1.GetString(host.Bodies.Get(Assert.Single(await host.RecordsAsync()).QueueId));
        Assert.StartsWith("Received: from client.test ([IPv6:::1])\r\n", stored);
    }

    [Fact]
    public async Task Session_ExceptionInside_421AndOneLineWithoutStackTrace()
    {
        var time = new FailingTimeProvider();
        var logs = new CollectingLoggerProvider();
        await using var host = await ReceiverHost.StartAsync(
            new() { ["BackupMx:Smtp:SessionTimeout"] = "01:00:00" },
            configureServices: s =>
            {
                s.AddSingleton<TimeProvider>(time);
                s.AddLogging(b => b.AddProvider(logs));
            });
        await using var client = await host.ConnectAsync();
        Assert.StartsWith("250", await client.CommandAsync("EHLO client.test"));

        // The message rate check at MAIL reads the clock; a fault there is a fault inside SmtpServer's
        // command execution, which would end the session without a word.
        time.Fail = true;
        Assert.StartsWith("421 4.3.0 ", await client.TryReadReplyAfterAsync("MAIL FROM:<a@remote.test>"));
        Assert.Null(await client.TryReadReplyAsync());

        var fault = Assert.Single(logs.Entries, e => e.Message.Contains(" failed with ", StringComparison.Ordinal));
        Assert.Contains("InvalidOperationException", fault.Message);
        Assert.Contains($" in {typeof(FailingTimeProvider).FullName}.{nameof(FailingTimeProvider.GetUtcNow)}: clock broken", fault.Message);
        Assert.Empty(logs.Exceptions);
    }

    private sealed class FailingTimeProvider : TimeProvider
    {
        public volatile bool Fail;

        public override DateTimeOffset GetUtcNow() => Fail ? throw new InvalidOperationException("clock broken") : base.GetUtcNow();
    }
}
