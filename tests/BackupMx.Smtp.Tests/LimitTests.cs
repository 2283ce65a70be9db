using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Smtp.Tests;

public sealed class LimitTests
{
    [Theory]
    [InlineData("MaxConnections")]
    [InlineData("MaxConnectionsPerIp")]
    public async Task Connect_OverLimit_421ThenClosed_SlotFreedOnClose(string key)
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:" + key] = "2" });
        var first = await host.ConnectAsync();
        await using var second = await host.ConnectAsync();

        await using (var third = await RawSmtpClient.ConnectAsync(host.Port, readGreeting: false))
        {
            Assert.StartsWith("421 4.7.0 ", await third.ReadReplyAsync());
            Assert.Null(await third.TryReadReplyAsync());
        }

        Assert.StartsWith("221", await first.CommandAsync("QUIT"));
        await first.DisposeAsync();

        // The slot comes back once the session has ended.
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            await using var again = await RawSmtpClient.ConnectAsync(host.Port, readGreeting: false);
            var greeting = await again.ReadReplyAsync();
            if (greeting.StartsWith("220", StringComparison.Ordinal))
            {
                break;
            }

            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), greeting);
            await Task.Delay(50);
        }

        Assert.StartsWith("250", await second.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task Commands_PastLimit_421AndClosed()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxCommandsPerSession"] = "10" });
        await using var client = await host.ConnectAsync();

        for (var i = 0; i < 10; i++)
        {
            Assert.StartsWith("250", await client.CommandAsync("NOOP"));
        }

        Assert.StartsWith("421 4.7.0 ", await client.CommandAsync("NOOP"));
        Assert.Null(await client.TryReadReplyAsync());
    }

    [Fact]
    public async Task CommandLine_Over512_500AndNotExecuted()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        // 512 octets with the CRLF is the limit (RFC 5321 §4.5.3.1.4).
        var helo = "HELO " + string.Concat(Enumerable.Repeat("abcdefghi.", 50)) + "tests";
        Assert.Equal(510, helo.Length);
        Assert.StartsWith("250", await client.CommandAsync(helo));
        Assert.StartsWith("500 5.5.2 ", await client.CommandAsync(helo + "x"));

        // A bare LF does not end a command line (SmtpServer frames on CRLF), so it cannot hide length.
        Assert.StartsWith("500 5.5.2 ", await client.CommandAsync("NOOP\n" + new string('n', 600)));

        // A too-long MAIL does not open a transaction.
        Assert.StartsWith("500 5.5.2 ", await client.CommandAsync("MAIL FROM:<" + new string('a', 700) + "@remote.test>"));
        // So RCPT is out of sequence.
        Assert.StartsWith("503 5.5.1 ", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task CommandLine_RcptWithLongOrcpt_AllowedByDsnAllowance()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");
        await client.CommandAsync("MAIL FROM:<a@remote.test> RET=HDRS ENVID=" + new string('e', 100));

        // The longest ORCPT RFC 3461 §4.2 allows: 500 characters.
        var line = "RCPT TO:<user@example.test> NOTIFY=FAILURE ORCPT=rfc822;" + new string('o', 493);
        Assert.True(line.Length + 2 > 512);
        Assert.StartsWith("250", await client.CommandAsync(line));
    }

    [Fact]
    public async Task CommandLine_EndlessWithoutLineFeed_DiscardedThen500()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();

        var chunk = new string('z', 64 * 1024);
        for (var i = 0; i < 32; i++)
        {
            await client.SendRawAsync(chunk);
        }

        Assert.StartsWith("500 5.5.2 ", await client.CommandAsync(string.Empty));
        Assert.StartsWith("250", await client.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task DataLine_OverStrictLimit_500AndNothingKept()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxDataLineLength"] = "1000" });
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        Assert.StartsWith("500 5.5.2 ", await client.DataAsync("Subject: x\r\n\r\n" + new string('l', 999) + "\r\n.\r\n"));
        Assert.Empty(await host.RecordsAsync());

        await client.CommandAsync("MAIL FROM:<a@remote.test>");
        await client.CommandAsync("RCPT TO:<user@example.test>");
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\n" + new string('l', 998) + "\r\n.\r\n"));
    }

    [Fact]
    public async Task DataLine_LongerThanRfcByDefault_Accepted()
    {
        await using var host = await ReceiverHost.StartAsync();
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();

        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\n" + new string('l', 5000) + "\r\n.\r\n"));
    }

    [Fact]
    public async Task Header_OverLimit_552()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxHeaderBytes"] = "2048" });
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();
        var header = string.Concat(Enumerable.Range(0, 40).Select(i => $"X-Filler-{i:D2}: {new string('h', 40)}\r\n"));
        Assert.True(header.Length > 2048);

        Assert.StartsWith("552 5.3.4 ", await client.DataAsync(header + "\r\nbody\r\n.\r\n"));
        Assert.Empty(await host.RecordsAsync());

        // The same bytes in the body are fine.
        await client.CommandAsync("MAIL FROM:<a@remote.test>");
        await client.CommandAsync("RCPT TO:<user@example.test>");
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\n" + header + ".\r\n"));
    }

    [Fact]
    public async Task CommandTimeout_ClientTricklingCommandLine_Disconnected()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:CommandTimeout"] = "00:00:01" });
        await using var client = await host.ConnectAsync();

        // The command timeout runs from the start of the line, not from the last byte: measured from
        // the last byte the trickle would never end, so the loop's bound is the assertion.
        var clock = Stopwatch.StartNew();
        var closed = false;
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            try
            {
                await client.SendRawAsync("N");
            }
            catch (IOException)
            {
                closed = true;
                break;
            }

            await Task.Delay(100);
        }

        Assert.True(closed, "the connection was still open after 30 s");
    }

    [Fact]
    public async Task MessageRate_PastLimit_450UntilBucketRefills()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await ReceiverHost.StartAsync(
            new() { ["BackupMx:Smtp:MaxMessagesPerMinutePerIp"] = "2" },
            configureServices: s => s.AddSingleton<TimeProvider>(time));
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RSET"));
        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RSET"));
        Assert.StartsWith("450 4.7.1 ", await client.CommandAsync("MAIL FROM:<a@remote.test>"));

        // Another connection from the same address shares the bucket.
        await using (var other = await host.ConnectAsync())
        {
            await other.CommandAsync("EHLO client.test");
            Assert.StartsWith("450 4.7.1 ", await other.CommandAsync("MAIL FROM:<a@remote.test>"));
        }

        time.Advance(TimeSpan.FromSeconds(30));
        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RSET"));
        Assert.StartsWith("450 4.7.1 ", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
    }

    [Fact]
    public async Task MessageRate_Zero_NeverRefuses()
    {
        // 0 is "off": what the Azure template sets, since there every client shares the ingress's address.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await ReceiverHost.StartAsync(
            new() { ["BackupMx:Smtp:MaxMessagesPerMinutePerIp"] = "0" },
            configureServices: s => s.AddSingleton<TimeProvider>(time));
        await using var client = await host.ConnectAsync();
        await client.CommandAsync("EHLO client.test");

        for (var i = 0; i < 100; i++)
        {
            Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"));
            Assert.StartsWith("250", await client.CommandAsync("RSET"));
        }
    }
}
