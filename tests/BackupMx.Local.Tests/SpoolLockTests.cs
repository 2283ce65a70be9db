using System.Diagnostics;
using BackupMx.Core.Hosting;
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Testing.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Local.Tests;

/// <summary>A second relay on one spool folder is refused before its start-up recovery can touch the first one's work.</summary>
public sealed class SpoolLockTests : IDisposable
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly TempSpool _spool = new();

    public void Dispose() => _spool.Dispose();

    [Fact]
    public async Task RunAsync_AnotherRelayHoldsTheSpool_RefusesAndLeavesLeasesAndStalledBodiesAlone()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var spool = _spool.OpenSpool();
        var bodies = _spool.OpenBodies();

        // The live relay is delivering one message and has answered 250 for another whose
        // record commit has been stalled for five minutes.
        var leased = SpoolRecords.Sample(nextAttemptAt: time.GetUtcNow());
        await bodies.WriteAsync(leased.QueueId, new MemoryStream([1]), None);
        leased = await spool.CreateAsync(leased, None);
        leased = await spool.UpdateAsync(leased! with { LeaseOwner = "live-relay", LeaseExpiresAt = time.GetUtcNow().AddMinutes(15) }, None);
        var stalled = QueueId.New(time.GetUtcNow());
        await bodies.WriteAsync(stalled, new MemoryStream([2]), None);
        File.SetLastWriteTimeUtc(bodies.PathOf(stalled), time.GetUtcNow().UtcDateTime.AddMinutes(-5));

        using var liveRelay = SpoolLock.Acquire(_spool.Path);
        using var second = new LocalSpoolInitializer(spool, bodies, TempSpool.OpenStatuses(spool), time, NullLogger<LocalSpoolInitializer>.Instance);

        var refused = await Assert.ThrowsAsync<StartupException>(() => second.RunAsync(None));
        Assert.Contains(_spool.Path, refused.Message, StringComparison.Ordinal);
        Assert.Contains($"process {Environment.ProcessId}", refused.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(bodies.PathOf(stalled)));
        Assert.Equal("live-relay", (await spool.GetAsync(leased.Domain, leased.QueueId, None))!.LeaseOwner);

        // The orphan scan on its own is refused as well.
        await Assert.ThrowsAsync<StartupException>(() => second.RemoveOrphanedBodiesAsync(time.GetUtcNow(), LocalSpoolInitializer.OrphanGracePeriod, None));
        Assert.True(File.Exists(bodies.PathOf(stalled)));
    }

    [Fact]
    public async Task RunAsync_HolderInAnotherProcess_NamesItsPidAndSucceedsOnceItIsGone()
    {
        var spool = _spool.OpenSpool();
        using var initializer = new LocalSpoolInitializer(spool, _spool.OpenBodies(), TempSpool.OpenStatuses(spool), new FakeTimeProvider(), NullLogger<LocalSpoolInitializer>.Instance);

        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "BackupMx.Local.CrashHelper.dll"));
        start.ArgumentList.Add(_spool.Path);
        start.ArgumentList.Add("lock");
        using var holder = Process.Start(start)!;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            Assert.Equal("locked", await holder.StandardOutput.ReadLineAsync(timeout.Token));

            var refused = await Assert.ThrowsAsync<StartupException>(() => initializer.RunAsync(None));
            Assert.Contains($"process {holder.Id} ", refused.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', refused.Message);
        }
        finally
        {
            holder.Kill();
            await holder.WaitForExitAsync(None);
        }

        // The operating system released the lock with the process: no stale lock file to remove by hand.
        await initializer.RunAsync(None);
    }

    [Fact]
    public async Task HostRunner_SecondRelayOnTheSameSpool_ExitsWithTheStartupCodeAndOneLine()
    {
        using var first = BuildHost();
        await first.StartAsync(None);
        try
        {
            using var second = BuildHost();
            var error = new StringWriter();

            var exitCode = await HostRunner.RunAsync(second, "BackupMx", error);

            Assert.Equal(HostRunner.StartupFailedExitCode, exitCode);
            var line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("BackupMx cannot start: ", line, StringComparison.Ordinal);
            Assert.Contains(_spool.Path, line, StringComparison.Ordinal);
            Assert.Contains($"process {Environment.ProcessId}", line, StringComparison.Ordinal);
        }
        finally
        {
            await first.StopAsync(None);
        }
    }

    [Fact]
    public void Acquire_AfterTheHolderReleasedIt_Succeeds()
    {
        using (SpoolLock.Acquire(_spool.Path))
        {
            Assert.Throws<StartupException>(() => SpoolLock.Acquire(_spool.Path));
        }

        using var again = SpoolLock.Acquire(_spool.Path);
        Assert.Equal(Path.Combine(_spool.Path, SpoolLock.FileName), again.Path);
    }

    private IHost BuildHost()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.Configure<BackupMxOptions>(o => o.Spool.Path = _spool.Path);
        builder.Services.AddBackupMxLocalSpool();
        return builder.Build();
    }
}
