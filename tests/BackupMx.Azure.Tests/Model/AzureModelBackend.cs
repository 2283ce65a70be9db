using Azure.Data.Tables;
using Azure.Storage.Blobs;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing.Azurite;
using BackupMx.Testing.Model;

namespace BackupMx.Azure.Tests.Model;

/// <summary>
/// Azure mode: the Table spool, Blob bodies and Table primary statuses on Azurite, and Service
/// Bus wake-ups on <see cref="ModelServiceBus"/>. Dispatch is the Forward function's loop (receive
/// the due wake-ups, forward each, complete it, or abandon it on an error); functions keep nothing
/// between invocations, so a restart has no recovery: leases run out and locked wake-ups come back.
/// </summary>
public sealed class AzureModelBackend : ModelBackend
{
    private readonly TableClient _spoolTable;
    private readonly TableClient _statusTable;
    private readonly BlobContainerClient _container;
    private ModelServiceBus? _bus;

    private AzureModelBackend(TableClient spoolTable, TableClient statusTable, BlobContainerClient container)
    {
        _spoolTable = spoolTable;
        _statusTable = statusTable;
        _container = container;
    }

    public override string Name => "Azure adapters on Azurite";

    public static async Task<AzureModelBackend> CreateAsync(AzuriteFixture azurite)
    {
        var tables = new TableServiceClient(azurite.ConnectionString);
        var spool = tables.GetTableClient(AzuriteFixture.UniqueName("spool"));
        var statuses = tables.GetTableClient(AzuriteFixture.UniqueName("status"));
        await spool.CreateIfNotExistsAsync();
        await statuses.CreateIfNotExistsAsync();
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(AzuriteFixture.UniqueName("bodies"));
        await container.CreateIfNotExistsAsync();
        return new AzureModelBackend(spool, statuses, container);
    }

    public override Task<ProcessPorts> OpenAsync(TimeProvider clock)
    {
        // The bus runs on the world's clock, whatever a process's own says.
        _bus ??= new ModelServiceBus(clock is SkewedTimeProvider ? WorldClock(clock) : clock);
        var wakeUps = new ServiceBusWakeUpQueue(_bus.CreateSender(), _bus.CreateReceiver());
        return Task.FromResult(new ProcessPorts(new TableSpoolStore(_spoolTable), new BlobBodyStore(_container), new TablePrimaryStatusStore(_statusTable), wakeUps));
    }

    public override Task RecoverAsync(ProcessPorts ports, TimeProvider clock) => Task.CompletedTask;

    public override void AfterCrash() => _bus?.ReleaseLocks();

    public override void LoseWakeUps() => _bus?.DropScheduled();

    public override async Task DeliverDueAsync(ModelProcess process, bool race)
    {
        var source = (IWakeUpSource)process.Ports.WakeUps;
        for (var round = 0; round < 10 && !process.Crash.Killed; round++)
        {
            IReadOnlyList<ReceivedWakeUp> batch;
            try
            {
                process.Crash.ThrowIfKilled();
                batch = await source.ReceiveDueAsync(100, TimeSpan.Zero, CancellationToken.None);
            }
            catch (SimulatedCrashException)
            {
                return;
            }

            if (batch.Count == 0)
            {
                return;
            }

            foreach (var wakeUp in batch)
            {
                var failed = false;
                async Task ForwardOneAsync()
                {
                    try
                    {
                        await process.Forwarder.ProcessAsync(wakeUp.WakeUp, CancellationToken.None);
                    }
                    catch (Exception ex) when (ex is not SimulatedCrashException)
                    {
                        failed = true;
                        throw;
                    }
                }

                if (race)
                {
                    // Two function instances given the same wake-up (a duplicate, or a lock that ran out).
                    await Task.WhenAll(ForwardAsync(process, ForwardOneAsync), ForwardAsync(process, ForwardOneAsync));
                }
                else
                {
                    await ForwardAsync(process, ForwardOneAsync);
                }

                if (process.Crash.Killed)
                {
                    return;
                }

                if (failed)
                {
                    await source.AbandonAsync(wakeUp, CancellationToken.None);
                }
                else
                {
                    await source.CompleteAsync(wakeUp, CancellationToken.None);
                }
            }
        }
    }

    public override async Task<IReadOnlyList<SpoolRecord>> ListAllAsync()
    {
        var records = new List<SpoolRecord>();
        await foreach (var record in new TableSpoolStore(_spoolTable).ListAllAsync(CancellationToken.None))
        {
            records.Add(record);
        }

        return records;
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await _spoolTable.DeleteAsync();
        await _statusTable.DeleteAsync();
        await _container.DeleteIfExistsAsync();
    }

    private static TimeProvider WorldClock(TimeProvider clock) => ((SkewedTimeProvider)clock).World;
}
