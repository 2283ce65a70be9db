using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using BackupMx.Core.Forwarding;
using BackupMx.Local;
using BackupMx.Testing;

namespace BackupMx.EndToEnd.Tests;

/// <summary>The server as a real process: start, accept mail, stop on SIGTERM within seconds and keep the mail.</summary>
[Collection(EndToEndCollection.Name)]
public sealed class ProcessTests
{
    [Fact]
    public async Task Sigterm_StopsWithinSecondsAndLeavesAcceptedMailSpooled()
    {
        using var spool = new TempFolder();
        var port = FreePort.Next();
        var primaryPort = FreePort.Next();
        var server = typeof(BackupMx.Server.EmbeddedHost).Assembly.Location;
        using var process = Process.Start(new ProcessStartInfo("dotnet")
        {
            ArgumentList =
            {
                server,
                "--BackupMx:HostName=backup.test",
                $"--BackupMx:Smtp:Endpoints:0=127.0.0.1:{port}",
                "--BackupMx:Domains:0:Name=example.test",
                $"--BackupMx:Domains:0:Primary=127.0.0.1:{primaryPort}",
                $"--BackupMx:Spool:Path={spool.Path}",
                "--BackupMx:Admin:Endpoint=",
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        try
        {
            await WaitForPortAsync(port, process);
            var result = await SmtpSender.SendAsync(port, "alice@sender.test", ["bob@example.test"], Messages.Make(1));
            Assert.True(result.Accepted, result.DataReply);

            // Signalled directly: starting a `kill` process on a busy machine can itself take seconds,
            // which would count against the server's shutdown.
            var stopwatch = Stopwatch.StartNew();
            Assert.Equal(0, Kill(process.Id, SigTerm));

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await process.WaitForExitAsync(cts.Token);
            Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(10), $"took {stopwatch.Elapsed}");
            Assert.Equal(0, process.ExitCode);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        Assert.Contains("Accepted ", await output);

        // The accepted message is still in the spool, with its body, ready for the next start.
        using var store = new BackupMx.Local.SqliteSpoolStore(spool.Path);
        store.Open();
        var kept = Assert.Single(await store.ListAllAsync(CancellationToken.None).ToListAsync());
        Assert.NotNull(await store.ReadBodyAsync(kept.QueueId, CancellationToken.None));
    }

    [Fact]
    public async Task Start_DeliversOneSyntheticMessageToALoopbackSinkAndLeavesTheSpoolEmpty()
    {
        using var spool = new TempFolder();
        using var logs = new TempFolder();
        var port = FreePort.Next();
        await using var server = new ServerProcess(Path.Combine(logs.Path, "relay.log"),
        [
            "--BackupMx:HostName=backup.test",
            $"--BackupMx:Smtp:Endpoints:0=127.0.0.1:{port}",
            "--BackupMx:Domains:0:Name=example.test",
            $"--BackupMx:Domains:0:Primary=127.0.0.1:{FreePort.Next()}",
            $"--BackupMx:Spool:Path={spool.Path}",
            "--Logging:LogLevel:BackupMx.Delivery.WarmUp=Debug",
        ]);
        await server.StartAsync(port, TimeSpan.FromSeconds(60));

        // The primary is down (nothing listens on its port): only the warm-up's own sink can take mail.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        string log;
        while (!(log = server.LogTail(400)).Contains("the loopback sink took 1 message(s)", StringComparison.Ordinal))
        {
            Assert.DoesNotContain("Delivery warm-up failed", log, StringComparison.Ordinal);
            Assert.True(DateTime.UtcNow < deadline, log);
            await Task.Delay(100);
        }

        using var store = new SqliteSpoolStore(spool.Path);
        store.Open();
        await foreach (var record in store.ListAllAsync(CancellationToken.None))
        {
            Assert.Fail($"the warm-up spooled {record.QueueId}");
        }
    }

    [Fact]
    public async Task QueueAndFlushCommands_WhileTheRelayRuns_ShowWhatWaitsAndWhy()
    {
        using var spool = new TempFolder();
        var port = FreePort.Next();
        var primaryPort = FreePort.Next();
        string[] settings =
        [
            "--BackupMx:HostName=backup.test",
            $"--BackupMx:Smtp:Endpoints:0=127.0.0.1:{port}",
            "--BackupMx:Domains:0:Name=example.test",
            $"--BackupMx:Domains:0:Primary=127.0.0.1:{primaryPort}",
            "--BackupMx:Domains:1:Name=quiet.test",
            $"--BackupMx:Domains:1:Primary=127.0.0.1:{FreePort.Next()}",
            $"--BackupMx:Spool:Path={spool.Path}",
        ];
        using var relay = Process.Start(ServerStartInfo(settings))!;
        try
        {
            await WaitForPortAsync(port, relay);
            var result = await SmtpSender.SendAsync(port, "alice@sender.test", ["bob@example.test"], Messages.Make(1));
            Assert.True(result.Accepted, result.DataReply);

            // Nothing listens on the primary's port: the relay finds it down, and the queue command,
            // another process reading the same spool, says so.
            var deadline = DateTime.UtcNow.AddSeconds(90);
            var summary = await RunCommandAsync(["queue", .. settings]);
            while (!Lines(summary.Output).Any(l => l.StartsWith("example.test ", StringComparison.Ordinal) && l.Contains("primary Down since", StringComparison.Ordinal))
                && DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
                summary = await RunCommandAsync(["queue", .. settings]);
            }

            Assert.Equal(0, summary.ExitCode);
            var lines = Lines(summary.Output);
            Assert.Equal(3, lines.Length);
            Assert.Equal("spool: " + spool.Path, lines[0]);
            Assert.Matches(@"^example\.test +1 msg +1 rcpt  oldest \d\d:\d\d:\d\d +primary Down since \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  last error: (?i).*refused", lines[1]);
            Assert.Matches(@"^quiet\.test +0 msg +0 rcpt  oldest - +primary ", lines[2]);

            var list = await RunCommandAsync(["queue", "example.test", .. settings]);
            Assert.Equal(0, list.ExitCode);
            lines = Lines(list.Output);
            Assert.Equal(2, lines.Length);
            Assert.Equal("spool: " + spool.Path, lines[0]);
            Assert.Matches(@"^[0-9A-Za-z]+ Relay <alice@sender\.test> -> bob@example\.test  received .* next .* attempts [01]  ", lines[1]);

            var quiet = await RunCommandAsync(["queue", "quiet.test", .. settings]);
            Assert.Equal(0, quiet.ExitCode);
            Assert.Equal("nothing queued for quiet.test", Lines(quiet.Output)[^1]);

            // The relay is another process: the answer says that it is told, not that it has acted.
            var flush = await RunCommandAsync(["flush", "example.test", .. settings]);
            Assert.Equal(0, flush.ExitCode);
            Assert.Matches(
                @"^(1 message\(s\) of example\.test are due now; a running relay starts sending them at once\.|1 message\(s\) of example\.test queued, none to flush: they are already due or being delivered\.)$",
                Lines(flush.Output)[^1]);

            var flushJson = await RunCommandAsync(["flush", "example.test", "--json", .. settings]);
            Assert.True(flushJson.ExitCode == 0, flushJson.Error);
            using (var json = System.Text.Json.JsonDocument.Parse(flushJson.Output))
            {
                Assert.Equal(("flush", "example.test", 1), (json.RootElement.GetProperty("command").GetString(), json.RootElement.GetProperty("domain").GetString(), json.RootElement.GetProperty("queued").GetInt32()));
                Assert.InRange(json.RootElement.GetProperty("flushed").GetInt32(), 0, 1);
            }

            var flushQuietJson = await RunCommandAsync(["flush", "quiet.test", "--json", .. settings]);
            Assert.True(flushQuietJson.ExitCode == 0, flushQuietJson.Error);
            using (var json = System.Text.Json.JsonDocument.Parse(flushQuietJson.Output))
            {
                Assert.Equal((0, 0), (json.RootElement.GetProperty("queued").GetInt32(), json.RootElement.GetProperty("flushed").GetInt32()));
            }

            var flushQuiet = await RunCommandAsync(["flush", "quiet.test", .. settings]);
            Assert.Equal(0, flushQuiet.ExitCode);
            Assert.Equal("nothing queued for quiet.test", Lines(flushQuiet.Output)[^1]);

            foreach (var command in new[] { "queue", "flush" })
            {
                var unknown = await RunCommandAsync([command, "nosuch.test", .. settings]);
                Assert.Equal(67, unknown.ExitCode);
                Assert.Equal("nosuch.test is not a configured domain and nothing is queued for it", unknown.Error.Trim());
            }

            var wrong = await RunCommandAsync(["purge", .. settings]);
            Assert.Equal(64, wrong.ExitCode);
            Assert.StartsWith("usage: ", wrong.Error, StringComparison.Ordinal);
        }
        finally
        {
            relay.Kill(entireProcessTree: true);
            await relay.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task QueueAndFlushCommands_WithoutASpool_FailNamingThePathAndCreateNothing()
    {
        // A fresh folder as the current directory, as when an operator runs the command from
        // somewhere else than the relay: the default relative spool path is not there.
        using var folder = new TempFolder();
        var expected = Path.Combine(folder.Path, "spool", "spool.db");
        foreach (var args in new[] { new[] { "queue" }, ["queue", "example.test"], ["flush", "example.test"] })
        {
            var run = await RunCommandAsync(args, folder.Path);
            Assert.Equal(66, run.ExitCode);
            Assert.Equal("", run.Output);
            var error = run.Error.Trim();
            Assert.DoesNotContain('\n', error);
            Assert.StartsWith($"no spool at {expected}: ", error, StringComparison.Ordinal);
            Assert.Contains("--BackupMx:Spool:Path=", error, StringComparison.Ordinal);
        }

        // An explicit path that does not exist is reported the same way.
        var missing = Path.Combine(folder.Path, "elsewhere");
        var explicitRun = await RunCommandAsync(["queue", $"--BackupMx:Spool:Path={missing}"], folder.Path);
        Assert.Equal(66, explicitRun.ExitCode);
        Assert.StartsWith($"no spool at {Path.Combine(missing, "spool.db")}: ", explicitRun.Error, StringComparison.Ordinal);

        Assert.Empty(Directory.EnumerateFileSystemEntries(folder.Path));
    }

    private static string[] Lines(string output) => output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Fact]
    public async Task Start_BadValueInSecondDomain_ExitsWith2NamingTheKey()
    {
        using var spool = new TempFolder();
        var result = await RunCommandAsync(
        [
            "--BackupMx:HostName=backup.test",
            $"--BackupMx:Smtp:Endpoints:0=127.0.0.1:{FreePort.Next()}",
            "--BackupMx:Domains:0:Name=example.test",
            "--BackupMx:Domains:1:Name=other.test",
            "--BackupMx:Domains:1:Primary=127.0.0.1:2626",
            "--BackupMx:Domains:1:OutboundTls=Requried",
            $"--BackupMx:Spool:Path={spool.Path}",
        ]);

        Assert.Equal(2, result.ExitCode);
        Assert.Equal(
            "BackupMx cannot start: the configuration is invalid.\n  BackupMx:Domains:1:OutboundTls: 'Requried' is not a valid value (Opportunistic, Required, Disabled).\n",
            result.Error.ReplaceLineEndings("\n"));
        Assert.DoesNotContain("Exception", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_PortInUse_ExitsWith2NamingTheEndpoint()
    {
        using var spool = new TempFolder();
        using var occupant = new TcpListener(System.Net.IPAddress.Loopback, 0);
        occupant.Start();
        var port = ((System.Net.IPEndPoint)occupant.LocalEndpoint).Port;
        var result = await RunCommandAsync(
        [
            "--BackupMx:HostName=backup.test",
            $"--BackupMx:Smtp:Endpoints:0=127.0.0.1:{port}",
            "--BackupMx:Domains:0:Name=example.test",
            $"--BackupMx:Domains:0:Primary=127.0.0.1:{FreePort.Next()}",
            $"--BackupMx:Spool:Path={spool.Path}",
        ]);

        Assert.Equal(2, result.ExitCode);
        Assert.Matches($@"^BackupMx cannot start: 127\.0\.0\.1:{port} is already in use \(.*\)\.$", result.Error.Trim());
        Assert.DoesNotContain("BackgroundService failed", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Hosting failed to start", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_SecondRelayOnTheSameSpool_ExitsWith2NamingTheFolderAndTheFirstRelay()
    {
        using var spool = new TempFolder();
        var port = FreePort.Next();
        string[] Settings(int smtpPort) =>
        [
            "--BackupMx:HostName=backup.test",
            $"--BackupMx:Smtp:Endpoints:0=127.0.0.1:{smtpPort}",
            "--BackupMx:Domains:0:Name=example.test",
            $"--BackupMx:Domains:0:Primary=127.0.0.1:{FreePort.Next()}",
            $"--BackupMx:Spool:Path={spool.Path}",
        ];
        using var first = Process.Start(ServerStartInfo(Settings(port)))!;
        try
        {
            await WaitForPortAsync(port, first);

            // Another port, so nothing but the spool stops it.
            var second = await RunCommandAsync(Settings(FreePort.Next()));

            Assert.Equal(2, second.ExitCode);
            Assert.Matches(
                $@"^BackupMx cannot start: the spool folder {System.Text.RegularExpressions.Regex.Escape(spool.Path)} is in use by another relay, process {first.Id} ",
                second.Error.Trim());
            Assert.DoesNotContain('\n', second.Error.Trim());
            Assert.False(first.HasExited);
        }
        finally
        {
            first.Kill(entireProcessTree: true);
            await first.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task QueueCommand_UnreadableRecord_IsListedAsQuarantinedBesideTheOthers()
    {
        using var spool = new TempFolder();
        var good = BackupMx.Testing.Contracts.SpoolRecords.Sample();
        var bad = BackupMx.Testing.Contracts.SpoolRecords.Sample();
        using (var store = new BackupMx.Local.SqliteSpoolStore(spool.Path))
        {
            store.Open();
            await store.CreateAsync(good, CancellationToken.None);
            await store.CreateAsync(bad, CancellationToken.None);
        }

        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(spool.Path, "spool.db")};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "UPDATE spool SET data = '{' WHERE queue_id = $id";
            command.Parameters.AddWithValue("$id", bad.QueueId);
            Assert.Equal(1, command.ExecuteNonQuery());
        }

        string[] settings =
        [
            "--BackupMx:HostName=backup.test",
            $"--BackupMx:Smtp:Endpoints:0=127.0.0.1:{FreePort.Next()}",
            "--BackupMx:Domains:0:Name=example.test",
            $"--BackupMx:Domains:0:Primary=127.0.0.1:{FreePort.Next()}",
            $"--BackupMx:Spool:Path={spool.Path}",
        ];

        var summary = await RunCommandAsync(["queue", .. settings]);
        Assert.Equal(0, summary.ExitCode);
        var lines = Lines(summary.Output);
        Assert.Matches(@"^example\.test +1 msg +2 rcpt ", lines[1]);
        Assert.Equal("quarantined: 1 record(s) could not be read and wait for an operator (not delivered, not expired):", lines[2]);
        Assert.StartsWith($"{bad.QueueId} example.test QUARANTINED  ", lines[3], StringComparison.Ordinal);

        var list = await RunCommandAsync(["queue", "example.test", .. settings]);
        Assert.Equal(0, list.ExitCode);
        lines = Lines(list.Output);
        Assert.StartsWith($"{good.QueueId} Relay ", lines[1], StringComparison.Ordinal);
        Assert.StartsWith($"{bad.QueueId} example.test QUARANTINED  ", lines[^1], StringComparison.Ordinal);
    }

    private static ProcessStartInfo ServerStartInfo(IEnumerable<string> args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(typeof(BackupMx.Server.EmbeddedHost).Assembly.Location);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // Off: tests run side by side, and the admin endpoint's default port is fixed.
        start.ArgumentList.Add("--BackupMx:Admin:Endpoint=");

        return start;
    }

    private static async Task<(int ExitCode, string Output, string Error)> RunCommandAsync(string[] args, string? workingDirectory = null)
    {
        var start = ServerStartInfo(args);
        if (workingDirectory is not null)
        {
            start.WorkingDirectory = workingDirectory;
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await output, await error);
    }

    private const int SigTerm = 15;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private static async Task WaitForPortAsync(int port, Process process)
    {
        // Start-up of a fresh dotnet process, JIT included, on a machine that may be busy.
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            if (process.HasExited)
            {
                Assert.Fail("the server exited: " + await process.StandardError.ReadToEndAsync());
            }

            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }
}
