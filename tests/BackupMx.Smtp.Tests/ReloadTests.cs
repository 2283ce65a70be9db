using System.Diagnostics;

namespace BackupMx.Smtp.Tests;

/// <summary>
/// The receiver's limits follow a reload of the configuration: each new session gets the limits
/// current when it connected, and a session opened before keeps working under the ones it started with.
/// </summary>
public sealed class ReloadTests
{
    [Fact]
    public async Task Reload_MaxMessageBytes_NewSessionAdvertisesAndEnforcesItOpenSessionKeepsItsOwn()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxMessageBytes"] = "100000" });
        await using var before = await host.ConnectAsync();
        Assert.Contains("250-SIZE 100000\n", await before.CommandAsync("EHLO client.test") + "\n", StringComparison.Ordinal);

        Reload(host, ("BackupMx:Smtp:MaxMessageBytes", "2000"));

        await using var after = await host.ConnectAsync();
        Assert.Contains("250-SIZE 2000\n", await after.CommandAsync("EHLO client.test") + "\n", StringComparison.Ordinal);
        Assert.StartsWith("552 5.3.4 ", await after.CommandAsync("MAIL FROM:<a@remote.test> SIZE=5000"), StringComparison.Ordinal);
        Assert.StartsWith("250", await after.CommandAsync("MAIL FROM:<a@remote.test>"), StringComparison.Ordinal);
        Assert.StartsWith("250", await after.CommandAsync("RCPT TO:<user@example.test>"), StringComparison.Ordinal);
        Assert.StartsWith("552", await after.DataAsync(Body(5000)), StringComparison.Ordinal);

        // The session opened before the reload was promised 100000 and is held to that, both ways.
        Assert.StartsWith("250", await before.CommandAsync("MAIL FROM:<a@remote.test> SIZE=5000"), StringComparison.Ordinal);
        Assert.StartsWith("250", await before.CommandAsync("RCPT TO:<user@example.test>"), StringComparison.Ordinal);
        Assert.StartsWith("250", await before.DataAsync(Body(5000)), StringComparison.Ordinal);
        Assert.StartsWith("552 5.3.4 ", await before.CommandAsync("MAIL FROM:<a@remote.test> SIZE=200000"), StringComparison.Ordinal);
        Assert.Single(await host.RecordsAsync());
    }

    [Fact]
    public async Task Reload_LargerMaxMessageBytes_NewSessionTakesAMessageTheOldLimitRefused()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxMessageBytes"] = "2000" });

        Reload(host, ("BackupMx:Smtp:MaxMessageBytes", "300000"));

        await using var client = await host.ConnectAsync();
        Assert.Contains("250-SIZE 300000\n", await client.CommandAsync("EHLO client.test") + "\n", StringComparison.Ordinal);
        await client.BeginAsync(mailParameters: " SIZE=200000");
        Assert.StartsWith("250", await client.DataAsync(Body(200_000)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("MaxConnections")]
    [InlineData("MaxConnectionsPerIp")]
    public async Task Reload_LowerConnectionLimit_RefusesTheNextConnectionAndKeepsTheOpenOnes(string key)
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:" + key] = "10" });
        await using var first = await host.ConnectAsync();
        await using var second = await host.ConnectAsync();

        Reload(host, ("BackupMx:Smtp:" + key, "2"));

        await using (var third = await RawSmtpClient.ConnectAsync(host.Port, readGreeting: false))
        {
            Assert.StartsWith("421 4.7.0 ", await third.ReadReplyAsync(), StringComparison.Ordinal);
        }

        // Both sessions opened before the reload go on to a full transaction.
        foreach (var open in new[] { first, second })
        {
            Assert.StartsWith("250", await open.CommandAsync("EHLO client.test"), StringComparison.Ordinal);
            await open.BeginAsync();
            Assert.StartsWith("250", await open.DataAsync("Subject: kept\r\n\r\nhello\r\n.\r\n"), StringComparison.Ordinal);
        }

        // Raised again, a third connection is served.
        Reload(host, ("BackupMx:Smtp:" + key, "3"));
        await using var again = await host.ConnectAsync();
        Assert.StartsWith("250", await again.CommandAsync("NOOP"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reload_MessageRate_AppliesAtTheNextMailOfAnOpenSession()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxMessagesPerMinutePerIp"] = "0" });
        await using var client = await host.ConnectAsync();
        Assert.StartsWith("250", await client.CommandAsync("EHLO client.test"), StringComparison.Ordinal);
        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"), StringComparison.Ordinal);
        Assert.StartsWith("250", await client.CommandAsync("RSET"), StringComparison.Ordinal);

        Reload(host, ("BackupMx:Smtp:MaxMessagesPerMinutePerIp", "2"));

        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"), StringComparison.Ordinal);
        Assert.StartsWith("250", await client.CommandAsync("RSET"), StringComparison.Ordinal);
        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"), StringComparison.Ordinal);
        Assert.StartsWith("250", await client.CommandAsync("RSET"), StringComparison.Ordinal);
        Assert.StartsWith("450 4.7.1 ", await client.CommandAsync("MAIL FROM:<a@remote.test>"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reload_CommandTimeout_NewSessionTimesOutOpenSessionKeepsItsOwn()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:CommandTimeout"] = "00:05:00" });
        await using var before = await host.ConnectAsync();

        Reload(host, ("BackupMx:Smtp:CommandTimeout", "00:00:01"));

        await using var after = await host.ConnectAsync();
        var clock = Stopwatch.StartNew();
        Assert.StartsWith("421 4.4.2 ", await after.ReadReplyAsync(), StringComparison.Ordinal);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(30));

        // Idle longer than the new timeout, the earlier session is still there.
        Assert.StartsWith("250", await before.CommandAsync("NOOP"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reload_InvalidReceiverValue_KeepsTheLimitsInUse()
    {
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:MaxConnections"] = "1" });

        Reload(host, ("BackupMx:Smtp:MaxConnections", "0"));

        await using var first = await host.ConnectAsync();
        await using var second = await RawSmtpClient.ConnectAsync(host.Port, readGreeting: false);
        Assert.StartsWith("421 4.7.0 ", await second.ReadReplyAsync(), StringComparison.Ordinal);
    }

    private static void Reload(ReceiverHost host, params (string Key, string Value)[] changes)
    {
        foreach (var (key, value) in changes)
        {
            host.Configuration[key] = value;
        }

        host.Configuration.Reload();
    }

    private static string Body(int bytes) =>
        "Subject: size\r\n\r\n" + string.Concat(Enumerable.Repeat(new string('x', 98) + "\r\n", bytes / 100)) + ".\r\n";
}
