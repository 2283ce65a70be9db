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
