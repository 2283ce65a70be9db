namespace BackupMx.Core.Intake;

/// <summary>Tells "the disk is full" apart from other storage failures, so the client can be told 452 4.3.1.</summary>
public static class StorageErrors
{
    // .NET on Unix puts the raw errno in IOException.HResult; on Windows it is an HRESULT wrapping the Win32 code.
    private const int UnixEnospc = 28;
    private const int UnixEdquot = 122;
    private const int WindowsDiskFull = unchecked((int)0x80070070);
    private const int WindowsHandleDiskFull = unchecked((int)0x80070027);

    public static bool IsOutOfSpace(Exception exception)
    {
        for (var ex = exception; ex is not null; ex = ex.InnerException)
        {
            if (ex is StorageFullException or IOException { HResult: UnixEnospc or UnixEdquot or WindowsDiskFull or WindowsHandleDiskFull })
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>
/// A store that learns of a full disk other than through an errno (SQLite's SQLITE_FULL) reports
/// it as this, so intake can answer 452 4.3.1 without knowing the store.
/// </summary>
public sealed class StorageFullException : IOException
{
    public StorageFullException()
    {
    }

    public StorageFullException(string message)
        : base(message)
    {
    }

    public StorageFullException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
