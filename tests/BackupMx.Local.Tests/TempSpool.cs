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
        return store;
    }

    public FileBodyStore OpenBodies() => new(Path);

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
