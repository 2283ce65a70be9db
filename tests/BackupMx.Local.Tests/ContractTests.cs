using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Data.Sqlite;
using BackupMx.Testing;
using BackupMx.Testing.Contracts;

namespace BackupMx.Local.Tests;

public sealed class SqliteSpoolStoreContractTests : SpoolStoreContract, IDisposable
{
    private readonly TempSpool _spool = new();

    protected override Task<ISpoolStore> CreateStoreAsync() => Task.FromResult<ISpoolStore>(_spool.OpenSpool());

    protected override async Task CorruptAsync(ISpoolStore store, SpoolRecord record)
    {
        // Through a connection of its own, as a hand edit or a damaged page would.
        await using var connection = new SqliteConnection($"Data Source={((SqliteSpoolStore)store).DatabasePath};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "UPDATE spool SET data = '{\"queueId\": 12, \"recipients\": ' WHERE queue_id = $id";
        command.Parameters.AddWithValue("$id", record.QueueId);
        Assert.Equal(1, await command.ExecuteNonQueryAsync());
    }

    public void Dispose() => _spool.Dispose();
}

public sealed class FileBodyStoreContractTests : BodyStoreContract, IDisposable
{
    private readonly TempSpool _spool = new();

    protected override Task<IBodyStore> CreateStoreAsync() => Task.FromResult<IBodyStore>(_spool.OpenBodies());

    public void Dispose() => _spool.Dispose();
}

public sealed class LocalBodyStoreContractTests : BodyStoreContract, IDisposable
{
    private readonly TempSpool _spool = new();

    protected override Task<IBodyStore> CreateStoreAsync() => Task.FromResult<IBodyStore>(new LocalBodyStore(_spool.OpenBodies(), _spool.OpenSpool()));

    public void Dispose() => _spool.Dispose();
}

public sealed class SqlitePrimaryStatusStoreContractTests : PrimaryStatusStoreContract, IDisposable
{
    private readonly TempSpool _spool = new();

    protected override Task<IPrimaryStatusStore> CreateStoreAsync() => Task.FromResult<IPrimaryStatusStore>(TempSpool.OpenStatuses(_spool.OpenSpool()));

    public void Dispose() => _spool.Dispose();
}

/// <summary>A second store on the same spool folder stands for the queue command's process.</summary>
public sealed class SqlitePrimaryStatusStoreTests : IDisposable
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly TempSpool _spool = new();

    [Fact]
    public async Task TrySetAsync_IsSeenByAnotherStoreOnTheSameSpool()
    {
        var relay = TempSpool.OpenStatuses(_spool.OpenSpool());
        var down = new PrimaryStatus("example.test", PrimaryState.Down, SpoolRecords.T0, SpoolRecords.T0.AddSeconds(30), "connection refused", "127.0.0.1:2526");
        Assert.True(await relay.TrySetAsync(down, null, None));

        var queueCommand = TempSpool.OpenStatuses(_spool.OpenSpool());

        Assert.Equal(down, (await queueCommand.GetAsync("EXAMPLE.test", None))?.Status);
        Assert.Equal([down], await queueCommand.ListAsync(None));
    }

    [Fact]
    public async Task TrySetAsync_RowOnlyInTheTable_CountsAsStored()
    {
        var previousRun = TempSpool.OpenStatuses(_spool.OpenSpool());
        var down = new PrimaryStatus("example.test", PrimaryState.Down, SpoolRecords.T0, SpoolRecords.T0, "connection refused", null);
        Assert.True(await previousRun.TrySetAsync(down, null, None));
        var up = down with { State = PrimaryState.Up, LastError = null };

        // A store that was not reset at start-up knows the row only from the table.
        var store = TempSpool.OpenStatuses(_spool.OpenSpool());
        Assert.False(await store.TrySetAsync(up, null, None));
        Assert.True(await store.TrySetAsync(up, (await store.GetAsync("example.test", None))!.Version, None));

        Assert.Equal([up], await TempSpool.OpenStatuses(_spool.OpenSpool()).ListAsync(None));
    }

    [Fact]
    public async Task ForgetAllAsync_MakesEveryPrimaryUnknownForEveryone()
    {
        var previousRun = TempSpool.OpenStatuses(_spool.OpenSpool());
        await previousRun.OverwriteAsync(new PrimaryStatus("example.test", PrimaryState.Up, SpoolRecords.T0, SpoolRecords.T0, null, "mx"), None);

        var restarted = TempSpool.OpenStatuses(_spool.OpenSpool());
        await restarted.ForgetAllAsync(None);

        Assert.Null(await restarted.GetAsync("example.test", None));
        Assert.Empty(await TempSpool.OpenStatuses(_spool.OpenSpool()).ListAsync(None));
    }

    public void Dispose() => _spool.Dispose();
}

/// <summary>The ledger over the embedded adapters: SQLite records, bodies in the database or files, the in-process wake-ups.</summary>
public sealed class SqliteSpoolLedgerContractTests : SpoolLedgerContract, IDisposable
{
    private readonly TempSpool _spool = new();

    protected override Task<(ISpoolStore Spool, IBodyStore Bodies, IWakeUpQueue WakeUps)> CreatePortsAsync()
    {
        var spool = _spool.OpenSpool();
        return Task.FromResult<(ISpoolStore, IBodyStore, IWakeUpQueue)>((spool, new LocalBodyStore(_spool.OpenBodies(), spool), new BackupMx.Core.Forwarding.InProcessWakeUpQueue(new BackupMx.Core.Forwarding.WakeUpSignal())));
    }

    protected override bool BodyOutlivesItsRecord => false;

    public void Dispose() => _spool.Dispose();
}

/// <summary>Flush epochs in the SQLite spool (embedded mode's one-write flush).</summary>
public sealed class SqliteFlushEpochContractTests : FlushEpochContract, IDisposable
{
    private readonly TempSpool _spool = new();

    protected override Task<ISpoolStore> CreateStoreAsync() => Task.FromResult<ISpoolStore>(_spool.OpenSpool());

    public void Dispose() => _spool.Dispose();
}
