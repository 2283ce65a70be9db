using BackupMx.Core.Ports;
using BackupMx.Testing.Contracts;

namespace BackupMx.Local.Tests;

public sealed class SqliteSpoolStoreContractTests : SpoolStoreContract, IDisposable
{
    private readonly TempSpool _spool = new();

    protected override Task<ISpoolStore> CreateStoreAsync() => Task.FromResult<ISpoolStore>(_spool.OpenSpool());

    public void Dispose() => _spool.Dispose();
}

public sealed class FileBodyStoreContractTests : BodyStoreContract, IDisposable
{
    private readonly TempSpool _spool = new();

    protected override Task<IBodyStore> CreateStoreAsync() => Task.FromResult<IBodyStore>(_spool.OpenBodies());

    public void Dispose() => _spool.Dispose();
}

public sealed class SqlitePrimaryStatusStoreContractTests : PrimaryStatusStoreContract, IDisposable
{
    private readonly TempSpool _spool = new();

    protected override Task<IPrimaryStatusStore> CreateStoreAsync() => Task.FromResult<IPrimaryStatusStore>(new SqlitePrimaryStatusStore(_spool.OpenSpool()));

    public void Dispose() => _spool.Dispose();
}

/// <summary>A second store on the same spool folder stands for the queue command's process.</summary>
public sealed class SqlitePrimaryStatusStoreTests : IDisposable
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly TempSpool _spool = new();

    [Fact]
    public async Task SetAsync_IsSeenByAnotherStoreOnTheSameSpool()
    {
        var relay = new SqlitePrimaryStatusStore(_spool.OpenSpool());
        var down = new PrimaryStatus("example.test", PrimaryState.Down, SpoolRecords.T0, SpoolRecords.T0.AddSeconds(30), "connection refused", "127.0.0.1:2526");
        await relay.SetAsync(down, None);

        var queueCommand = new SqlitePrimaryStatusStore(_spool.OpenSpool());

        Assert.Equal(down, await queueCommand.GetAsync("EXAMPLE.test", None));
        Assert.Equal([down], await queueCommand.ListAsync(None));
    }

    [Fact]
    public async Task ForgetAllAsync_MakesEveryPrimaryUnknownForEveryone()
    {
        var previousRun = new SqlitePrimaryStatusStore(_spool.OpenSpool());
        await previousRun.SetAsync(new PrimaryStatus("example.test", PrimaryState.Up, SpoolRecords.T0, SpoolRecords.T0, null, "mx"), None);

        var restarted = new SqlitePrimaryStatusStore(_spool.OpenSpool());
        await restarted.ForgetAllAsync(None);

        Assert.Null(await restarted.GetAsync("example.test", None));
        Assert.Empty(await new SqlitePrimaryStatusStore(_spool.OpenSpool()).ListAsync(None));
    }

    public void Dispose() => _spool.Dispose();
}
