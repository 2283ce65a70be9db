using BackupMx.Core.Forwarding;
using Xunit;

namespace BackupMx.Local.Tests;

/// <summary>The relay's pump wakes when another process (the <c>flush</c> command) commits a flush.</summary>
public sealed class SpoolFlushWatcherTests : IDisposable
{
    private readonly TempSpool _spool = new();

    [Fact]
    public async Task FlushFromAnotherStore_WakesThePump()
    {
        var relay = _spool.OpenSpool();
        var pump = new WakeUpSignal();
        using var watcher = new SpoolFlushWatcher(relay, pump);
        await watcher.StartAsync(CancellationToken.None);
        pump.Reset();
        Assert.False(pump.WaitAsync().IsCompleted);

        // A second store over the same folder, as the flush command opens it.
        using var command = new SqliteSpoolStore(_spool.Path);
        command.Open();
        await command.SetFlushEpochAsync("example.test", DateTimeOffset.UtcNow, CancellationToken.None);

        // An operating-system notification, not a schedule: waited for, with a bound that only fails the test.
        await pump.WaitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Empty(Directory.EnumerateFiles(_spool.Path, SqliteSpoolStore.FlushAnnouncementPattern));
        await watcher.StopAsync(CancellationToken.None);
    }

    [Fact]
    public void OwnFlush_IsToldApartFromAnotherStores()
    {
        // The relay's own flush is counted by its flusher before the flusher wakes the pump; a wake-up
        // from the announcement would let claims leave the count.
        var relay = _spool.OpenSpool();
        using var command = new SqliteSpoolStore(_spool.Path);
        command.Open();

        Assert.True(relay.IsOwnFlushAnnouncement(relay.NewFlushAnnouncementName()));
        Assert.False(relay.IsOwnFlushAnnouncement(command.NewFlushAnnouncementName()));
        Assert.True(command.IsOwnFlushAnnouncement(command.NewFlushAnnouncementName()));
    }

    public void Dispose() => _spool.Dispose();
}
