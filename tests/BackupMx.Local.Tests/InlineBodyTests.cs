using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Core.Spool;
using BackupMx.Testing.Contracts;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Local.Tests;

/// <summary>
/// A small body is committed with its record in one SQLite transaction (rule 1 with one sync for
/// both); a large one is still a file written before the record.
/// </summary>
public sealed class InlineBodyTests : IDisposable
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly TempSpool _spool = new();

    public void Dispose() => _spool.Dispose();

    [Fact]
    public async Task Accept_SmallBody_StoredWithItsRecordAndNoFile_ReadBackByteForByte()
    {
        var (spool, bodies, ledger) = Open();
        var content = Bytes(SqliteSpoolStore.InlineBodyLimit);
        var record = SpoolRecords.Sample();

        var acceptance = ledger.BeginAccept();
        var length = await acceptance.WriteBodyAsync(record.QueueId, new MemoryStream(content), None);

        // Held until the record's commit: nothing is stored yet.
        Assert.Null(await spool.ReadBodyAsync(record.QueueId, None));
        await acceptance.CommitAsync(record, None);

        Assert.Equal(content.Length, length);
        Assert.Equal(content, await ReadAsync(bodies, record.QueueId));
        Assert.Empty(Directory.GetFiles(_spool.OpenBodies().Root, "*", SearchOption.AllDirectories));
        Assert.Equal((1L, 1L), RowCounts());
    }

    [Fact]
    public async Task Accept_BodyOneByteOverTheLimit_WrittenAsAFileBeforeTheRecord()
    {
        var (spool, bodies, ledger) = Open();
        var content = Bytes(SqliteSpoolStore.InlineBodyLimit + 1);
        var record = SpoolRecords.Sample();

        var acceptance = ledger.BeginAccept();
        var length = await acceptance.WriteBodyAsync(record.QueueId, new MemoryStream(content), None);

        Assert.True(File.Exists(_spool.OpenBodies().PathOf(record.QueueId)));
        await acceptance.CommitAsync(record, None);

        Assert.Equal(content, await File.ReadAllBytesAsync(_spool.OpenBodies().PathOf(record.QueueId)));
        Assert.Equal(content, await ReadAsync(bodies, record.QueueId));
        Assert.Null(await spool.ReadBodyAsync(record.QueueId, None));
        Assert.Equal((1L, 0L), RowCounts());
    }

    [Fact]
    public async Task Finish_RecordWithItsBodyInTheDatabase_BothGo()
    {
        var (_, bodies, ledger) = Open();
        var record = await AcceptAsync(ledger, Bytes(4096));

        Assert.True(await ledger.FinishAsync(record));

        Assert.Equal((0L, 0L), RowCounts());
        await Assert.ThrowsAsync<BodyNotFoundException>(() => bodies.OpenReadAsync(record.QueueId, None));
    }

    [Fact]
    public async Task CreateWithBody_QueueIdTaken_ConflictAndTheStoredBodyIsUntouched()
    {
        var (spool, bodies, ledger) = Open();
        var first = await AcceptAsync(ledger, Bytes(4096));
        var again = SpoolRecords.Sample(queueId: first.QueueId);

        await Assert.ThrowsAsync<SpoolConflictException>(() => spool.CreateWithBodyAsync(again, Bytes(100), None));

        Assert.Equal(Bytes(4096), await ReadAsync(bodies, first.QueueId));
    }

    [Fact]
    public async Task Accept_DatabaseCannotGrow_OutOfSpaceAndNeitherRecordNorBodyKept()
    {
        var (spool, _, ledger) = Open();
        await AcceptAsync(ledger, Bytes(100));
        var before = RowCounts();
        await spool.LimitGrowthAsync(0, None);

        // The next pages the body needs are refused: the whole transaction is.
        var record = SpoolRecords.Sample();
        var acceptance = ledger.BeginAccept();
        await acceptance.WriteBodyAsync(record.QueueId, new MemoryStream(Bytes(SqliteSpoolStore.InlineBodyLimit)), None);
        var full = await Assert.ThrowsAnyAsync<Exception>(() => acceptance.CommitAsync(record, None));
        await acceptance.UndoAsync();

        Assert.True(StorageErrors.IsOutOfSpace(full));
        Assert.Null(await spool.GetAsync(record.Domain, record.QueueId, None));
        Assert.Null(await spool.ReadBodyAsync(record.QueueId, None));
        Assert.Equal(before, RowCounts());
    }

    [Fact]
    public async Task Quarantine_UnreadableRecord_ItsBodyIsKeptForTheOperator()
    {
        var (spool, bodies, ledger) = Open();
        var record = await AcceptAsync(ledger, Bytes(4096));
        Execute($"UPDATE spool SET data = 'not json' WHERE queue_id = '{record.QueueId}'");

        Assert.Null(await spool.GetAsync(record.Domain, record.QueueId, None));

        Assert.Equal(Bytes(4096), await ReadAsync(bodies, record.QueueId));
    }

    private (SqliteSpoolStore Spool, LocalBodyStore Bodies, SpoolLedger Ledger) Open()
    {
        var spool = _spool.OpenSpool();
        var bodies = new LocalBodyStore(_spool.OpenBodies(), spool);
        var ledger = new SpoolLedger(spool, bodies, new InProcessWakeUpQueue(new WakeUpSignal()), new FakeTimeProvider(SpoolRecords.T0), NullLogger<SpoolLedger>.Instance);
        return (spool, bodies, ledger);
    }

    private static async Task<SpoolRecord> AcceptAsync(SpoolLedger ledger, byte[] content)
    {
        var record = SpoolRecords.Sample();
        var acceptance = ledger.BeginAccept();
        await acceptance.WriteBodyAsync(record.QueueId, new MemoryStream(content), None);
        return await acceptance.CommitAsync(record, None);
    }

    private static async Task<byte[]> ReadAsync(IBodyStore bodies, string queueId)
    {
        await using var body = await bodies.OpenReadAsync(queueId, None);
        using var copy = new MemoryStream();
        await body.CopyToAsync(copy);
        return copy.ToArray();
    }

    private static byte[] Bytes(int length)
    {
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Rows in the spool table and in the body table.</summary>
    private (long Records, long Bodies) RowCounts()
    {
        using var connection = Connect();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT (SELECT count(*) FROM spool), (SELECT count(*) FROM body)";
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    private void Execute(string sql)
    {
        using var connection = Connect();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private SqliteConnection Connect()
    {
        var connection = new SqliteConnection($"Data Source={Path.Combine(_spool.Path, SqliteSpoolStore.FileName)};Pooling=False");
        connection.Open();
        return connection;
    }
}
