using System.Net.Sockets;
using System.Threading.Channels;
using BackupMx.Core.Hosting;
using BackupMx.Smtp.Connection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Smtp.Tests;

/// <summary>
/// The listener under trouble: accept failing as it does on a host out of file descriptors, a
/// connection gone before its session starts, and a listening socket that cannot go on. An MX that
/// runs but no longer accepts connections is the failure nobody notices.
/// </summary>
public sealed class ListenerTests
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(30);
    private const string ShuttingDown = "421 4.3.2 mx.backup.test Service shutting down, try again later\r\n";

    [Fact]
    public async Task Accept_FailsWithTooManyOpenFiles_BacksOffOnTheTimeProviderWarnsOnceAndKeepsAccepting()
    {
        var time = new TimerRecordingTimeProvider();
        var logs = new CollectingLoggerProvider();
        var acceptor = new FlakyAcceptor(failures: 3, () => new SocketException((int)SocketError.TooManyOpenSockets));
        var host = await ReceiverHost.StartAsync(NoGracePeriod(), configureServices: s =>
        {
            s.AddSingleton<TimeProvider>(time);
            s.AddSingleton<ConnectionAcceptor>(acceptor);
            s.AddLogging(b => b.AddProvider(logs));
        });
        await using (host)
        {
            var connecting = host.ConnectAsync();

            // Each failure is followed by a pause on the TimeProvider; nothing moves until it is advanced.
            var pauses = new List<TimeSpan>();
            for (var i = 0; i < 3; i++)
            {
                pauses.Add(await time.Timers.ReadAsync().AsTask().WaitAsync(Bounded));
                Assert.Equal(i + 1, acceptor.Calls);
                time.Advance(pauses[^1]);
            }

            Assert.Equal([TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200)], pauses);

            await using var client = await connecting.WaitAsync(Bounded);
            await client.BeginAsync();
            Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nbody\r\n.\r\n"));
            Assert.StartsWith("221", await client.CommandAsync("QUIT"));
            Assert.Single(await host.RecordsAsync());
        }

        // One warning for the burst, naming the endpoint and the error, and one line when it is over.
        // (The stop may still find the session open just after its 221 and cut it off, with a
        // warning of its own: that one is about the stop, not the accept loop.)
        var reason = new SocketException((int)SocketError.TooManyOpenSockets).Message;
        var warning = Assert.Single(logs.Entries, e => e.Level >= LogLevel.Warning && !e.Message.StartsWith("SMTP receiver cut off ", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains($"127.0.0.1:{host.Port}", warning.Message, StringComparison.Ordinal);
        Assert.Contains(reason, warning.Message, StringComparison.Ordinal);
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Information && e.Message.Contains("accepting again after 3 failed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Accept_FailsForMinutes_WarnsOncePerMinuteAndPausesAtMostOneSecond()
    {
        var time = new TimerRecordingTimeProvider();
        var logs = new CollectingLoggerProvider();
        var acceptor = new FlakyAcceptor(failures: int.MaxValue, () => new SocketException((int)SocketError.NoBufferSpaceAvailable));
        var host = await ReceiverHost.StartAsync(NoGracePeriod(), configureServices: s =>
        {
            s.AddSingleton<TimeProvider>(time);
            s.AddSingleton<ConnectionAcceptor>(acceptor);
            s.AddLogging(b => b.AddProvider(logs));
        });
        await using (host)
        {
            var pauses = new List<TimeSpan>();
            while (pauses.Sum(p => p.TotalSeconds) < 150)
            {
                pauses.Add(await time.Timers.ReadAsync().AsTask().WaitAsync(Bounded));
                time.Advance(pauses[^1]);
            }

            Assert.Equal(TimeSpan.FromSeconds(1), pauses.Max());
            Assert.Equal(TimeSpan.FromSeconds(1), pauses[^1]);
        }

        // The first failure, then one reminder for each further minute: not one line per attempt.
        var warnings = logs.Entries.Where(e => e.Level >= LogLevel.Warning).Select(e => e.Message).ToList();
        Assert.Equal(3, warnings.Count);
        Assert.Contains("could not accept", warnings[0], StringComparison.Ordinal);
        Assert.All(warnings.Skip(1), w => Assert.Contains("still cannot accept", w, StringComparison.Ordinal));
    }

    /// <summary>
    /// A client can be gone between the accept and its session's set-up (a reset connection makes
    /// socket options fail on some systems). That one connection is closed; the next one is served,
    /// and the failed one does not keep a place under the connection limit.
    /// </summary>
    [Fact]
    public async Task Setup_FailsForOneConnection_ClosesItLogsInformationAndServesTheNext()
    {
        var logs = new CollectingLoggerProvider();
        var acceptor = new FailingSetupAcceptor();
        var host = await ReceiverHost.StartAsync(
            new() { ["BackupMx:Smtp:MaxConnections"] = "1", ["BackupMx:Smtp:MaxConnectionsPerIp"] = "1" },
            configureServices: s =>
            {
                s.AddSingleton<ConnectionAcceptor>(acceptor);
                s.AddLogging(b => b.AddProvider(logs));
            });
        await using (host)
        {
            await using (var dropped = await RawSmtpClient.ConnectAsync(host.Port, readGreeting: false))
            {
                Assert.Equal(string.Empty, await dropped.ReadToEndAsync());
            }

            await using var client = await host.ConnectAsync();
            await client.BeginAsync();
            Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nbody\r\n.\r\n"));
            Assert.StartsWith("221", await client.CommandAsync("QUIT"));
        }

        Assert.Equal(2, acceptor.Calls);
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Information && e.Message.StartsWith("Dropped connection from 127.0.0.1 before its session started: ", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
    }

    /// <summary>
    /// The listening socket gone while the relay runs: accepting again would fail the same way for
    /// ever. The host stops by itself (sessions still get their 421) and the runner exits 70 with one
    /// line naming the receiver, so that a supervisor restarts the relay.
    /// </summary>
    [Fact]
    public async Task ListenerFails_HostStopsAndRunnerExitsWith70NamingTheReceiver()
    {
        var acceptor = new BreakableAcceptor();
        using var host = ReceiverHost.BuildGenericHost(
            out var port,
            NoGracePeriod(),
            s => s.AddSingleton<ConnectionAcceptor>(acceptor));
        using var error = new StringWriter();
        var started = Started(host);

        var running = HostRunner.RunAsync(host, "BackupMx", error);
        await started.WaitAsync(Bounded);
        await using var client = await RawSmtpClient.ConnectAsync(port);
        Assert.StartsWith("250", await client.CommandAsync("EHLO client.test"));

        acceptor.Break();

        Assert.Equal(HostRunner.ServiceFailedExitCode, await running.WaitAsync(Bounded));
        Assert.Equal(
            $"BackupMx stopped: SmtpReceiverHostedService failed: the SMTP listener on 127.0.0.1:{port} stopped accepting connections: {OneLine(new ObjectDisposedException(typeof(Socket).FullName).Message)}\n",
            error.ToString().ReplaceLineEndings("\n"));
        Assert.Equal(ShuttingDown, await client.ReadToEndAsync());
    }

    [Fact]
    public async Task StopRequested_SessionOpen_ExitsWith0AndTheSessionGets421()
    {
        using var host = ReceiverHost.BuildGenericHost(out var port, NoGracePeriod());
        using var error = new StringWriter();
        var started = Started(host);

        var running = HostRunner.RunAsync(host, "BackupMx", error);
        await started.WaitAsync(Bounded);
        await using var client = await RawSmtpClient.ConnectAsync(port);
        await client.BeginAsync();

        host.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();

        Assert.Equal(0, await running.WaitAsync(Bounded));
        Assert.Equal(string.Empty, error.ToString());
        Assert.Equal(ShuttingDown, await client.ReadToEndAsync());
    }

    /// <summary>
    /// SmtpServer opens each endpoint's socket as it starts, but fails its task only once every
    /// endpoint's loop has ended: an endpoint that cannot be bound next to one that can would leave
    /// the relay running without it.
    /// </summary>
    [Fact]
    public async Task Start_SecondEndpointInUse_FailsNamingItAndListensNowhere()
    {
        using var occupant = new TcpListener(System.Net.IPAddress.Loopback, 0);
        occupant.Start();
        var taken = ((System.Net.IPEndPoint)occupant.LocalEndpoint).Port;
        var free = BackupMx.Testing.FreePort.Next();

        var error = await Assert.ThrowsAsync<StartupException>(() => ReceiverHost.StartAsync(new()
        {
            ["BackupMx:Smtp:Endpoints:0"] = $"127.0.0.1:{free}",
            ["BackupMx:Smtp:Endpoints:1"] = $"127.0.0.1:{taken}",
        }));

        Assert.StartsWith($"127.0.0.1:{taken} is already in use (", error.Message, StringComparison.Ordinal);
        await Assert.ThrowsAnyAsync<SocketException>(async () =>
        {
            using var other = new TcpClient();
            await other.ConnectAsync("127.0.0.1", free);
        });
    }

    // A stop then does not wait for open sessions on a FakeTimeProvider nobody advances any more.
    private static Dictionary<string, string?> NoGracePeriod() => new() { ["BackupMx:Smtp:ShutdownGracePeriod"] = "00:00:00" };

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    private static Task Started(IHost host)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted.Register(() => started.TrySetResult());
        return started.Task;
    }

    /// <summary>A FakeTimeProvider that reports the due time of every timer made on it (Task.Delay makes one).</summary>
    private sealed class TimerRecordingTimeProvider() : FakeTimeProvider(DateTimeOffset.UtcNow)
    {
        private readonly Channel<TimeSpan> _timers = Channel.CreateUnbounded<TimeSpan>();

        public ChannelReader<TimeSpan> Timers => _timers.Reader;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            // Reported once made: advancing the clock before the timer exists would not fire it.
            var timer = base.CreateTimer(callback, state, dueTime, period);
            _timers.Writer.TryWrite(dueTime);
            return timer;
        }
    }

    /// <summary>Accept fails the first <c>failures</c> times, then accepts for real.</summary>
    private sealed class FlakyAcceptor(int failures, Func<Exception> error) : ConnectionAcceptor
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public override async ValueTask<TcpClient> AcceptAsync(TcpListener listener, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref _calls) <= failures)
            {
                // Off the caller's stack, as a real accept that waited first fails.
                await Task.Yield();
                throw error();
            }

            return await base.AcceptAsync(listener, cancellationToken);
        }
    }

    /// <summary>The first connection fails its set-up as one reset by the client would.</summary>
    private sealed class FailingSetupAcceptor : ConnectionAcceptor
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public override void Prepare(TcpClient client)
        {
            if (Interlocked.Increment(ref _calls) == 1)
            {
                throw new SocketException((int)SocketError.ConnectionReset);
            }

            base.Prepare(client);
        }
    }

    /// <summary>Accepts for real until broken; then accept fails as on a listening socket closed under the listener.</summary>
    private sealed class BreakableAcceptor : ConnectionAcceptor
    {
        private readonly TaskCompletionSource _broken = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Break() => _broken.TrySetResult();

        public override async ValueTask<TcpClient> AcceptAsync(TcpListener listener, CancellationToken cancellationToken)
        {
            if (!_broken.Task.IsCompleted)
            {
                var accept = base.AcceptAsync(listener, cancellationToken).AsTask();
                if (await Task.WhenAny(accept, _broken.Task) == accept)
                {
                    return await accept;
                }

                // Left pending on the listening socket, which the stop closes.
                _ = accept.ContinueWith(t => t.Exception, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }

            throw new ObjectDisposedException(typeof(Socket).FullName);
        }
    }
}
