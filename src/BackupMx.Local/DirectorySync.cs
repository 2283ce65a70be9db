using System.ComponentModel;
using System.Runtime.InteropServices;

namespace BackupMx.Local;

/// <summary>
/// fsync of a directory, which is what makes a rename or a new file name survive power loss
/// on POSIX file systems. .NET has no API for it (a directory cannot be opened as a FileStream),
/// so libc is called directly. Elsewhere (Windows) it is a no-op: NTFS journals metadata itself.
/// </summary>
internal static partial class DirectorySync
{
    private const int ORdOnly = 0;
    private const int EINTR = 4;
    private const int EINVAL = 22;

    public static bool IsSupported { get; } = OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD();

    /// <exception cref="IOException">The directory could not be opened or flushed.</exception>
    public static void Fsync(string directory)
    {
        if (!IsSupported)
        {
            return;
        }

        int fd;
        do
        {
            fd = Open(directory, ORdOnly);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);

        if (fd < 0)
        {
            throw Failure("open", directory);
        }

        try
        {
            if (Sync(fd) != 0)
            {
                // Some file systems cannot fsync a directory at all (EINVAL); there is nothing more to do there.
                if (Marshal.GetLastPInvokeError() != EINVAL)
                {
                    throw Failure("fsync", directory);
                }
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    private static IOException Failure(string call, string directory) => Failure(call, directory, Marshal.GetLastPInvokeError());

    /// <summary>
    /// The errno goes in <see cref="Exception.HResult"/>, as .NET itself does for file errors on
    /// Unix, so that a full disk (ENOSPC, EDQUOT) is told apart from other failures.
    /// </summary>
    internal static IOException Failure(string call, string directory, int errno) =>
        new($"{call} of directory '{directory}' failed: {new Win32Exception(errno).Message} (errno {errno})", errno);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Sync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
