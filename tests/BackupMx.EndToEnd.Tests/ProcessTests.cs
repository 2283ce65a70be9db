using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using BackupMx.Testing;

namespace BackupMx.EndToEnd.Tests;

/// <summary>The server as a real process: start, accept mail, stop on SIGTERM within seconds, keep the mail.</summary>
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

        // The accepted message is still in the spool, ready for the next start.
        Assert.Single(Directory.EnumerateFiles(Path.Combine(spool.Path, "bodies"), "*", SearchOption.AllDirectories));
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
            while (!summary.Output.Contains("primary Down since", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
                summary = await RunCommandAsync(["queue", .. settings]);
            }

            Assert.Equal(0, summary.ExitCode);
            Assert.Matches(@"^example\.test +1 msg +1 rcpt  oldest \d\d:\d\d:\d\d +primary Down since \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  last error: (?i).*refused", summary.Output.Trim());

            var list = await RunCommandAsync(["queue", "example.test", .. settings]);
            Assert.Equal(0, list.ExitCode);
            Assert.Matches(@"^[0-9A-Za-z]+ Relay <alice@sender\.test> -> bob@example\.test  received .* next .* attempts [01]  ", list.Output.Trim());

            var flush = await RunCommandAsync(["flush", "example.test", .. settings]);
            Assert.Equal(0, flush.ExitCode);
            Assert.Matches(@"^[01] message\(s\) of example\.test are due now\.$", flush.Output.Trim());

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
    }

    private static ProcessStartInfo ServerStartInfo(IEnumerable<string> args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(typeof(BackupMx.Server.EmbeddedHost).Assembly.Location);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return start;
    }

    private static async Task<(int ExitCode, string Output, string Error)> RunCommandAsync(string[] args)
    {
        using var process = Process.Start(ServerStartInfo(args))!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(cts.Token);
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
