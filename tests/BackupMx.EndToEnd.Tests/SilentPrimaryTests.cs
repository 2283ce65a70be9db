// A primary that accepts TCP connections but never greets: a mail server still
// starting up, a load balancer with no healthy backend, a firewall that accepts
// and blackholes. The relay's probe must give up on it after
// Delivery:ProbeTimeout, not the deliveries' Delivery:Timeout, so that the
// monitor is asleep until the next probe, not stuck, when the primary returns.
using System.Diagnostics;
using System.Net;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace BackupMx.EndToEnd.Tests;

[Collection(EndToEndCollection.Name)]
public sealed class SilentPrimaryTests
{
    [Fact]
    public async Task PrimaryAcceptsButNeverGreets_DownAfterProbeTimeout_BacklogArrivesAtTheNextProbeOnceItGreets()
    {
        using var spool = new TempFolder();
        await using var primary = new FakePrimary();
        await primary.StartAsync();
        await primary.StopAsync();
        using var silent = new SilentServer(IPAddress.Loopback, primary.Port);
        var time = new TimerAwareTimeProvider(DateTimeOffset.UtcNow);

        var clock = Stopwatch.StartNew();
        await using var relay = await RelayHost.StartAsync(
            spool.Path,
            primary.Port,
            time,
            extraArgs: [BacklogTests.ProbeIntervalArg, "--BackupMx:Delivery:Timeout=00:00:30", "--BackupMx:Delivery:ProbeTimeout=00:00:01"]);

        // The start-up probe waits 1 s for a greeting, not 30 s; then the monitor sleeps until the next probe.
        await time.WaitForTimerAsync(BacklogTests.ProbeInterval, 0, seconds: 10);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        var status = (await relay.Services.GetRequiredService<IPrimaryStatusStore>().GetAsync("example.test", CancellationToken.None))?.Status;
        Assert.Equal(PrimaryState.Down, status?.State);
        Assert.Equal("451 4.4.1 127.0.0.1: no greeting within 1 s", status?.LastError);
        Assert.Equal(1, silent.ConnectionCount);

        // Accepted while the primary is known to be down: it waits for the recovery flush.
        Assert.True((await SmtpSender.SendAsync(relay.SmtpPort, "alice@sender.test", ["bob@example.test"], Messages.Make(1))).Accepted);

        // The primary greets again on the same address, and the next probe sends it the backlog.
        silent.Dispose();
        await primary.StartAsync();
        time.Advance(BacklogTests.ProbeInterval);

        var received = await primary.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30));
        Assert.Equal(["bob@example.test"], Assert.Single(received).AcceptedRecipients);
    }
}
