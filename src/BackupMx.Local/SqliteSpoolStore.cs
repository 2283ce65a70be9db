// Local spool: durable state for embedded mode.
//
// A message is one row in <spool>/spool.db plus its body. A body of up to 64 KiB (nearly
// all mail) is a row of the body table, inserted in the same transaction as its record,
// so intake costs no file, no folder sync and no fsync of its own: the group commit
// below makes many messages durable with one sync of the WAL. A larger body is a file
// (FileBodyStore): created under its final name and fsynced, then its folder is fsynced
// (a body that replaces an existing one goes through a temporary file and a rename), so
// the name and the bytes survive power loss; only then is the row inserted. SQLite runs
// in WAL mode with synchronous=FULL, so a commit returns after the WAL is on disk.
// Intake answers 250 only after the commit (rule 1). A crash between a body file and its
// row leaves a body without a row: start-up removes those orphans (and temporary
// files), never the reverse. A body row is deleted with its record (and kept when the
// record is quarantined). Every write goes through one writer thread
// that commits whatever is queued in one transaction (group commit: one fsync for
// many intakes); each row has a version, the ETag, checked by every update and
// delete. Versions come from a counter row in the database, read and advanced inside
// each write transaction, so they stay unique when a second process (the flush
// command) writes too. Leases left by a killed process are cleared at start-up
// (RecoverAsync). A row whose JSON cannot be read is moved to the quarantine table
// by the read that meets it, so it never stops the rows around it. A domain's flush is one
// row in flush_epoch: every read joins it and presents the records it makes due as due
// (SpoolLedger.ApplyFlushEpoch), and the due listing finds them through the flush_after
// index, so a flush of 100,000 messages costs one write and the pump starts at once.
using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using BackupMx.Core.Inspection;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Core.Spool;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupMx.Local;

/// <summary>
/// <see cref="ISpoolStore"/> on SQLite: one row per message, indexed columns for what is
/// queried (domain, next attempt) and the whole record as JSON. Owned by one relay process;
/// operator commands may write from a second one.
/// </summary>
public sealed partial class SqliteSpoolStore : ISpoolStore, IFlushEpochStore, ISpoolTally, IInlineBodySpoolStore, IDisposable
{
    public const string FileName = "spool.db";

    /// <summary>
    /// Bodies up to this size are stored in the database with their record. The receiver holds
    /// this much of a message in memory anyway; SQLite keeps blobs of this size as compactly as files.
    /// </summary>
    public const int InlineBodyLimit = 64 * 1024;

    /// <summary>Stored in <c>PRAGMA user_version</c>; a later schema migrates from the number it finds.</summary>
    internal const int SchemaVersion = 3;

    /// <summary>How long a connection waits for another one's write lock (the flush command's, the status table's).</summary>
    internal const int BusyTimeoutMilliseconds = 5000;

    /// <summary>SQLITE_FULL: the database or the disk it is on cannot grow.</summary>
    private const int SqliteFull = 13;

    private const int PageSize = 256;
    private const int MaxBatch = 512;

    private const string Columns = "spool.queue_id, spool.version, spool.data";

    // Every read of records joins their domain's flush epoch (StoredRow.Read applies it).
    private const string SpoolWithEpochs = "spool LEFT JOIN flush_epoch ON flush_epoch.domain = spool.domain";

    // The records a flush epoch makes due: each domain's from the spool_flush index.
    private const string FlushedOnly = "flush_epoch CROSS JOIN spool ON spool.domain = flush_epoch.domain AND spool.flush_after < flush_epoch.epoch";

    /// <summary>Created beside the database, and removed, after a flush epoch is committed: a relay in another process watches for it.</summary>
    public const string FlushAnnouncementPattern = "*.flushed";

    // Starts the name of every announcement this store makes, so it can tell its own apart.
    private readonly string _announcementPrefix = Guid.NewGuid().ToString("N") + ".";

    private readonly string _readConnectionString;
    private readonly SqliteConnection _writer;
    private readonly BlockingCollection<WriteOperation> _queue = new();
    private readonly Thread _writerThread;
    private readonly ILogger _logger;
    private readonly string _folder;
    private readonly Lock _openGate = new();

    private SqliteCommand? _insert;
    private SqliteCommand? _update;
    private SqliteCommand? _delete;
    private SqliteCommand? _readCounter;
    private SqliteCommand? _writeCounter;
    private SqliteCommand? _quarantine;
    private SqliteCommand? _unspool;
    private SqliteCommand? _setEpoch;
    private SqliteCommand? _insertBody;
    private SqliteCommand? _deleteBody;

    // Versions are allocated from one counter for the whole spool rather than per row, so a
    // record deleted and created again under the same id (a retried DSN) can never match an
    // ETag held from its previous life. The counter lives in the database (spool_version) and is
    // loaded at the start of every write transaction, which holds the write lock, so another
    // process writing meanwhile cannot hand out the same number. Only the writer thread touches it.
    private long _lastVersion;
    private int _disposed;
    private bool _opened;

