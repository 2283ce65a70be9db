using System.Collections.Concurrent;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupMx.Local;

/// <summary>
/// Message bodies as files: <c>&lt;spool&gt;/bodies/&lt;shard&gt;/&lt;queue id&gt;</c>, where the shard is
/// two characters of the id's random part, so no folder grows past a few hundred entries even
/// with a large backlog. See <see cref="SqliteSpoolStore"/> for the durability scheme.
/// </summary>
public sealed partial class FileBodyStore : IBodyStore
{
    public const string FolderName = "bodies";

    private const string TempSuffix = ".tmp";
    private const int BufferSize = 64 * 1024;

    // The first ten characters of a queue id are its arrival time and would put a burst in one folder.
    private const int ShardStart = 10;
    private const int ShardLength = 2;

    private readonly ConcurrentDictionary<string, bool> _knownShards = new(StringComparer.Ordinal);
    private readonly ILogger _logger;

    /// <param name="spoolPath">The spool folder; bodies go in its <c>bodies</c> subfolder.</param>
    /// <remarks>Touches nothing on disk: <see cref="Open"/> does, at start-up.</remarks>
    public FileBodyStore(string spoolPath, ILogger<FileBodyStore>? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(spoolPath);
        _logger = logger ?? NullLogger<FileBodyStore>.Instance;
        Root = Path.Combine(Path.GetFullPath(spoolPath), FolderName);
    }

    /// <summary>
    /// Creates the <c>bodies</c> folder (and the spool folder above it) if missing, durably. Run at
    /// start-up (<see cref="LocalSpoolInitializer"/>, or an operator command); calling it again does nothing.
    /// </summary>
    /// <remarks>
    /// Temporary files are left alone here: another process (an operator command) opens the
    /// store too, and the relay may be writing one. The relay's start-up removes them.
    /// </remarks>
    public void Open()
    {
        if (!Directory.Exists(Root))
        {
            Directory.CreateDirectory(Root);
            DirectorySync.Fsync(Path.GetDirectoryName(Root)!);
        }
    }

    /// <summary>The <c>bodies</c> folder.</summary>
    public string Root { get; }

    public async Task<long> WriteAsync(string queueId, Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);

        // A new id (every intake) is written under its final name: no record can refer to it
        // before this returns, so a partial file is never read, and a crash leaves an orphan that
        // start-up removes. That saves the rename, which on ext4 costs a second journal commit:
        // the name is created in the same transaction as the file, so the file's fsync commits
        // it and the folder's fsync below finds nothing left to write. An id that already has a
        // body (a retried DSN) is replaced through a temporary file and a rename, so its record
        // never sees a half-written body.
        var folder = EnsureShard(queueId);
        var path = Path.Combine(folder, queueId);
        var stream = TryCreateNew(path);
        string? temp = null;
        if (stream is null)
        {
            (folder, temp, stream) = CreateTemporaryFile(queueId);
        }

        long length;
        try
        {
            await using (var file = stream)
            {
                await content.CopyToAsync(file, BufferSize, cancellationToken).ConfigureAwait(false);
                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                length = file.Position;
                file.Flush(flushToDisk: true);
            }

            if (temp is not null)
            {
                File.Move(temp, path, overwrite: true);
            }
        }
        catch
        {
            TryDelete(temp ?? path);
            throw;
        }

