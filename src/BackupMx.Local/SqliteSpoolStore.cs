// Local spool: durable state for embedded mode.
//
// A message is a body file (FileBodyStore) plus one row in <spool>/spool.db. A new body
// is created under its final name and fsynced, then its folder is fsynced (a body that
// replaces an existing one goes through a temporary file and a rename), so the name and
// the bytes survive power loss. Only then is the
// row inserted; SQLite runs in WAL mode with synchronous=FULL, so a commit returns
// after the WAL is on disk. Intake answers 250 only after both (rule 1). A crash
// between the two leaves a body without a row: start-up removes those orphans (and
// temporary files), never the reverse. Every write goes through one writer thread
// that commits whatever is queued in one transaction (group commit: one fsync for
// many intakes); each row has a version, the ETag, checked by every update and
// delete. Leases left by a killed process are cleared at start-up (RecoverAsync).
using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupMx.Local;

/// <summary>
/// <see cref="ISpoolStore"/> on SQLite: one row per message, indexed columns for what is
/// queried (domain, next attempt) and the whole record as JSON. Owned by one process.
/// </summary>
public sealed partial class SqliteSpoolStore : ISpoolStore, IDisposable
{
    public const string FileName = "spool.db";

    /// <summary>Stored in <c>PRAGMA user_version</c>; a later schema migrates from the number it finds.</summary>
    internal const int SchemaVersion = 1;

    private const int PageSize = 256;
    private const int MaxBatch = 512;

    private const string Columns = "queue_id, version, data";

    private readonly string _readConnectionString;
    private readonly SqliteConnection _writer;
    private readonly BlockingCollection<WriteOperation> _queue = new();
    private readonly Thread _writerThread;
    private readonly ILogger _logger;

    private SqliteCommand? _insert;
    private SqliteCommand? _update;
    private SqliteCommand? _delete;

    // Versions are allocated from one counter for the whole spool rather than per row, so a
    // record deleted and created again under the same id (a retried DSN) can never match an
    // ETag held from its previous life. Only the writer thread touches it.
    private long _lastVersion;
    private int _disposed;

    /// <param name="spoolPath">The spool folder; the database is <c>spool.db</c> in it.</param>
    public SqliteSpoolStore(string spoolPath, ILogger<SqliteSpoolStore>? logger = null)
    {
        _logger = logger ?? NullLogger<SqliteSpoolStore>.Instance;
        var folder = Path.GetFullPath(spoolPath);
        Directory.CreateDirectory(folder);
        DatabasePath = Path.Combine(folder, FileName);

        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = DatabasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        };
        _readConnectionString = builder.ToString();

        // The writer keeps its own connection (and prepared statements) for the life of the store.
        builder.Pooling = false;
        _writer = new SqliteConnection(builder.ToString());
        try
        {
            _writer.Open();
            InitializeSchema();
        }
        catch
        {
            _writer.Dispose();
            throw;
        }

        // The database file and its WAL are new names in the folder: make them durable too.
        DirectorySync.Fsync(folder);

