using BackupMx.Core.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace BackupMx.Core.Tests;

public sealed class HostRunnerTests
{
    [Fact]
    public async Task RunAsync_BackgroundServiceFails_ExitsWith70NamingIt()
    {
        // The generic host stops on a failed BackgroundService but ends like a requested stop;
        // exit code 0 would tell a supervisor restarting on failure that all is well.
        using var host = new HostBuilder()
            .ConfigureServices(s => s.AddHostedService<FailingLoop>())
            .Build();
        using var error = new StringWriter();

        var exitCode = await HostRunner.RunAsync(host, "BackupMx", error).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HostRunner.ServiceFailedExitCode, exitCode);
        Assert.Equal("BackupMx stopped: FailingLoop failed: the spool vanished\n", error.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task RunAsync_StoppedOnRequest_ExitsWith0()
    {
        using var host = new HostBuilder()
            .ConfigureServices(s => s.AddHostedService<StoppingLoop>())
            .Build();
        using var error = new StringWriter();

        var exitCode = await HostRunner.RunAsync(host, "BackupMx", error).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(0, exitCode);
        Assert.Equal(string.Empty, error.ToString());
    }

    private sealed class FailingLoop : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            await Task.Yield();
            throw new InvalidOperationException("the spool vanished");
        }
    }

    // Asks the host to stop, as SIGTERM does, and ends its loop cleanly when told to.
    private sealed class StoppingLoop(IHostApplicationLifetime lifetime) : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            await Task.Yield();
            lifetime.StopApplication();
            await Task.Delay(Timeout.Infinite, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }
}
