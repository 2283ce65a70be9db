using System.Diagnostics;
using BackupMx.Core.Ports;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Smtp.Tests;

/// <summary>
/// The timeouts of RFC 5321 §4.5.3.2 on a FakeTimeProvider: per command, DATA initiation, per
/// data block, and the session length only between transactions. Each ends in 421 4.4.2, never 5xx.
/// </summary>
public sealed class TimeoutTests
{
    // Only bounds a wait for something that should already have happened on the fake clock.
    private static readonly TimeSpan RealTimeBound = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Data_TricklesLongerThanSessionTimeout_250ThenClosedWith421BetweenTransactions()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await ReceiverHost.StartAsync(
            new() { ["BackupMx:Smtp:SessionTimeout"] = "00:00:01" },
            configureServices: s => s.AddSingleton<TimeProvider>(time));
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();
        Assert.StartsWith("354", await client.CommandAsync("DATA"));
        await client.SendRawAsync("Subject: slow\r\n\r\n");

        // A block a (fake) minute, well inside the 5-minute block timeout, for 15 minutes; and in real
        // time past the 1 s session timeout too (a whole-session cap on the real clock fires as well).
        var clock = Stopwatch.StartNew();
        var blocks = 0;
        while (blocks < 15 || clock.Elapsed < TimeSpan.FromSeconds(2))
        {
            await client.SendRawAsync($"line {blocks++}\r\n");
            await Task.Delay(100);
            time.Advance(TimeSpan.FromMinutes(1));
        }

        Assert.StartsWith("250 ", await client.CommandAsync("."));
        var body = host.BodyAfterReceived(Assert.Single(await host.RecordsAsync()).QueueId);
        Assert.EndsWith($"line {blocks - 1}\r\n", body);

