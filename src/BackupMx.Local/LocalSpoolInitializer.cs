using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BackupMx.Local;

/// <summary>
/// Start-up housekeeping of the embedded spool, run before any other hosted service touches
/// it: takes the spool lock (<see cref="SpoolLock"/>), which refuses a second relay on the same
/// folder before it can touch anything, then opens the stores (<see cref="OpenStoresAsync"/>: the
/// constructors touch nothing on disk), releases leases left by a killed process, removes unfinished body files and orphaned
/// bodies, creates the body shard folders, and forgets the primary states a previous run recorded. Nothing writes to the spool yet, so whatever it finds unfinished is a crash leftover;
/// no other place may assume that, since operator commands open the spool while the relay runs. It works in
/// <see cref="IHostedLifecycleService.StartingAsync"/>, which the host completes for every
/// service before it calls any <see cref="IHostedService.StartAsync"/> (the SMTP listener's, the
/// delivery pump's), whatever the registration order.
/// </summary>
public sealed partial class LocalSpoolInitializer(
    SqliteSpoolStore spool,
    FileBodyStore bodies,
    SqlitePrimaryStatusStore statuses,
    TimeProvider time,
    ILogger<LocalSpoolInitializer> logger) : IHostedLifecycleService, IDisposable
{
    /// <summary>
    /// A body younger than this is never an orphan. The spool lock already rules out a live
    /// intake (only the relay that holds it writes bodies, and its listener has not started), so
    /// this only guards against a clock or file times that cannot be trusted. Generous, because
    /// deleting a live body loses mail while keeping a dead one only costs disk until the next start.
    /// </summary>
    public static readonly TimeSpan OrphanGracePeriod = TimeSpan.FromMinutes(1);

    private readonly Lock _gate = new();
    private SpoolLock? _lock;

    public Task StartingAsync(CancellationToken cancellationToken) => RunAsync(cancellationToken);

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Releases stale leases, removes unfinished body files, creates the shard folders, removes
    /// orphaned bodies, and makes every primary Unknown, so that its first answer flushes its mail.
    /// </summary>
    /// <exception cref="Core.Hosting.StartupException">Another relay holds the spool; nothing was changed.</exception>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        LockSpool();
        await OpenStoresAsync(spool, bodies, statuses, cancellationToken).ConfigureAwait(false);
        var now = time.GetUtcNow();
        await spool.RecoverAsync(now, cancellationToken).ConfigureAwait(false);
        await statuses.ForgetAllAsync(cancellationToken).ConfigureAwait(false);
        bodies.RemoveTemporaryFiles();
        bodies.CreateShards();
        await RemoveOrphanedBodiesAsync(now, OrphanGracePeriod, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Deletes bodies that no spool record refers to and that were last written before
    /// <paramref name="now"/> minus <paramref name="gracePeriod"/>: left by a crash between
    /// the body write and the record commit, or by a failed intake whose clean-up failed too.
    /// </summary>
    /// <returns>The number of bodies deleted.</returns>
    /// <remarks>
    /// Safe only where no intake can be running: a body whose record commit stalls longer than
    /// <paramref name="gracePeriod"/> is indistinguishable from an orphan. So it takes the spool lock
    /// first, which every relay holds while it receives; a live relay makes it throw instead. The
    /// lock cannot tell about the caller's own process: there, call it only before the listener
    /// starts, as <see cref="RunAsync"/> does.
    /// </remarks>
    /// <exception cref="Core.Hosting.StartupException">Another relay holds the spool; nothing was deleted.</exception>
    public async Task<int> RemoveOrphanedBodiesAsync(DateTimeOffset now, TimeSpan gracePeriod, CancellationToken cancellationToken)
    {
        LockSpool();
        spool.Open();
        bodies.Open();

        // Bodies are listed before records: a body old enough to be a candidate had its record
        // committed (if ever) before the records are read, so a live message is never taken for an orphan.
        var cutoff = now - gracePeriod;
        var candidates = bodies.EnumerateBodies().Where(b => b.WrittenAt < cutoff).Select(b => b.QueueId).ToList();
        if (candidates.Count == 0)
        {
            return 0;
        }

        var live = await spool.GetQueueIdsAsync(cancellationToken).ConfigureAwait(false);
        var removed = 0;
        foreach (var id in candidates.Where(id => !live.Contains(id)))
        {
            await bodies.DeleteAsync(id, cancellationToken).ConfigureAwait(false);
            LogOrphanRemoved(logger, id);
            removed++;
        }

        return removed;
    }

    /// <summary>
    /// The start-up I/O of the three stores and nothing else: creates the folders and the database
    /// if missing, migrates the schema, starts the spool's writer thread. No recovery: an operator
    /// command opens the spool this way while the relay runs. Calling it again does nothing.
    /// </summary>
    public static async Task OpenStoresAsync(SqliteSpoolStore spool, FileBodyStore bodies, SqlitePrimaryStatusStore statuses, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spool);
        ArgumentNullException.ThrowIfNull(bodies);
        ArgumentNullException.ThrowIfNull(statuses);
        spool.Open();
        await statuses.InitializeAsync(cancellationToken).ConfigureAwait(false);
        bodies.Open();
    }

    /// <summary>Releases the spool lock (the host disposes this service when it ends).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _lock?.Dispose();
            _lock = null;
        }
    }

    private void LockSpool()
    {
        lock (_gate)
        {
            if (_lock is null)
            {
                // The lock file lives in the spool folder, which a first start has yet to create.
                var folder = Path.GetDirectoryName(spool.DatabasePath)!;
                Directory.CreateDirectory(folder);
                _lock = SpoolLock.Acquire(folder);
            }
        }
    }

    [LoggerMessage(EventId = 4920, Level = LogLevel.Warning, Message = "Removed the orphaned body {QueueId}: no spool record refers to it")]
    private static partial void LogOrphanRemoved(ILogger logger, string queueId);
}
