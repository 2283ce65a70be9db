using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using BackupMx.Core.Hosting;

namespace BackupMx.Local;

/// <summary>
/// The relay's claim on its spool folder: an exclusive advisory lock on <c>relay.lock</c>, held for
/// the life of the process and released by the operating system when the process ends, however it
/// ends. Start-up recovery assumes that no other relay uses the spool (it releases every lease and
/// deletes bodies without records), so a second relay must be refused before it, not after it
/// fails to bind its port. Operator commands read and flush without taking it.
/// </summary>
/// <remarks>
/// .NET takes the lock with flock(LOCK_EX) on Unix for <see cref="FileShare.None"/> (a sharing
/// lock on Windows). The holder writes its process id into the file; a refused relay reads it with
/// plain open/read, because a .NET read would ask for a shared lock and be refused too.
/// </remarks>
public sealed partial class SpoolLock : IDisposable
{
    public const string FileName = "relay.lock";

    private readonly FileStream _stream;

    private SpoolLock(FileStream stream) => _stream = stream;

    public string Path => _stream.Name;

    /// <exception cref="StartupException">Another process holds the lock, or the lock file cannot be opened.</exception>
    public static SpoolLock Acquire(string spoolFolder)
    {
        var folder = System.IO.Path.GetFullPath(spoolFolder);
        var path = System.IO.Path.Combine(folder, FileName);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
        }
        catch (IOException ex)
        {
            var holder = ReadHolder(path);
            throw new StartupException(
                holder is null
                    ? $"cannot lock the spool folder {folder} ({path}): {ex.Message}"
                    : $"the spool folder {folder} is in use by another relay, process {holder} (it holds {path}); stop it, or give this relay a spool folder of its own (BackupMx:Spool:Path)",
                ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new StartupException($"cannot lock the spool folder {folder} ({path}): {ex.Message}", ex);
        }

        try
        {
            stream.SetLength(0);
            stream.Write(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessId}\n")));
            stream.Flush();
        }
        catch
        {
            stream.Dispose();
            throw;
        }

        return new SpoolLock(stream);
    }

    public void Dispose() => _stream.Dispose();

    /// <summary>The process id the holder wrote, or null where it cannot be read (Windows, or a holder still starting).</summary>
    private static string? ReadHolder(string path)
    {
        if (!DirectorySync.IsSupported)
        {
            return null;
        }

        var fd = Open(path, 0);
        if (fd < 0)
        {
            return null;
        }

        try
        {
            var buffer = new byte[32];
            var read = Read(fd, buffer, buffer.Length);
            if (read <= 0)
            {
                return null;
            }

            var text = Encoding.ASCII.GetString(buffer, 0, (int)read).Trim();
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid.ToString(CultureInfo.InvariantCulture) : null;
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint Read(int fd, [Out] byte[] buffer, nint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