        // The name lives in the folder's entries; until those reach the disk a power cut can undo it.
        DirectorySync.Fsync(folder);
        return length;
    }

    /// <summary>Creates the body's file under its final name, or returns null when that name is taken.</summary>
    private static FileStream? TryCreateNew(string path)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = BufferSize,
            Options = FileOptions.Asynchronous,
        };

        try
        {
            return new FileStream(path, options);
        }
        catch (DirectoryNotFoundException)
        {
            // The shard was known but is gone (an operator cleaned up): the temporary-file path
            // below recreates it.
            return null;
        }
        catch (IOException) when (File.Exists(path))
        {
            return null;
        }
    }

    public Task<Stream> OpenReadAsync(string queueId, CancellationToken cancellationToken)
    {
        var path = PathOf(queueId);
        try
        {
            // FileShare.Delete: a finished message may be deleted while a slow reader still streams it.
            Stream stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, BufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan);
            return Task.FromResult(stream);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new BodyNotFoundException(queueId);
        }
    }

    public Task DeleteAsync(string queueId, CancellationToken cancellationToken)
    {
        // No directory fsync: a delete undone by a power cut leaves a body without a record,
        // which the start-up orphan scan removes.
        var path = PathOf(queueId);
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
        }

        return Task.CompletedTask;
    }

    /// <summary>Every stored body with its last write time (UTC), for the orphan scan.</summary>
    public IEnumerable<(string QueueId, DateTimeOffset WrittenAt)> EnumerateBodies()
    {
        foreach (var shard in Directory.EnumerateDirectories(Root))
        {
            foreach (var file in Directory.EnumerateFiles(shard))
            {
                var name = Path.GetFileName(file);
                if (!QueueId.IsValid(name))
                {
                    continue;
                }

                DateTime written;
                try
                {
                    written = File.GetLastWriteTimeUtc(file);
                }
                catch (IOException)
                {
                    continue;
                }

                yield return (name, new DateTimeOffset(written, TimeSpan.Zero));
            }
        }
    }

    internal string PathOf(string queueId)
    {
        if (!QueueId.IsValid(queueId))
        {
            // Ids become file names: anything else could name a path outside the spool.
            throw new ArgumentException($"'{queueId}' is not a valid queue id.", nameof(queueId));
        }

        return Path.Combine(Root, queueId.Substring(ShardStart, ShardLength), queueId);
    }

    /// <summary>Creates the file the body is written to before it is renamed to its real name.</summary>
    private (string Folder, string Temp, FileStream Stream) CreateTemporaryFile(string queueId)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = BufferSize,
            Options = FileOptions.Asynchronous,
        };

        // Write aside and rename, so a reader or a crash never sees a partial body under the real name.
        var folder = EnsureShard(queueId);
        var temp = Path.Combine(folder, $"{queueId}.{Guid.NewGuid():N}{TempSuffix}");
        try
        {
            return (folder, temp, new FileStream(temp, options));
        }
        catch (DirectoryNotFoundException)
        {
            // The shard was known but is gone (an operator cleaned up, the bodies folder was
            // restored): forget it and create it again, or every body for it would fail until restart.
            _knownShards.TryRemove(folder, out _);
            if (!Directory.Exists(Root))
            {
                Directory.CreateDirectory(Root);
                DirectorySync.Fsync(Path.GetDirectoryName(Root)!);
            }

            folder = EnsureShard(queueId);
            return (folder, temp, new FileStream(temp, options));
        }
    }

    /// <summary>
    /// Creates every shard folder a generated queue id can name, with one fsync of the
    /// <c>bodies</c> folder for all of them. Otherwise a new spool pays a folder creation and
    /// an fsync of its own on the first body of each of the 1,024 shards, on the accept path.
    /// </summary>
    /// <returns>The number of folders created.</returns>
    public int CreateShards()
    {
        var created = 0;
        foreach (var first in QueueId.Alphabet)
        {
            foreach (var second in QueueId.Alphabet)
            {
                var folder = Path.Combine(Root, string.Concat(first, second));
                if (_knownShards.ContainsKey(folder))
                {
                    continue;
                }

                if (!Directory.Exists(folder))
                {
                    Directory.CreateDirectory(folder);
                    created++;
                }
            }
        }

        if (created > 0)
        {
            // The new names must be durable before any body is written into them.
            DirectorySync.Fsync(Root);
        }

        foreach (var first in QueueId.Alphabet)
        {
            foreach (var second in QueueId.Alphabet)
            {
                _knownShards.TryAdd(Path.Combine(Root, string.Concat(first, second)), true);
            }
        }

        return created;
    }

    private string EnsureShard(string queueId)
    {
        var folder = Path.GetDirectoryName(PathOf(queueId))!;
        if (_knownShards.ContainsKey(folder))
        {
            return folder;
        }

        if (!Directory.Exists(folder))
        {
            Directory.CreateDirectory(folder);

            // A new folder's own name must be durable too, or a power cut loses every body in it.
            DirectorySync.Fsync(Root);
        }

        _knownShards.TryAdd(folder, true);
        return folder;
    }

    /// <summary>
    /// Deletes unfinished body files (a replacement cut short by a crash). Only safe while
    /// nothing writes to the spool, that is at the relay's start-up (<see cref="LocalSpoolInitializer"/>).
    /// </summary>
    /// <returns>The number of files deleted.</returns>
    public int RemoveTemporaryFiles()
    {
        var removed = 0;
        foreach (var shard in Directory.EnumerateDirectories(Root))
        {
            foreach (var temp in Directory.EnumerateFiles(shard, "*" + TempSuffix))
            {
                if (TryDelete(temp))
                {
                    removed++;
                }
            }
        }

        if (removed > 0)
        {
            LogTemporaryFilesRemoved(_logger, removed, Root);
        }

        return removed;
    }

    private bool TryDelete(string path)
    {
        try
        {
            File.Delete(path);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogDeleteFailed(_logger, ex, path);
            return false;
        }
    }

    [LoggerMessage(EventId = 4900, Level = LogLevel.Information, Message = "Removed {Count} unfinished body file(s) left by an earlier crash in {Folder}")]
    private static partial void LogTemporaryFilesRemoved(ILogger logger, int count, string folder);

    [LoggerMessage(EventId = 4901, Level = LogLevel.Warning, Message = "Could not delete {Path}")]
    private static partial void LogDeleteFailed(ILogger logger, Exception exception, string path);
}
