using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing.Contracts;
using BackupMx.Testing.Fakes;

namespace BackupMx.Core.Tests;

public sealed class InMemorySpoolStoreContractTests : SpoolStoreContract
{
    protected override Task<ISpoolStore> CreateStoreAsync() => Task.FromResult<ISpoolStore>(new InMemorySpoolStore());

    protected override Task CorruptAsync(ISpoolStore store, SpoolRecord record)
    {
        ((InMemorySpoolStore)store).Corrupt(record.QueueId);
        return Task.CompletedTask;
    }
}

public sealed class InMemoryBodyStoreContractTests : BodyStoreContract
{
    protected override Task<IBodyStore> CreateStoreAsync() => Task.FromResult<IBodyStore>(new InMemoryBodyStore());
}

public sealed class InMemoryPrimaryStatusStoreContractTests : PrimaryStatusStoreContract
{
    protected override Task<IPrimaryStatusStore> CreateStoreAsync() => Task.FromResult<IPrimaryStatusStore>(new BackupMx.Core.Monitoring.InMemoryPrimaryStatusStore());
}

public sealed class InMemorySpoolLedgerContractTests : SpoolLedgerContract
{
    protected override Task<(ISpoolStore Spool, IBodyStore Bodies, IWakeUpQueue WakeUps)> CreatePortsAsync() =>
        Task.FromResult<(ISpoolStore, IBodyStore, IWakeUpQueue)>((new InMemorySpoolStore(), new InMemoryBodyStore(), new RecordingWakeUpQueue(Time)));
}

public sealed class RecordingWakeUpQueueContractTests : WakeUpQueueContract
{
    protected override IWakeUpQueue CreateQueue() => new RecordingWakeUpQueue(Time);
}

public sealed class InMemoryFlushEpochContractTests : FlushEpochContract
{
    protected override Task<ISpoolStore> CreateStoreAsync() => Task.FromResult<ISpoolStore>(new InMemorySpoolStore());
}