        // The transaction is over: now the session length counts.
        Assert.StartsWith("421 4.4.2 ", await client.CommandAsync("MAIL FROM:<b@remote.test>"));
        Assert.Null(await client.TryReadReplyAsync());
    }

    [Fact]
    public async Task Command_IdlePastCommandTimeout_421NotBefore()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await ReceiverHost.StartAsync(configureServices: s => s.AddSingleton<TimeProvider>(time));
        await using var client = await host.ConnectAsync();
        var reply = client.TryReadReplyAsync();

        time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromSeconds(1));
        await Task.WhenAny(reply, Task.Delay(200));
        Assert.False(reply.IsCompleted, "a reply came before the command timeout");

        Assert.StartsWith("421 4.4.2 ", await AdvanceUntilAsync(time, reply));
        Assert.Null(await client.TryReadReplyAsync());
    }

    [Fact]
    public async Task Command_EachLineGetsItsOwnTimeout_SessionGoesOn()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await ReceiverHost.StartAsync(configureServices: s => s.AddSingleton<TimeProvider>(time));
        await using var client = await host.ConnectAsync();

        // Lines answered by the receiver itself (VRFY) and by SmtpServer (NOOP) alike restart it.
        for (var i = 0; i < 4; i++)
        {
            time.Advance(TimeSpan.FromMinutes(4));
            Assert.StartsWith(i % 2 == 0 ? "252" : "250", await client.CommandAsync(i % 2 == 0 ? "VRFY someone" : "NOOP"));
        }
    }

    [Fact]
    public async Task DataBlock_ClientStopsInBody_421AndNothingKept()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await ReceiverHost.StartAsync(configureServices: s => s.AddSingleton<TimeProvider>(time));
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();
        Assert.StartsWith("354", await client.CommandAsync("DATA"));
        await client.SendRawAsync("Subject: stalled\r\n\r\npart of a line");
        var reply = client.TryReadReplyAsync();

        Assert.StartsWith("421 4.4.2 ", await AdvanceUntilAsync(time, reply));
        Assert.Null(await client.TryReadReplyAsync());
        Assert.Empty(await host.RecordsAsync());
    }

    [Fact]
    public async Task DataInitiation_NothingAfter354_421()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await ReceiverHost.StartAsync(
            new() { ["BackupMx:Smtp:DataInitiationTimeout"] = "00:02:00", ["BackupMx:Smtp:DataBlockTimeout"] = "01:00:00" },
            configureServices: s => s.AddSingleton<TimeProvider>(time));
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();
        Assert.StartsWith("354", await client.CommandAsync("DATA"));
        var reply = client.TryReadReplyAsync();

        Assert.StartsWith("421 4.4.2 ", await AdvanceUntilAsync(time, reply, limit: TimeSpan.FromMinutes(10)));
        Assert.Empty(await host.RecordsAsync());
    }

    [Fact]
    public async Task SessionTimeout_InTransaction_WaitsForItsEnd()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await ReceiverHost.StartAsync(
            new() { ["BackupMx:Smtp:SessionTimeout"] = "00:01:00" },
            configureServices: s => s.AddSingleton<TimeProvider>(time));
        await using var client = await host.ConnectInTransactionAsync();

        time.Advance(TimeSpan.FromMinutes(2));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<user@example.test>"));
        Assert.StartsWith("250", await client.CommandAsync("NOOP"));
        Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nx\r\n.\r\n"));
        Assert.StartsWith("421 4.4.2 ", await client.ReadReplyAsync());
        Assert.Single(await host.RecordsAsync());
    }

    [Fact]
    public async Task Replies_ClientNeverReads_SessionEndsAfterCommandTimeout()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var logs = new CollectingLoggerProvider();
        await using var host = await ReceiverHost.StartAsync(
            new() { ["BackupMx:Smtp:MaxCommandsPerSession"] = "10000000" },
            configureServices: s =>
            {
                s.AddSingleton<TimeProvider>(time);
                s.AddLogging(b => b.AddProvider(logs));
            });
        await using var client = await RawSmtpClient.ConnectAsync(host.Port, receiveBufferSize: 4096);

        // Pipelined EHLOs, whose replies are long, and never a read: the server's writes block once
        // the socket buffers are full.
        var lines = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("EHLO client.test\r\n", 200_000)));
        var writing = Task.Run(async () =>
        {
            try
            {
                await client.SendRawAsync(lines);
            }
            catch (IOException)
            {
            }
        });

        // Filling the socket buffers takes the server some seconds (longer on a busy machine); the
        // fake clock only moves on the way.
        var clock = Stopwatch.StartNew();
        while (!logs.Entries.Any(e => e.Message.Contains("did not read its replies", StringComparison.Ordinal)) && clock.Elapsed < RealTimeBound * 6)
        {
            time.Advance(TimeSpan.FromMinutes(1));
            await Task.Delay(100);
        }

        Assert.True(
            logs.Entries.Any(e => e.Message.Contains("did not read its replies", StringComparison.Ordinal)),
            $"writing done: {writing.IsCompleted}\n" + string.Join("\n", logs.Entries.Select(e => e.Message)));
        await writing.WaitAsync(RealTimeBound);
    }

    [Fact]
    public async Task FinalDot_SpoolTooSlow_451WithinTimeoutNothingKept()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var bodies = new StallingBodyStore();
        await using var host = await ReceiverHost.StartAsync(
            new() { ["BackupMx:Smtp:FinalDotTimeout"] = "00:03:00" },
            configureServices: s =>
            {
                s.AddSingleton<TimeProvider>(time);
                s.AddSingleton<IBodyStore>(bodies);
            });
        await using var client = await host.ConnectAsync();
        await client.BeginAsync();
        Assert.StartsWith("354", await client.CommandAsync("DATA"));
        await client.SendRawAsync("Subject: slow spool\r\n\r\nx\r\n.\r\n");
        var reply = client.TryReadReplyAsync();
        await bodies.Writing.WaitAsync(RealTimeBound);

        Assert.StartsWith("451 4.3.0 ", await AdvanceUntilAsync(time, reply, limit: TimeSpan.FromMinutes(4)));
        Assert.Empty(await host.RecordsAsync());
        Assert.StartsWith("250", await client.CommandAsync("NOOP"));
    }

    /// <summary>
    /// Moves the fake clock in half-minute steps until <paramref name="reply"/> arrives: the server
    /// arms its timer when it starts waiting, which the test cannot see, so one big step could come
    /// before it.
    /// </summary>
    private static async Task<string?> AdvanceUntilAsync(FakeTimeProvider time, Task<string?> reply, TimeSpan? limit = null)
    {
        var advanced = TimeSpan.Zero;
        var clock = Stopwatch.StartNew();
        while (!reply.IsCompleted && advanced < (limit ?? TimeSpan.FromMinutes(30)) && clock.Elapsed < RealTimeBound)
        {
            time.Advance(TimeSpan.FromSeconds(30));
            advanced += TimeSpan.FromSeconds(30);
            await Task.WhenAny(reply, Task.Delay(50));
        }

        Assert.True(reply.IsCompleted, $"no reply after {advanced} on the fake clock");
        return await reply;
    }

    /// <summary>A body store whose writes never finish until cancelled.</summary>
    private sealed class StallingBodyStore : IBodyStore
    {
        private readonly TaskCompletionSource _writing = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Writing => _writing.Task;

        public async Task<long> WriteAsync(string queueId, Stream content, CancellationToken cancellationToken)
        {
            _writing.TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return 0;
        }

        public Task<Stream> OpenReadAsync(string queueId, CancellationToken cancellationToken) => throw new FileNotFoundException(queueId);

        public Task DeleteAsync(string queueId, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
