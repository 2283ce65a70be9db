using BackupMx.Core.Forwarding;
using BackupMx.Core.Model;
using BackupMx.Testing.Model;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupMx.Local.Tests.Model;

/// <summary>
/// The embedded spool: SQLite and body files in one folder that outlives each simulated process.
/// The spool's next-attempt index is the schedule, so dispatch is the delivery pump's pass (list
/// what is due, forward it) and wake-ups are only nudges; start-up recovery is the relay's own.
/// </summary>
public sealed class SqliteModelBackend : ModelBackend
{
    // On tmpfs where there is one: crashes are simulated at the ports, so the model tests the
    // logic over real SQLite and files, and fsync (seconds per run here) would only eat the budget.
    private readonly string _path = Path.Combine(Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), "backupmx-model-" + Guid.NewGuid().ToString("N"));

    public SqliteModelBackend()
    {
        Directory.CreateDirectory(_path);
    }

    public override string Name => "SQLite spool";

    public override async Task<ProcessPorts> OpenAsync(TimeProvider clock)
    {
        var spool = new SqliteSpoolStore(_path);
        var bodies = new FileBodyStore(_path);
        var statuses = new SqlitePrimaryStatusStore(spool);
        await LocalSpoolInitializer.OpenStoresAsync(spool, bodies, statuses, CancellationToken.None);
        return new ProcessPorts(
            spool,
            new LocalBodyStore(bodies, spool),
            statuses,
            new InProcessWakeUpQueue(new WakeUpSignal()),
            new Owned(spool));
    }

    // The live process's start-up step, which holds the spool lock for that process's life.
    private LocalSpoolInitializer? _initializer;

    public override Task RecoverAsync(ProcessPorts ports, TimeProvider clock)
    {
        _initializer = new LocalSpoolInitializer(
            (SqliteSpoolStore)ports.Spool,
            ((LocalBodyStore)ports.Bodies).Files,
            (SqlitePrimaryStatusStore)ports.Statuses,
            clock,
            NullLogger<LocalSpoolInitializer>.Instance);
        return _initializer.RunAsync(CancellationToken.None);
    }

    // A process that dies loses its lock with it, as flock's are when the kernel closes the file.
    public override void AfterCrash()
    {
        _initializer?.Dispose();
        _initializer = null;
    }

    public override void LoseWakeUps()
    {
        // The pump reads due records from the spool: a lost nudge only delays it to its next look.
    }

    public override async Task DeliverDueAsync(ModelProcess process, bool race)
    {
        // The pump looks again at once after a pass that started work; a bound keeps a record that
        // stays due (a bug) from spinning here: the drain's check reports it.
        for (var pass = 0; pass < 10 && !process.Crash.Killed; pass++)
        {
            var due = new List<SpoolRecord>();
            try
            {
                await foreach (var record in process.Spool.ListDueAsync(process.Clock.GetUtcNow(), 128, CancellationToken.None))
                {
                    due.Add(record);
                }
            }
            catch (SimulatedCrashException)
            {
                return;
            }
            catch (Exception ex)
            {
                lock (process.Errors)
                {
                    process.Errors.Add("pump: " + ex.GetType().Name + ": " + ex.Message);
                }

                return;
            }

            if (due.Count == 0)
            {
                return;
            }

            foreach (var record in due)
            {
                if (race)
                {
                    // The pump and the sweep (or two pumps) on one record at once: the claim lets one through.
                    await Task.WhenAll(
                        ForwardAsync(process, () => process.Forwarder.ProcessAsync(record, CancellationToken.None)),
                        ForwardAsync(process, () => process.Forwarder.ProcessAsync(record, CancellationToken.None)));
                }
                else
                {
                    await ForwardAsync(process, () => process.Forwarder.ProcessAsync(record, CancellationToken.None));
                }

                if (process.Crash.Killed)
                {
                    return;
                }
            }
        }
    }

    public override async Task<IReadOnlyList<SpoolRecord>> ListAllAsync()
    {
        using var spool = new SqliteSpoolStore(_path);
        spool.Open();
        var records = new List<SpoolRecord>();
        await foreach (var record in spool.ListAllAsync(CancellationToken.None))
        {
            records.Add(record);
        }

        return records;
    }

    public override async ValueTask DisposeAsync()
    {
        _initializer?.Dispose();
        await base.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_path, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private sealed class Owned(SqliteSpoolStore spool) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            spool.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