        _writerThread = new Thread(WriterLoop) { IsBackground = true, Name = "BackupMx spool writer" };
        _writerThread.Start();
    }

    public string DatabasePath { get; }

    public async Task CreateAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        var row = Row.From(record);
        var created = false;
        await WriteAsync(
            transaction =>
            {
                var version = ++_lastVersion;
                var command = _insert!;
                command.Transaction = transaction;
                row.Bind(command, version);
                if (command.ExecuteNonQuery() == 0)
                {
                    return null;
                }

                return () =>
                {
                    created = true;
                    record.ETag = FormatVersion(version);
                };
            },
            cancellationToken).ConfigureAwait(false);

        if (!created)
        {
            throw new SpoolConflictException(record.QueueId);
        }
    }

    public async Task<SpoolRecord?> GetAsync(string domain, string queueId, CancellationToken cancellationToken)
    {
        await using var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM spool WHERE queue_id = $id AND domain = $domain";
        command.Parameters.AddWithValue("$id", queueId);
        command.Parameters.AddWithValue("$domain", domain);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadRecord(reader) : null;
    }

    public async Task<bool> TryUpdateAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!TryParseVersion(record.ETag, out var expected))
        {
            return false;
        }

        var row = Row.From(record);
        var updated = false;
        await WriteAsync(
            transaction =>
            {
                var version = ++_lastVersion;
                var command = _update!;
                command.Transaction = transaction;
                row.Bind(command, version);
                command.Parameters["$expected"].Value = expected;
                if (command.ExecuteNonQuery() == 0)
                {
                    return null;
                }

                return () =>
                {
                    updated = true;
                    record.ETag = FormatVersion(version);
                };
            },
            cancellationToken).ConfigureAwait(false);
        return updated;
    }

    public async Task<bool> TryDeleteAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!TryParseVersion(record.ETag, out var expected))
        {
            return false;
        }

        var deleted = false;
        await WriteAsync(
            transaction =>
            {
                var command = _delete!;
                command.Transaction = transaction;
                command.Parameters["$id"].Value = record.QueueId;
                command.Parameters["$expected"].Value = expected;
                return command.ExecuteNonQuery() == 0 ? null : () => deleted = true;
            },
            cancellationToken).ConfigureAwait(false);
        return deleted;
    }

    public IAsyncEnumerable<SpoolRecord> ListDomainAsync(string domain, CancellationToken cancellationToken) =>
        PageAsync("domain = $domain AND queue_id > $afterId", "queue_id", c => c.Parameters.AddWithValue("$domain", domain), int.MaxValue, cancellationToken);

    public IAsyncEnumerable<SpoolRecord> ListAllAsync(CancellationToken cancellationToken) =>
        PageAsync("queue_id > $afterId", "queue_id", null, int.MaxValue, cancellationToken);

    public IAsyncEnumerable<SpoolRecord> ListDueAsync(DateTimeOffset dueBy, int max, CancellationToken cancellationToken)
    {
        var due = dueBy.UtcTicks;
        return PageAsync(
            "next_attempt_at <= $due AND (next_attempt_at > $afterTicks OR (next_attempt_at = $afterTicks AND queue_id > $afterId))",
            "next_attempt_at, queue_id",
            c => c.Parameters.AddWithValue("$due", due),
            max,
            cancellationToken);
    }

    /// <summary>
    /// Start-up recovery for a spool owned by one process: any lease still recorded belongs to
    /// a process that is gone (killed mid-delivery), so it is cleared and the message made due
    /// at once instead of waiting out the lease. Call before anything else uses the store.
    /// </summary>
    /// <returns>The number of records released.</returns>
    public async Task<int> RecoverAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var released = 0;
        await WriteAsync(
            transaction =>
            {
                var leased = new List<(SpoolRecord Record, long Version)>();
                using (var select = _writer.CreateCommand())
                {
                    select.Transaction = transaction;
                    select.CommandText = $"SELECT {Columns} FROM spool WHERE lease_owner IS NOT NULL OR lease_expires_at IS NOT NULL";
                    using var reader = select.ExecuteReader();
                    while (reader.Read())
                    {
                        leased.Add((ReadRecord(reader), reader.GetInt64(1)));
                    }
                }

                foreach (var (record, version) in leased)
                {
                    record.LeaseOwner = null;
                    record.LeaseExpiresAt = null;
                    if (record.NextAttemptAt > now)
                    {
                        record.NextAttemptAt = now;
                    }

                    var command = _update!;
                    command.Transaction = transaction;
                    Row.From(record).Bind(command, ++_lastVersion);
                    command.Parameters["$expected"].Value = version;
                    command.ExecuteNonQuery();
                }

                var count = leased.Count;
                return () => released = count;
            },
            cancellationToken).ConfigureAwait(false);

        if (released > 0)
        {
            LogLeasesReleased(_logger, released);
        }

        return released;
    }

    /// <summary>Every queue id in the spool (cheaper than <see cref="ListAllAsync"/>: no JSON).</summary>
    public async Task<HashSet<string>> GetQueueIdsAsync(CancellationToken cancellationToken)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        await using var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT queue_id FROM spool";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            ids.Add(reader.GetString(0));
        }

        return ids;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Operations already queued are committed before the writer stops.
        _queue.CompleteAdding();
        _writerThread.Join();
        _insert?.Dispose();
        _update?.Dispose();
        _delete?.Dispose();
        _writer.Dispose();
        _queue.Dispose();

        // Pooled readers keep the file open; release them so the folder can be removed or reopened.
        using (var connection = new SqliteConnection(_readConnectionString))
        {
            SqliteConnection.ClearPool(connection);
        }
    }

    private void InitializeSchema()
    {
        // journal_mode is stored in the file; synchronous and busy_timeout are per connection.
        Execute("PRAGMA journal_mode = WAL");
        Execute("PRAGMA synchronous = FULL");
        Execute("PRAGMA busy_timeout = 5000");

        var version = Convert.ToInt32(Scalar("PRAGMA user_version"), CultureInfo.InvariantCulture);
        if (version > SchemaVersion)
        {
            throw new InvalidOperationException(
                $"The spool database '{DatabasePath}' has schema version {version}, newer than this build understands ({SchemaVersion}).");
        }

        if (version == 0)
        {
            using var transaction = _writer.BeginTransaction();
            Execute(
                """
                CREATE TABLE IF NOT EXISTS spool (
                    queue_id TEXT NOT NULL PRIMARY KEY,
                    domain TEXT NOT NULL COLLATE NOCASE,
                    next_attempt_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    lease_owner TEXT NULL,
                    lease_expires_at INTEGER NULL,
                    version INTEGER NOT NULL,
                    data TEXT NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS spool_due ON spool (next_attempt_at, queue_id);
                CREATE INDEX IF NOT EXISTS spool_domain ON spool (domain, queue_id);
                """,
                transaction);
            Execute($"PRAGMA user_version = {SchemaVersion}", transaction);
            transaction.Commit();
            LogSchemaCreated(_logger, DatabasePath, SchemaVersion);
        }

        _lastVersion = Convert.ToInt64(Scalar("SELECT coalesce(max(version), 0) FROM spool"), CultureInfo.InvariantCulture);

        _insert = Prepare(
            """
            INSERT INTO spool (queue_id, domain, next_attempt_at, expires_at, lease_owner, lease_expires_at, version, data)
            VALUES ($id, $domain, $next, $expires, $leaseOwner, $leaseExpires, $version, $data)
            ON CONFLICT (queue_id) DO NOTHING
            """);
        _update = Prepare(
            """
            UPDATE spool SET domain = $domain, next_attempt_at = $next, expires_at = $expires, lease_owner = $leaseOwner,
                lease_expires_at = $leaseExpires, version = $version, data = $data
            WHERE queue_id = $id AND version = $expected
            """);
        _update.Parameters.Add("$expected", SqliteType.Integer);
        _delete = _writer.CreateCommand();
        _delete.CommandText = "DELETE FROM spool WHERE queue_id = $id AND version = $expected";
        _delete.Parameters.Add("$id", SqliteType.Text);
        _delete.Parameters.Add("$expected", SqliteType.Integer);
    }

    private SqliteCommand Prepare(string sql)
    {
        var command = _writer.CreateCommand();
        command.CommandText = sql;
        command.Parameters.Add("$id", SqliteType.Text);
        command.Parameters.Add("$domain", SqliteType.Text);
        command.Parameters.Add("$next", SqliteType.Integer);
        command.Parameters.Add("$expires", SqliteType.Integer);
        command.Parameters.Add("$leaseOwner", SqliteType.Text);
        command.Parameters.Add("$leaseExpires", SqliteType.Integer);
        command.Parameters.Add("$version", SqliteType.Integer);
        command.Parameters.Add("$data", SqliteType.Text);
        return command;
    }

    private void Execute(string sql, SqliteTransaction? transaction = null)
    {
        using var command = _writer.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private object? Scalar(string sql)
    {
        using var command = _writer.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private async Task<SqliteConnection> OpenReaderAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var connection = new SqliteConnection(_readConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Up to <paramref name="max"/> rows matching <paramref name="filter"/> in <paramref name="order"/>,
    /// a page per short-lived connection: a caller that is slow to consume (the pump waits for
    /// delivery slots) must not hold a read snapshot open, which would stop WAL checkpoints. The
    /// filter continues after the previous page's last row, given as <c>$afterTicks</c> (its
    /// next_attempt_at) and <c>$afterId</c> (its queue id); <paramref name="bind"/> adds its own parameters.
    /// </summary>
    private async IAsyncEnumerable<SpoolRecord> PageAsync(string filter, string order, Action<SqliteCommand>? bind, int max, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var afterTicks = long.MinValue;
        var afterId = string.Empty;
        var remaining = max;
        while (remaining > 0)
        {
            var limit = Math.Min(remaining, PageSize);
            var page = new List<(SpoolRecord Record, long Ticks)>(limit);
            await using (var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false))
            await using (var command = connection.CreateCommand())
            {
                command.CommandText = $"SELECT {Columns}, next_attempt_at FROM spool WHERE {filter} ORDER BY {order} LIMIT $limit";
                command.Parameters.AddWithValue("$afterTicks", afterTicks);
                command.Parameters.AddWithValue("$afterId", afterId);
                command.Parameters.AddWithValue("$limit", limit);
                bind?.Invoke(command);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    page.Add((ReadRecord(reader), reader.GetInt64(3)));
                }
            }

            foreach (var (record, _) in page)
            {
                yield return record;
            }

            if (page.Count < limit)
            {
                yield break;
            }

            remaining -= page.Count;
            (afterTicks, afterId) = (page[^1].Ticks, page[^1].Record.QueueId);
        }
    }

    private static SpoolRecord ReadRecord(SqliteDataReader reader)
    {
        var record = JsonSerializer.Deserialize(reader.GetString(2), SpoolJson.Record)
            ?? throw new InvalidDataException($"Spool row '{reader.GetString(0)}' holds no record.");
        record.ETag = FormatVersion(reader.GetInt64(1));
        return record;
    }

    private static string FormatVersion(long version) => version.ToString(CultureInfo.InvariantCulture);

    private static bool TryParseVersion(string? etag, out long version) =>
        long.TryParse(etag, NumberStyles.None, CultureInfo.InvariantCulture, out version);

    private Task WriteAsync(Func<SqliteTransaction, Action?> execute, CancellationToken cancellationToken)
    {
        // Cancellation is honoured only before the write is queued: once queued it may commit,
        // and reporting a committed write as cancelled could make intake answer 451 for mail it kept.
        cancellationToken.ThrowIfCancellationRequested();
        var operation = new WriteOperation(execute);
        try
        {
            _queue.Add(operation, CancellationToken.None);
        }
        catch (InvalidOperationException)
        {
            throw new ObjectDisposedException(nameof(SqliteSpoolStore));
        }

        return operation.Done.Task;
    }

    private void WriterLoop()
    {
        var batch = new List<WriteOperation>(MaxBatch);
        foreach (var first in _queue.GetConsumingEnumerable())
        {
            batch.Clear();
            batch.Add(first);
            while (batch.Count < MaxBatch && _queue.TryTake(out var next))
            {
                batch.Add(next);
            }

            try
            {
                Commit(batch);
            }
            catch (Exception ex) when (batch.Count > 1)
            {
                // One bad operation must not fail the others: replay them one per transaction.
                LogBatchFailed(_logger, ex, batch.Count);
                foreach (var operation in batch)
                {
                    try
                    {
                        Commit([operation]);
                    }
                    catch (Exception single)
                    {
                        operation.Done.TrySetException(single);
                    }
                }
            }
            catch (Exception ex)
            {
                first.Done.TrySetException(ex);
            }
        }
    }

    private void Commit(List<WriteOperation> batch)
    {
        var committed = new Action?[batch.Count];
        using (var transaction = _writer.BeginTransaction(deferred: false))
        {
            for (var i = 0; i < batch.Count; i++)
            {
                committed[i] = batch[i].Execute(transaction);
            }

            // synchronous=FULL: this returns once the WAL is fsynced.
            transaction.Commit();
        }

        for (var i = 0; i < batch.Count; i++)
        {
            committed[i]?.Invoke();
            batch[i].Done.TrySetResult();
        }
    }

    private sealed class WriteOperation(Func<SqliteTransaction, Action?> execute)
    {
        /// <summary>Runs inside the batch's transaction; returns what to apply once it commits.</summary>
        public Func<SqliteTransaction, Action?> Execute { get; } = execute;

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>A record's column values, taken on the caller's thread so the writer never serializes.</summary>
    private sealed record Row(string QueueId, string Domain, long NextAttemptAt, long ExpiresAt, string? LeaseOwner, long? LeaseExpiresAt, string Data)
    {
        public static Row From(SpoolRecord record)
        {
            if (!Core.Model.QueueId.IsValid(record.QueueId))
            {
                throw new ArgumentException($"'{record.QueueId}' is not a valid queue id.", nameof(record));
            }

            return new Row(
                record.QueueId,
                record.Domain,
                record.NextAttemptAt.UtcTicks,
                record.ExpiresAt.UtcTicks,
                record.LeaseOwner,
                record.LeaseExpiresAt?.UtcTicks,
                JsonSerializer.Serialize(record, SpoolJson.Record));
        }

        public void Bind(SqliteCommand command, long version)
        {
            var parameters = command.Parameters;
            parameters["$id"].Value = QueueId;
            parameters["$domain"].Value = Domain;
            parameters["$next"].Value = NextAttemptAt;
            parameters["$expires"].Value = ExpiresAt;
            parameters["$leaseOwner"].Value = (object?)LeaseOwner ?? DBNull.Value;
            parameters["$leaseExpires"].Value = (object?)LeaseExpiresAt ?? DBNull.Value;
            parameters["$version"].Value = version;
            parameters["$data"].Value = Data;
        }
    }

    [LoggerMessage(EventId = 910, Level = LogLevel.Information, Message = "Created the spool database {Path} (schema {SchemaVersion})")]
    private static partial void LogSchemaCreated(ILogger logger, string path, int schemaVersion);

    [LoggerMessage(EventId = 911, Level = LogLevel.Warning, Message = "Released {Count} message(s) still leased by a process that is gone; they are due now")]
    private static partial void LogLeasesReleased(ILogger logger, int count);

    [LoggerMessage(EventId = 912, Level = LogLevel.Error, Message = "A batch of {Count} spool writes failed; retrying them one by one")]
    private static partial void LogBatchFailed(ILogger logger, Exception exception, int count);
}
