using BackupMx.Core.Forwarding;
using Microsoft.Extensions.Hosting;

namespace BackupMx.Local;

/// <summary>
/// Wakes the relay's pump when a flush is committed by another process (the <c>flush</c>
/// command): <see cref="SqliteSpoolStore"/> announces each committed flush epoch with a file in
/// the spool folder, created and removed at once. Without it the pump would find the flush only
/// at its next look of its own accord (<see cref="DueMessagePump.MaxIdle"/>). The relay's own
/// flushes are passed by (<see cref="SqliteSpoolStore.IsOwnFlushAnnouncement"/>): their flusher
/// wakes the pump once it has counted.
/// </summary>
public sealed class SpoolFlushWatcher(SqliteSpoolStore spool, WakeUpSignal pump) : IHostedService, IDisposable
{
    private FileSystemWatcher? _watcher;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Names only, in the spool folder only: the database's writes and the bodies' folders raise nothing here.
        _watcher = new FileSystemWatcher(Path.GetDirectoryName(spool.DatabasePath)!, SqliteSpoolStore.FlushAnnouncementPattern)
        {
            NotifyFilter = NotifyFilters.FileName,
            IncludeSubdirectories = false,
        };
        _watcher.Created += (_, e) =>
        {
            if (!spool.IsOwnFlushAnnouncement(e.Name ?? string.Empty))
            {
                pump.Set();
            }
        };
        _watcher.EnableRaisingEvents = true;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _watcher?.EnableRaisingEvents = false;
        return Task.CompletedTask;
    }

    public void Dispose() => _watcher?.Dispose();
}
