using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

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

    [Fact]
    public async Task Reload_BadCoreValueWithValidReceiverValues_AppliesNoneAndLogsTheKey()
    {
        var logs = new CollectingLoggerProvider();
        await using var host = await StartAsync(logs);

        // Valid receiver and size limits, a valid domain swap, and one bad domain: all refused.
        Reload(
            host,
            ("BackupMx:Smtp:MaxConnections", "1"),
            ("BackupMx:Smtp:MaxMessageBytes", "2000"),
            ("BackupMx:Domains:1:Name", "added.test"),
            ("BackupMx:Domains:2:Name", "not-a-domain"));

        await AssertOldSettingsAsync(host);
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Error
            && e.Message.Contains("Configuration reload refused", StringComparison.Ordinal)
            && e.Message.Contains("BackupMx:Domains:2:Name 'not-a-domain' is not a domain name", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains("reloaded", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Reload_BadReceiverValueWithValidCoreValues_AppliesNoneAndLogsTheKey()
    {
        var logs = new CollectingLoggerProvider();
        await using var host = await StartAsync(logs);

        Reload(
            host,
            ("BackupMx:Smtp:MaxConnections", "0"),
            ("BackupMx:Smtp:MaxMessageBytes", "2000"),
            ("BackupMx:Domains:1:Name", "added.test"));

        await AssertOldSettingsAsync(host);
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Error
            && e.Message.Contains("Configuration reload refused", StringComparison.Ordinal)
            && e.Message.Contains("MaxConnections", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains("reloaded", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Reload_PostmasterDomainRemovedInTheSameEdit_AppliesNone()
    {
        var logs = new CollectingLoggerProvider();
        await using var host = await StartAsync(logs, ("BackupMx:Smtp:PostmasterDomain", "other.test"));

        // Each part alone is valid; together the postmaster domain is no longer relayed.
        Reload(
            host,
            ("BackupMx:Smtp:MaxConnections", "1"),
            ("BackupMx:Smtp:MaxMessageBytes", "2000"),
            ("BackupMx:Domains:1:Name", "added.test"));

        await AssertOldSettingsAsync(host);
        Assert.Contains(logs.Entries, e => e.Message.Contains("PostmasterDomain must be one of the configured BackupMx:Domains", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Reload_ValidCoreAndReceiverValues_AppliesBoth()
    {
        var logs = new CollectingLoggerProvider();
        await using var host = await StartAsync(logs);

        Reload(
            host,
            ("BackupMx:Smtp:MaxConnections", "1"),
            ("BackupMx:Smtp:MaxMessageBytes", "2000"),
            ("BackupMx:Domains:1:Name", "added.test"));

        await using var client = await host.ConnectAsync();
        Assert.Contains("250-SIZE 2000\n", await client.CommandAsync("EHLO client.test") + "\n", StringComparison.Ordinal);
        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@remote.test>"), StringComparison.Ordinal);
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@added.test>"), StringComparison.Ordinal);
        Assert.StartsWith("550", await client.CommandAsync("RCPT TO:<user@other.test>"), StringComparison.Ordinal);
        await using (var second = await RawSmtpClient.ConnectAsync(host.Port, readGreeting: false))
        {
            Assert.StartsWith("421 4.7.0 ", await second.ReadReplyAsync(), StringComparison.Ordinal);
        }

        Assert.Contains(logs.Entries, e => e.Message.Contains("Configuration reloaded: 2 domain(s) relayed (example.test, added.test)", StringComparison.Ordinal));
        Assert.Contains(logs.Entries, e => e.Message.Contains("Receiver settings reloaded, new sessions use them: MaxConnections 1,", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Entries, e => e.Level == LogLevel.Error);
    }

    private static Task<ReceiverHost> StartAsync(CollectingLoggerProvider logs, params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["BackupMx:Smtp:MaxConnections"] = "10",
            ["BackupMx:Smtp:MaxMessageBytes"] = "100000",
        };
        foreach (var (key, value) in extra)
        {
            settings[key] = value;
        }

        return ReceiverHost.StartAsync(settings, configureServices: services => services.AddLogging(b => b.AddProvider(logs)));
    }

    /// <summary>What <see cref="StartAsync"/> configured, in new sessions: SIZE 100000, ten connections, example.test and other.test.</summary>
    private static async Task AssertOldSettingsAsync(ReceiverHost host)
    {
        await using var first = await host.ConnectAsync();
        Assert.Contains("250-SIZE 100000\n", await first.CommandAsync("EHLO client.test") + "\n", StringComparison.Ordinal);
        Assert.StartsWith("250", await first.CommandAsync("MAIL FROM:<a@remote.test> SIZE=5000"), StringComparison.Ordinal);
        Assert.StartsWith("250", await first.CommandAsync("RCPT TO:<user@other.test>"), StringComparison.Ordinal);
        Assert.StartsWith("550", await first.CommandAsync("RCPT TO:<user@added.test>"), StringComparison.Ordinal);
        await using var second = await host.ConnectAsync();
        Assert.StartsWith("250", await second.CommandAsync("NOOP"), StringComparison.Ordinal);
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
