namespace BackupMx.Local.Tests;

/// <summary>A fresh spool folder per test, with the stores opened on it; removed on dispose.</summary>
public sealed class TempSpool : IDisposable
{
    private readonly List<IDisposable> _open = [];

    public TempSpool()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "backupmx-local-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public SqliteSpoolStore OpenSpool()
    {
        var store = new SqliteSpoolStore(Path);
        _open.Add(store);
        store.Open();
        return store;
    }

    public FileBodyStore OpenBodies()
    {
        var store = new FileBodyStore(Path);
        store.Open();
        return store;
    }

    /// <summary>A status store on <paramref name="spool"/>, its table created as the relay's start-up does.</summary>
    public static SqlitePrimaryStatusStore OpenStatuses(SqliteSpoolStore spool)
    {
        var store = new SqlitePrimaryStatusStore(spool);
        store.InitializeAsync(CancellationToken.None).GetAwaiter().GetResult();
        return store;
    }

    public void Dispose()
    {
        foreach (var store in _open)
        {
            store.Dispose();
        }

        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