    /// <param name="spoolPath">The spool folder; the database is <c>spool.db</c> in it.</param>
    /// <remarks>Touches nothing on disk: <see cref="Open"/> does, at start-up.</remarks>
    public SqliteSpoolStore(string spoolPath, ILogger<SqliteSpoolStore>? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(spoolPath);
        _logger = logger ?? NullLogger<SqliteSpoolStore>.Instance;
        _folder = Path.GetFullPath(spoolPath);
        DatabasePath = Path.Combine(_folder, FileName);

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
        _writerThread = new Thread(WriterLoop) { IsBackground = true, Name = "BackupMx spool writer" };
    }

    public string DatabasePath { get; }

    /// <summary>Whether <see cref="Open"/> has completed; every other member needs it.</summary>
    public bool IsOpen => Volatile.Read(ref _opened);

    /// <summary>
    /// Creates the folder and the database if they are missing, migrates the schema, and starts
    /// the writer thread. Run once at start-up (<see cref="LocalSpoolInitializer"/>, or an operator
    /// command once it has checked that the spool exists); calling it again does nothing.
    /// </summary>
    /// <exception cref="InvalidOperationException">The database has a newer schema than this build understands.</exception>
    public void Open()
    {
        lock (_openGate)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            if (_opened)
            {
                return;
            }

            Directory.CreateDirectory(_folder);
            try
            {
                _writer.Open();
                InitializeSchema();
            }
            catch
            {
                _writer.Close();
                throw;
            }

            // The database file and its WAL are new names in the folder: make them durable too.
            DirectorySync.Fsync(_folder);

            _writerThread.Start();
            Volatile.Write(ref _opened, true);
        }
    }

    public int MaxInlineBodyBytes => InlineBodyLimit;

    public Task<SpoolRecord> CreateAsync(SpoolRecord record, CancellationToken cancellationToken) =>
        CreateAsync(record, null, cancellationToken);

    public Task<SpoolRecord> CreateWithBodyAsync(SpoolRecord record, byte[] body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (body.Length > InlineBodyLimit)
        {
            throw new ArgumentException($"A body of {body.Length} bytes is over the {InlineBodyLimit} bytes kept in the spool database.", nameof(body));
        }

        return CreateAsync(record, body, cancellationToken);
    }

    /// <summary>
    /// The body stored with the record <paramref name="queueId"/>
    /// (<see cref="CreateWithBodyAsync"/>), or null when it has none.
    /// </summary>
    public async Task<byte[]?> ReadBodyAsync(string queueId, CancellationToken cancellationToken)
    {
        await using var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT data FROM body WHERE queue_id = $id";
        command.Parameters.AddWithValue("$id", queueId);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as byte[];
    }

    private async Task<SpoolRecord> CreateAsync(SpoolRecord record, byte[]? body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        var row = Row.From(record);
        string? etag = null;
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

                if (body is not null)
                {
                    _insertBody!.Transaction = transaction;
                    _insertBody.Parameters["$id"].Value = row.QueueId;
                    _insertBody.Parameters["$data"].Value = body;
                    _insertBody.ExecuteNonQuery();
                }

                return () => etag = FormatVersion(version);
            },
            cancellationToken).ConfigureAwait(false);

        return etag is null ? throw new SpoolConflictException(record.QueueId) : record with { ETag = etag };
    }

    public async Task<SpoolRecord?> GetAsync(string domain, string queueId, CancellationToken cancellationToken)
    {
        StoredRow row;
        await using (var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false))
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = $"SELECT {Columns}, spool.next_attempt_at, flush_epoch.epoch FROM {SpoolWithEpochs} WHERE spool.queue_id = $id AND spool.domain = $domain";
            command.Parameters.AddWithValue("$id", queueId);
            command.Parameters.AddWithValue("$domain", domain);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            row = StoredRow.Read(reader);
        }

        if (row.Record is null)
        {
            await QuarantineAsync(row, cancellationToken).ConfigureAwait(false);
        }

        return row.Record;
    }

    public async IAsyncEnumerable<QuarantinedRecord> ListQuarantinedAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var result = new List<QuarantinedRecord>();
        await using (var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false))
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = "SELECT domain, queue_id, reason FROM quarantine ORDER BY queue_id";
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                result.Add(new QuarantinedRecord(reader.GetString(0), reader.GetString(1), reader.GetString(2)));
            }
        }

        foreach (var record in result)
        {
            yield return record;
        }
    }

    public async Task<SpoolRecord?> TryUpdateAsync(SpoolRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!TryParseVersion(record.ETag, out var expected))
        {
            return null;
        }

        var row = Row.From(record);
        string? etag = null;
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

                return () => etag = FormatVersion(version);
            },
            cancellationToken).ConfigureAwait(false);
        return etag is null ? null : record with { ETag = etag };
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
                if (command.ExecuteNonQuery() == 0)
                {
                    return null;
                }

                _deleteBody!.Transaction = transaction;
                _deleteBody.Parameters["$id"].Value = record.QueueId;
                _deleteBody.ExecuteNonQuery();
                return () => deleted = true;
            },
            cancellationToken).ConfigureAwait(false);
        return deleted;
    }

    public IAsyncEnumerable<SpoolRecord> ListDomainAsync(string domain, CancellationToken cancellationToken) =>
        PageAsync(SpoolWithEpochs, "spool.domain = $domain AND spool.queue_id > $afterId", "spool.queue_id", c => c.Parameters.AddWithValue("$domain", domain), int.MaxValue, cancellationToken);

    public IAsyncEnumerable<SpoolRecord> ListAllAsync(CancellationToken cancellationToken) =>
        PageAsync(SpoolWithEpochs, "spool.queue_id > $afterId", "spool.queue_id", null, int.MaxValue, cancellationToken);

    /// <summary>
    /// The records a flush made due first (they are due at their epoch, which has passed), then the
    /// others by next attempt. Both come from an index: flush_after per domain, then next_attempt_at.
    /// A record being delivered has no flush_after; in the second part the lease is checked on the
    /// rows the index finds, and only those whose lease still runs are passed by.
    /// </summary>
    public async IAsyncEnumerable<SpoolRecord> ListDueAsync(DateTimeOffset dueBy, int max, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var due = dueBy.UtcTicks;
        void Bind(SqliteCommand c) => c.Parameters.AddWithValue("$due", due);
        var listed = 0;

        // One domain at a time, so that each query is a range of the spool_flush index (domain = ?,
        // flush_after < epoch) in index order, whatever statistics the planner has.
        var flushed = new List<string>();
        await using (var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false))
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = "SELECT domain FROM flush_epoch WHERE epoch <= $due ORDER BY domain";
            Bind(command);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                flushed.Add(reader.GetString(0));
            }
        }

        foreach (var domain in flushed)
        {
            await foreach (var record in PageAsync(
                FlushedOnly,
                "flush_epoch.domain = $flushed AND (spool.flush_after > $afterTicks OR (spool.flush_after = $afterTicks AND spool.queue_id > $afterId))",
                "spool.flush_after, spool.queue_id",
                c => c.Parameters.AddWithValue("$flushed", domain),
                max - listed,
                cancellationToken,
                key: "spool.flush_after").ConfigureAwait(false))
            {
                listed++;
                yield return record;
            }

            if (listed >= max)
            {
                yield break;
            }
        }

        // Those the first part listed are left out here, so no record is listed twice.
        await foreach (var record in PageAsync(
            SpoolWithEpochs,
            "spool.next_attempt_at <= $due AND (spool.lease_expires_at IS NULL OR spool.lease_expires_at <= $due)"
                + " AND (spool.next_attempt_at > $afterTicks OR (spool.next_attempt_at = $afterTicks AND spool.queue_id > $afterId))"
                + " AND NOT coalesce(flush_epoch.epoch <= $due AND spool.flush_after < flush_epoch.epoch, 0)",
            "spool.next_attempt_at, spool.queue_id",
            Bind,
            max - listed,
            cancellationToken).ConfigureAwait(false))
        {
            yield return record;
        }
    }

    public async Task SetFlushEpochAsync(string domain, DateTimeOffset epoch, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(domain);
        await WriteAsync(
            transaction =>
            {
                var command = _setEpoch!;
                command.Transaction = transaction;
                command.Parameters["$domain"].Value = domain;
                command.Parameters["$epoch"].Value = epoch.UtcTicks;
                command.ExecuteNonQuery();
                return null;
            },
            cancellationToken).ConfigureAwait(false);
        AnnounceFlush();
    }

    public async Task<int> CountFlushedAsync(string domain, Action? viewFixed, CancellationToken cancellationToken)
    {
        await using var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false);

        // A WAL reader's snapshot is fixed by the first read of its transaction: after this one,
        // commits by the writer (claims) are not seen by the count below.
        await using var transaction = connection.BeginTransaction(deferred: true);
        await using (var fix = connection.CreateCommand())
        {
            fix.Transaction = transaction;
            fix.CommandText = "SELECT epoch FROM flush_epoch WHERE domain = $domain";
            fix.Parameters.AddWithValue("$domain", domain);
            await fix.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        }

        viewFixed?.Invoke();
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"SELECT count(*) FROM {FlushedOnly} WHERE flush_epoch.domain = $domain";
        command.Parameters.AddWithValue("$domain", domain);
        return Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Totals per domain from the columns derived from each record, in three scans of the table and no
    /// record deserialized. Rows that are not even JSON are quarantined first, as a listing would.
    /// </summary>
    public async Task<QueueTally> TallyAsync(CancellationToken cancellationToken)
    {
        var unreadable = new List<StoredRow>();
        var tally = new QueueTally();
        var lastErrors = new Dictionary<string, (string Error, DateTimeOffset At)>(StringComparer.OrdinalIgnoreCase);
        await using (var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await using (var command = connection.CreateCommand())
            {
                command.CommandText = $"SELECT {Columns}, spool.next_attempt_at FROM spool WHERE NOT json_valid(spool.data)";
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    unreadable.Add(StoredRow.Read(reader));
                }
            }

            // Checked once more below only when some row is damaged (a damaged row must not count).
            var readable = unreadable.Count == 0 ? "1" : "json_valid(data)";

            // SQLite's bare column: the lastError of the row that holds each domain's max(error_at).
            await using (var command = connection.CreateCommand())
            {
                command.CommandText = $"SELECT domain, max(error_at), json_extract(data, '$.lastError') FROM spool WHERE error_at IS NOT NULL AND {readable} GROUP BY domain";
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    if (!reader.IsDBNull(2))
                    {
                        lastErrors[reader.GetString(0)] = (reader.GetString(2), new DateTimeOffset(reader.GetInt64(1), TimeSpan.Zero));
                    }
                }
            }

            await using (var command = connection.CreateCommand())
            {
                command.CommandText = $"SELECT domain, count(*), sum(pending), min(received_at) FROM spool WHERE {readable} GROUP BY domain";
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var domain = reader.GetString(0);
                    var error = lastErrors.TryGetValue(domain, out var e) ? e : default;
                    tally.Add(domain, reader.GetInt32(1), reader.GetInt32(2), new DateTimeOffset(reader.GetInt64(3), TimeSpan.Zero), error.Error, error.Error is null ? null : error.At);
                }
            }
        }

        foreach (var row in unreadable.Where(r => r.Record is null))
        {
            await QuarantineAsync(row, cancellationToken).ConfigureAwait(false);
        }

        return tally;
    }

    /// <summary>
    /// Tells a relay in another process (this one is the flush command, say) that a flush is
    /// committed: a file created and removed at once, which <see cref="SpoolFlushWatcher"/> sees.
    /// Best effort: without it the relay still finds the flush within its idle interval.
    /// </summary>
    private void AnnounceFlush()
    {
        var path = Path.Combine(_folder, NewFlushAnnouncementName());
        try
        {
            File.WriteAllBytes(path, []);
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogAnnounceFailed(_logger, ex);
        }
    }

    internal string NewFlushAnnouncementName() => _announcementPrefix + Guid.NewGuid().ToString("N") + FlushAnnouncementPattern[1..];

    /// <summary>
    /// True when this store made the announcement <paramref name="fileName"/>: the relay's own
    /// flushes (ETRN, the dashboard) go through its flusher, which counts what a flush made due
    /// before it wakes the pump; a wake-up before the count would let claims leave it.
    /// </summary>
    public bool IsOwnFlushAnnouncement(string fileName) =>
        fileName.StartsWith(_announcementPrefix, StringComparison.Ordinal);

    /// <summary>
    /// Start-up recovery for a spool owned by one process: any lease still recorded belongs to
    /// a process that is gone (killed mid-delivery), so it is cleared and the message made due
    /// at once instead of waiting out the lease. Call before anything else uses the store.
    /// </summary>
    /// <returns>The number of records released.</returns>
    public async Task<int> RecoverAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var released = 0;
        var unreadable = new List<StoredRow>();
        await WriteAsync(
            transaction =>
            {
                var leased = new List<StoredRow>();
                using (var select = _writer.CreateCommand())
                {
                    select.Transaction = transaction;
                    select.CommandText = $"SELECT {Columns}, spool.next_attempt_at FROM spool WHERE lease_owner IS NOT NULL OR lease_expires_at IS NOT NULL";
                    using var reader = select.ExecuteReader();
                    while (reader.Read())
                    {
                        leased.Add(StoredRow.Read(reader));
                    }
                }

                var bad = leased.Where(r => r.Record is null).ToList();
                foreach (var row in bad)
                {
                    MoveToQuarantine(transaction, row);
                }

                foreach (var (leasedRecord, version) in leased.Where(r => r.Record is not null).Select(r => (r.Record!, r.Version)))
                {
                    var record = leasedRecord with
                    {
                        LeaseOwner = null,
                        LeaseExpiresAt = null,

                        // A row written by an earlier build while leased holds the lease's end as its next attempt.
                        NextAttemptAt = leasedRecord.NextAttemptAt > now ? now : leasedRecord.NextAttemptAt,
                    };

                    var command = _update!;
                    command.Transaction = transaction;
                    Row.From(record).Bind(command, ++_lastVersion);
                    command.Parameters["$expected"].Value = version;
                    command.ExecuteNonQuery();
                }

                var count = leased.Count - bad.Count;
                return () =>
                {
                    released = count;
                    unreadable.AddRange(bad);
                };
            },
            cancellationToken).ConfigureAwait(false);

        foreach (var row in unreadable)
        {
            LogQuarantined(_logger, row.Error!, row.QueueId);
        }

        if (released > 0)
        {
            LogLeasesReleased(_logger, released);
        }

        return released;
    }

    /// <summary>
    /// Every queue id in the spool, quarantined ones included, whose bodies are kept for the
    /// operator (cheaper than <see cref="ListAllAsync"/>: no JSON).
    /// </summary>
    public async Task<HashSet<string>> GetQueueIdsAsync(CancellationToken cancellationToken)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        await using var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT queue_id FROM spool UNION SELECT queue_id FROM quarantine";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            ids.Add(reader.GetString(0));
        }

        return ids;
    }

    /// <summary>
    /// Lets the database grow by at most <paramref name="extraPages"/> pages from its present size,
    /// so that tests meet SQLITE_FULL as on a full disk. Per connection: it applies to this store's writer only.
    /// </summary>
    internal Task LimitGrowthAsync(long extraPages, CancellationToken cancellationToken) =>
        WriteAsync(
            transaction =>
            {
                var pages = Convert.ToInt64(Scalar("PRAGMA page_count", transaction), CultureInfo.InvariantCulture);
                Execute(string.Create(CultureInfo.InvariantCulture, $"PRAGMA max_page_count = {pages + extraPages}"), transaction);
                return null;
            },
            cancellationToken);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Operations already queued are committed before the writer stops.
        _queue.CompleteAdding();
        lock (_openGate)
        {
            if (_opened)
            {
                _writerThread.Join();
            }
        }

        _insert?.Dispose();
        _update?.Dispose();
        _delete?.Dispose();
        _readCounter?.Dispose();
        _writeCounter?.Dispose();
        _quarantine?.Dispose();
        _unspool?.Dispose();
        _setEpoch?.Dispose();
        _insertBody?.Dispose();
        _deleteBody?.Dispose();
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
        Execute(string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout = {BusyTimeoutMilliseconds}"));

        // Under the write lock, so that two processes opening an old spool at once migrate it once.
        using (var transaction = _writer.BeginTransaction(deferred: false))
        {
            var version = Convert.ToInt32(Scalar("PRAGMA user_version", transaction), CultureInfo.InvariantCulture);
            if (version > SchemaVersion)
            {
                throw new InvalidOperationException(
                    $"The spool database '{DatabasePath}' has schema version {version}, newer than this build understands ({SchemaVersion}).");
            }

            if (version < SchemaVersion)
            {
                Migrate(version, transaction);
                transaction.Commit();
                if (version == 0)
                {
                    LogSchemaCreated(_logger, DatabasePath, SchemaVersion);
                }
                else
                {
                    LogSchemaMigrated(_logger, DatabasePath, version, SchemaVersion);
                }
            }
        }

        PrepareStatements();
    }

    /// <summary>Brings a spool of schema <paramref name="version"/> (0: a new file) to <see cref="SchemaVersion"/>.</summary>
    private void Migrate(int version, SqliteTransaction transaction)
    {
        if (version < 1)
        {
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
        }

        if (version < 2)
        {
            // The counter starts above every version in use, so no ETag held before the upgrade matches a new write.
            Execute(
                """
                CREATE TABLE IF NOT EXISTS spool_version (id INTEGER NOT NULL PRIMARY KEY CHECK (id = 0), last INTEGER NOT NULL);
                INSERT OR IGNORE INTO spool_version (id, last) SELECT 0, coalesce(max(version), 0) FROM spool;
                CREATE TABLE IF NOT EXISTS quarantine (
                    queue_id TEXT NOT NULL PRIMARY KEY,
                    domain TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    data TEXT NOT NULL,
                    reason TEXT NOT NULL
                ) WITHOUT ROWID;
                """,
                transaction);
        }

        if (version < 3)
        {
            Execute(
                """
                ALTER TABLE spool ADD COLUMN flush_after INTEGER NULL;
                ALTER TABLE spool ADD COLUMN received_at INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE spool ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE spool ADD COLUMN error_at INTEGER NULL;
                CREATE INDEX IF NOT EXISTS spool_flush ON spool (domain, flush_after) WHERE flush_after IS NOT NULL;
                CREATE TABLE IF NOT EXISTS flush_epoch (
                    domain TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
                    epoch INTEGER NOT NULL
                ) WITHOUT ROWID;
                """,
                transaction);
            if (version > 0)
            {
                FillDerivedColumns(transaction);
            }
            // A rowid table: bodies are several pages long, which WITHOUT ROWID handles badly.
            Execute("CREATE TABLE IF NOT EXISTS body (queue_id TEXT NOT NULL PRIMARY KEY, data BLOB NOT NULL)", transaction);
        }

        Execute(string.Create(CultureInfo.InvariantCulture, $"PRAGMA user_version = {SchemaVersion}"), transaction);
    }

    /// <summary>
    /// Sets the columns an older schema did not have (flush_after, received_at, pending, error_at) from
    /// each record; an unreadable one keeps the defaults until a read quarantines it.
    /// </summary>
    private void FillDerivedColumns(SqliteTransaction transaction)
    {
        var rows = new List<Row>();
        using (var select = _writer.CreateCommand())
        {
            select.Transaction = transaction;
            select.CommandText = $"SELECT {Columns}, spool.next_attempt_at FROM spool";
            using var reader = select.ExecuteReader();
            while (reader.Read())
            {
                if (StoredRow.Read(reader).Record is { } record)
                {
                    rows.Add(Row.From(record));
                }
            }
        }

        using var update = _writer.CreateCommand();
        update.Transaction = transaction;
        update.CommandText = "UPDATE spool SET flush_after = $flushAfter, received_at = $receivedAt, pending = $pending, error_at = $errorAt WHERE queue_id = $id";
        foreach (var name in new[] { "$flushAfter", "$receivedAt", "$pending", "$errorAt" })
        {
            update.Parameters.Add(name, SqliteType.Integer);
        }

        update.Parameters.Add("$id", SqliteType.Text);
        foreach (var row in rows)
        {
            row.BindDerived(update.Parameters);
            update.Parameters["$id"].Value = row.QueueId;
            update.ExecuteNonQuery();
        }
    }

    private void PrepareStatements()
    {
        _insert = Prepare(
            """
            INSERT INTO spool (queue_id, domain, next_attempt_at, expires_at, lease_owner, lease_expires_at, version, data,
                flush_after, received_at, pending, error_at)
            VALUES ($id, $domain, $next, $expires, $leaseOwner, $leaseExpires, $version, $data, $flushAfter, $receivedAt, $pending, $errorAt)
            ON CONFLICT (queue_id) DO NOTHING
            """);
        _update = Prepare(
            """
            UPDATE spool SET domain = $domain, next_attempt_at = $next, expires_at = $expires, lease_owner = $leaseOwner,
                lease_expires_at = $leaseExpires, version = $version, data = $data, flush_after = $flushAfter,
                received_at = $receivedAt, pending = $pending, error_at = $errorAt
            WHERE queue_id = $id AND version = $expected
            """);
        _update.Parameters.Add("$expected", SqliteType.Integer);
        _delete = _writer.CreateCommand();
        _delete.CommandText = "DELETE FROM spool WHERE queue_id = $id AND version = $expected";
        _delete.Parameters.Add("$id", SqliteType.Text);
        _delete.Parameters.Add("$expected", SqliteType.Integer);

        _readCounter = _writer.CreateCommand();
        _readCounter.CommandText = "SELECT last FROM spool_version WHERE id = 0";
        _writeCounter = _writer.CreateCommand();
        _writeCounter.CommandText = "UPDATE spool_version SET last = $last WHERE id = 0";
        _writeCounter.Parameters.Add("$last", SqliteType.Integer);

        _quarantine = _writer.CreateCommand();
        _quarantine.CommandText =
            """
            INSERT OR REPLACE INTO quarantine (queue_id, domain, version, data, reason)
            SELECT queue_id, domain, version, data, $reason FROM spool WHERE queue_id = $id AND version = $expected
            """;
        _quarantine.Parameters.Add("$id", SqliteType.Text);
        _quarantine.Parameters.Add("$expected", SqliteType.Integer);
        _quarantine.Parameters.Add("$reason", SqliteType.Text);
        _unspool = _writer.CreateCommand();
        _unspool.CommandText = "DELETE FROM spool WHERE queue_id = $id AND version = $expected";
        _unspool.Parameters.Add("$id", SqliteType.Text);
        _unspool.Parameters.Add("$expected", SqliteType.Integer);

        _setEpoch = _writer.CreateCommand();
        _setEpoch.CommandText = "INSERT INTO flush_epoch (domain, epoch) VALUES ($domain, $epoch) ON CONFLICT (domain) DO UPDATE SET epoch = max(epoch, excluded.epoch)";
        _setEpoch.Parameters.Add("$domain", SqliteType.Text);
        _setEpoch.Parameters.Add("$epoch", SqliteType.Integer);
        _insertBody = _writer.CreateCommand();
        _insertBody.CommandText = "INSERT OR REPLACE INTO body (queue_id, data) VALUES ($id, $data)";
        _insertBody.Parameters.Add("$id", SqliteType.Text);
        _insertBody.Parameters.Add("$data", SqliteType.Blob);
        _deleteBody = _writer.CreateCommand();
        _deleteBody.CommandText = "DELETE FROM body WHERE queue_id = $id";
        _deleteBody.Parameters.Add("$id", SqliteType.Text);
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
        command.Parameters.Add("$flushAfter", SqliteType.Integer);
        command.Parameters.Add("$receivedAt", SqliteType.Integer);
        command.Parameters.Add("$pending", SqliteType.Integer);
        command.Parameters.Add("$errorAt", SqliteType.Integer);
        return command;
    }

    private void Execute(string sql, SqliteTransaction? transaction = null)
    {
        using var command = _writer.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private object? Scalar(string sql, SqliteTransaction? transaction = null)
    {
        using var command = _writer.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private Task<SqliteConnection> OpenReaderAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ThrowIfNotOpen();
        return OpenConnectionAsync(_readConnectionString, cancellationToken);
    }

    /// <summary>
    /// Opens a connection to a spool database with the busy timeout every connection to it needs:
    /// without it a statement meeting another connection's write lock (the writer's group commit,
    /// a second process) fails at once instead of waiting for it.
    /// </summary>
    internal static async Task<SqliteConnection> OpenConnectionAsync(string connectionString, CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = connection.CreateCommand();
            command.CommandText = string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout = {BusyTimeoutMilliseconds}");
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Up to <paramref name="max"/> rows of <paramref name="from"/> matching <paramref name="filter"/> in
    /// <paramref name="order"/>, a page per short-lived connection: a caller that is slow to consume (the
    /// pump waits for delivery slots) must not hold a read snapshot open, which would stop WAL checkpoints.
    /// The filter continues after the previous page's last row, given as <c>$afterTicks</c> (its
    /// <paramref name="key"/>) and <c>$afterId</c> (its queue id);
    /// <paramref name="bind"/> adds its own parameters. <paramref name="from"/> joins flush_epoch.
    /// </summary>
    private async IAsyncEnumerable<SpoolRecord> PageAsync(
        string from,
        string filter,
        string order,
        Action<SqliteCommand>? bind,
        int max,
        [EnumeratorCancellation] CancellationToken cancellationToken,
        string key = "spool.next_attempt_at")
    {
        var afterTicks = long.MinValue;
        var afterId = string.Empty;
        var remaining = max;
        while (remaining > 0)
        {
            var limit = Math.Min(remaining, PageSize);
            var page = new List<StoredRow>(limit);
            await using (var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false))
            await using (var command = connection.CreateCommand())
            {
                command.CommandText = $"SELECT {Columns}, {key}, flush_epoch.epoch FROM {from} WHERE {filter} ORDER BY {order} LIMIT $limit";
                command.Parameters.AddWithValue("$afterTicks", afterTicks);
                command.Parameters.AddWithValue("$afterId", afterId);
                command.Parameters.AddWithValue("$limit", limit);
                bind?.Invoke(command);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    page.Add(StoredRow.Read(reader));
                }
            }

            // Unreadable rows are moved aside before the page is handed out, after its connection
            // is closed (the move is a write); the page still continues after them.
            var handedOut = 0;
            foreach (var row in page)
            {
                if (row.Record is null)
                {
                    await QuarantineAsync(row, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                handedOut++;
                yield return row.Record;
            }

            if (page.Count < limit)
            {
                yield break;
            }

            remaining -= handedOut;
            (afterTicks, afterId) = (page[^1].Key, page[^1].QueueId);
        }
    }

    /// <summary>Moves an unreadable row to the quarantine table, unless it changed since it was read.</summary>
    private async Task QuarantineAsync(StoredRow row, CancellationToken cancellationToken)
    {
        var moved = false;
        await WriteAsync(
            transaction => MoveToQuarantine(transaction, row) ? () => moved = true : null,
            cancellationToken).ConfigureAwait(false);
        if (moved)
        {
            LogQuarantined(_logger, row.Error!, row.QueueId);
        }
    }

    private bool MoveToQuarantine(SqliteTransaction transaction, StoredRow row)
    {
        _quarantine!.Transaction = transaction;
        _quarantine.Parameters["$id"].Value = row.QueueId;
        _quarantine.Parameters["$expected"].Value = row.Version;
        _quarantine.Parameters["$reason"].Value = row.Error!.Message;
        if (_quarantine.ExecuteNonQuery() == 0)
        {
            return false;
        }

        _unspool!.Transaction = transaction;
        _unspool.Parameters["$id"].Value = row.QueueId;
        _unspool.Parameters["$expected"].Value = row.Version;
        _unspool.ExecuteNonQuery();
        return true;
    }

    private static string FormatVersion(long version) => version.ToString(CultureInfo.InvariantCulture);

    private static bool TryParseVersion(string? etag, out long version) =>
        long.TryParse(etag, NumberStyles.None, CultureInfo.InvariantCulture, out version);

    private Task WriteAsync(Func<SqliteTransaction, Action?> execute, CancellationToken cancellationToken)
    {
        // Cancellation is honoured only before the write is queued: once queued it may commit,
        // and reporting a committed write as cancelled could make intake answer 451 for mail it kept.
        cancellationToken.ThrowIfCancellationRequested();
        ThrowIfNotOpen();
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

    // Without it a write would wait forever for a writer thread that never started, and a read
    // would create an empty database file.
    private void ThrowIfNotOpen()
    {
        if (!IsOpen && Volatile.Read(ref _disposed) == 0)
        {
            throw new InvalidOperationException($"The spool at '{DatabasePath}' is not open: call {nameof(Open)} at start-up first.");
        }
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
                        operation.Done.TrySetException(Classify(single));
                    }
                }
            }
            catch (Exception ex)
            {
                first.Done.TrySetException(Classify(ex));
            }
        }
    }

    /// <summary>
    /// A full disk (or a database that may not grow) becomes <see cref="StorageFullException"/>,
    /// which intake answers with 452 4.3.1 rather than 451: the sender should not expect a quick retry to help.
    /// </summary>
    private static Exception Classify(Exception exception) => exception is SqliteException { SqliteErrorCode: SqliteFull }
        ? new StorageFullException("The spool database cannot grow: the disk is full.", exception)
        : exception;

    private void Commit(List<WriteOperation> batch)
    {
        var committed = new Action?[batch.Count];
        using (var transaction = _writer.BeginTransaction(deferred: false))
        {
            // The transaction holds the write lock: no other process can advance the counter until it ends.
            _readCounter!.Transaction = transaction;
            var first = _lastVersion = Convert.ToInt64(_readCounter.ExecuteScalar(), CultureInfo.InvariantCulture);
            for (var i = 0; i < batch.Count; i++)
            {
                committed[i] = batch[i].Execute(transaction);
            }

            if (_lastVersion != first)
            {
                _writeCounter!.Transaction = transaction;
                _writeCounter.Parameters["$last"].Value = _lastVersion;
                _writeCounter.ExecuteNonQuery();
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

    /// <summary>
    /// A row as read: its record, or the error that made it unreadable (then <see cref="Record"/> is null).
    /// Only the JSON can be damaged in a way a read survives; the key columns are typed by the schema.
    /// </summary>
    private sealed record StoredRow(string QueueId, long Version, long Key, SpoolRecord? Record, Exception? Error)
    {
        /// <summary>
        /// Reads the current row of a <c>SELECT queue_id, version, data, key[, flush epoch]</c>,
        /// where the key orders a listing's pages; a flush epoch, when selected, is applied to the record.
        /// </summary>
        public static StoredRow Read(SqliteDataReader reader)
        {
            var queueId = reader.GetString(0);
            var version = reader.GetInt64(1);
            var key = reader.IsDBNull(3) ? 0 : reader.GetInt64(3);
            var epoch = reader.FieldCount > 4 && !reader.IsDBNull(4) ? new DateTimeOffset(reader.GetInt64(4), TimeSpan.Zero) : (DateTimeOffset?)null;
            try
            {
                var record = JsonSerializer.Deserialize(reader.GetString(2), SpoolJson.Record)
                    ?? throw new InvalidDataException($"Spool row '{queueId}' holds no record.");
                if (!string.Equals(record.QueueId, queueId, StringComparison.Ordinal))
                {
                    throw new InvalidDataException($"Spool row '{queueId}' holds the record of '{record.QueueId}'.");
                }

                return new StoredRow(queueId, version, key, SpoolLedger.ApplyFlushEpoch(record with { ETag = FormatVersion(version) }, epoch), null);
            }
            catch (Exception ex) when (ex is JsonException or InvalidDataException or InvalidCastException or NotSupportedException or FormatException or ArgumentException or OverflowException)
            {
                return new StoredRow(queueId, version, key, null, ex);
            }
        }
    }

    /// <summary>A record's column values, taken on the caller's thread so the writer never serializes.</summary>
    /// <remarks>
    /// Besides the keys, columns derived from the record for queries that must not read every record:
    /// flush_after (<see cref="SpoolLedger.FlushableSince"/>, for the due listing) and received_at,
    /// pending and error_at (when the last error was met), for <see cref="TallyAsync"/>.
    /// </remarks>
    private sealed record Row(
        string QueueId,
        string Domain,
        long NextAttemptAt,
        long ExpiresAt,
        string? LeaseOwner,
        long? LeaseExpiresAt,
        long? FlushAfter,
        long ReceivedAt,
        int Pending,
        long? ErrorAt,
        string Data)
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
                SpoolLedger.FlushableSince(record)?.UtcTicks,
                record.ReceivedAt.UtcTicks,
                record.PendingRecipients.Count(),
                record.LastError is null ? null : (record.LastAttemptAt ?? DateTimeOffset.MinValue).UtcTicks,
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
            BindDerived(parameters);
        }

        public void BindDerived(SqliteParameterCollection parameters)
        {
            parameters["$flushAfter"].Value = (object?)FlushAfter ?? DBNull.Value;
            parameters["$receivedAt"].Value = ReceivedAt;
            parameters["$pending"].Value = Pending;
            parameters["$errorAt"].Value = (object?)ErrorAt ?? DBNull.Value;
        }
    }

    [LoggerMessage(EventId = 4910, Level = LogLevel.Information, Message = "Created the spool database {Path} (schema {SchemaVersion})")]
    private static partial void LogSchemaCreated(ILogger logger, string path, int schemaVersion);

    [LoggerMessage(EventId = 4914, Level = LogLevel.Information, Message = "Migrated the spool database {Path} from schema {From} to {SchemaVersion}")]
    private static partial void LogSchemaMigrated(ILogger logger, string path, int from, int schemaVersion);

    [LoggerMessage(EventId = 4911, Level = LogLevel.Warning, Message = "Released {Count} message(s) still leased by a process that is gone; they are due now")]
    private static partial void LogLeasesReleased(ILogger logger, int count);

    [LoggerMessage(EventId = 4912, Level = LogLevel.Error, Message = "A batch of {Count} spool writes failed; retrying them one by one")]
    private static partial void LogBatchFailed(ILogger logger, Exception exception, int count);

    [LoggerMessage(EventId = 4915, Level = LogLevel.Warning, Message = "Could not announce a flush to a relay in another process; it finds the flush within its idle interval")]
    private static partial void LogAnnounceFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4913, Level = LogLevel.Error, Message = "The spool record {QueueId} cannot be read; moved it to the quarantine table, where it waits for an operator (its body is kept)")]
    private static partial void LogQuarantined(ILogger logger, Exception exception, string queueId);
}
