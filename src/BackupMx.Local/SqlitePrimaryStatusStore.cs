using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupMx.Local;

/// <summary>
/// Embedded mode's primary status. The relay's own knowledge lives in memory: intake reads it
/// for every message, and a restart must start from Unknown so that each primary's first answer
/// flushes what is spooled for it (<see cref="ForgetAllAsync"/> at start-up). Every change is
/// also written to a table in the spool database, so that the <c>queue</c> command, a separate
/// process, can say why mail is waiting: the primary's state, since when, and its last error.
/// That table is for display only; losing a write there never affects delivery. So conditional
/// writes are decided by an <see cref="InMemoryPrimaryStatusStore"/>: the relay is the only
/// process that writes, and the table only ever copies what memory decided.
/// </summary>
public sealed partial class SqlitePrimaryStatusStore : IPrimaryStatusStore
{
    private readonly InMemoryPrimaryStatusStore _memory = new();
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly string _connectionString;
    private readonly ILogger _logger;
    private readonly SqliteSpoolStore _spool;

    // Set by ForgetAllAsync, which the relay calls at start-up: from then on memory holds everything
    // the table could, and a domain memory does not know is Unknown without asking the database.
    private volatile bool _memoryIsComplete;
    private volatile bool _initialized;

    public SqlitePrimaryStatusStore(SqliteSpoolStore spool, ILogger<SqlitePrimaryStatusStore>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(spool);
        _logger = logger ?? NullLogger<SqlitePrimaryStatusStore>.Instance;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = spool.DatabasePath,
            Mode = SqliteOpenMode.ReadWrite,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();

        _spool = spool;
    }

    /// <summary>
    /// Opens the spool database (<see cref="SqliteSpoolStore.Open"/>) and creates the status table
    /// if it is missing. Run at start-up (<see cref="LocalSpoolInitializer"/>, or an operator
    /// command); calling it again does nothing.
    /// </summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        _spool.Open();
        await using var connection = await SqliteSpoolStore.OpenConnectionAsync(_connectionString, cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            CREATE TABLE IF NOT EXISTS primary_status (
                domain TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
                state INTEGER NOT NULL,
                since INTEGER NULL,
                last_checked INTEGER NULL,
                last_error TEXT NULL,
                host TEXT NULL)
            """;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        _initialized = true;
    }

    public async Task<VersionedPrimaryStatus?> GetAsync(string domain, CancellationToken cancellationToken)
    {
        var known = await _memory.GetAsync(domain, cancellationToken).ConfigureAwait(false);
        if (known is not null || _memoryIsComplete)
        {
            return known;
        }

        // Not in memory and not reset (the queue command's process): the table's row, adopted into
        // memory (only if still absent there) so that its version means something to TrySetAsync.
        var stored = (await ReadAsync(domain, cancellationToken).ConfigureAwait(false)).FirstOrDefault();
        if (stored is null)
        {
            return null;
        }

        await _memory.TrySetAsync(stored, expectedVersion: null, cancellationToken).ConfigureAwait(false);
        return await _memory.GetAsync(domain, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> TrySetAsync(PrimaryStatus status, string? expectedVersion, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(status);

        // Decided in memory, like reads: a row only the table holds is adopted first, so that
        // "absent" means absent from both.
        await GetAsync(status.Domain, cancellationToken).ConfigureAwait(false);
        if (!await _memory.TrySetAsync(status, expectedVersion, cancellationToken).ConfigureAwait(false))
        {
            return false;
        }

        // One writer at a time, each writing what memory holds then: the table ends with the latest state.
        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (await _memory.GetAsync(status.Domain, cancellationToken).ConfigureAwait(false) is not { } latest)
            {
                return true;
            }

            await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = connection.CreateCommand();
            command.CommandText = """
                INSERT INTO primary_status (domain, state, since, last_checked, last_error, host)
                VALUES ($domain, $state, $since, $checked, $error, $host)
                ON CONFLICT (domain) DO UPDATE SET state = excluded.state, since = excluded.since,
                    last_checked = excluded.last_checked, last_error = excluded.last_error, host = excluded.host
                """;
            command.Parameters.AddWithValue("$domain", latest.Status.Domain);
            command.Parameters.AddWithValue("$state", (int)latest.Status.State);
            command.Parameters.AddWithValue("$since", (object?)latest.Status.Since?.UtcTicks ?? DBNull.Value);
            command.Parameters.AddWithValue("$checked", (object?)latest.Status.LastChecked?.UtcTicks ?? DBNull.Value);
            command.Parameters.AddWithValue("$error", (object?)latest.Status.LastError ?? DBNull.Value);
            command.Parameters.AddWithValue("$host", (object?)latest.Status.Host ?? DBNull.Value);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            // Memory, which the relay goes by, is already up to date; only the operator's view lags.
            LogWriteFailed(_logger, ex, status.Domain);
        }
        finally
        {
            _writeGate.Release();
        }

        return true;
    }

    public async Task<IReadOnlyList<PrimaryStatus>> ListAsync(CancellationToken cancellationToken)
    {
        var stored = await ReadAsync(null, cancellationToken).ConfigureAwait(false);
        var merged = stored.ToDictionary(s => s.Domain, StringComparer.OrdinalIgnoreCase);
        foreach (var status in await _memory.ListAsync(cancellationToken).ConfigureAwait(false))
        {
            merged[status.Domain] = status;
        }

        return merged.Values.ToList();
    }

    /// <summary>Every primary becomes Unknown again; the relay calls this at start-up, before anything reads a status.</summary>
    public async Task ForgetAllAsync(CancellationToken cancellationToken)
    {
        _memory.Clear();
        _memoryIsComplete = true;
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM primary_status";
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<List<PrimaryStatus>> ReadAsync(string? domain, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT domain, state, since, last_checked, last_error, host FROM primary_status"
            + (domain is null ? string.Empty : " WHERE domain = $domain");
        if (domain is not null)
        {
            command.Parameters.AddWithValue("$domain", domain);
        }

        var result = new List<PrimaryStatus>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            result.Add(new PrimaryStatus(
                reader.GetString(0),
                (PrimaryState)reader.GetInt32(1),
                ReadTime(reader, 2),
                ReadTime(reader, 3),
                reader.IsDBNull(4) ? null : reader.GetString(4),
                reader.IsDBNull(5) ? null : reader.GetString(5)));
        }

        return result;
    }

    private static DateTimeOffset? ReadTime(SqliteDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : new DateTimeOffset(reader.GetInt64(ordinal), TimeSpan.Zero);

    /// <summary>A connection that waits for the spool writer's lock like the spool's own connections do.</summary>
    internal Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        if (!_initialized)
        {
            throw new InvalidOperationException($"The primary status table is not ready: call {nameof(InitializeAsync)} at start-up first.");
        }

        return SqliteSpoolStore.OpenConnectionAsync(_connectionString, cancellationToken);
    }

    [LoggerMessage(EventId = 4930, Level = LogLevel.Warning, Message = "Could not record the primary status of {Domain} for the queue command; delivery is not affected")]
    private static partial void LogWriteFailed(ILogger logger, Exception exception, string domain);
}
