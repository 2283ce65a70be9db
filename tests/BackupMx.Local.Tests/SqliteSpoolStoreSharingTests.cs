using System.Globalization;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Contracts;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace BackupMx.Local.Tests;

/// <summary>
/// Two stores on one spool file stand for the relay and an operator command (flush) in another
/// process; unreadable rows; a full disk.
/// </summary>
public sealed class SqliteSpoolStoreSharingTests : IDisposable
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly TempSpool _spool = new();

    public void Dispose() => _spool.Dispose();

    [Fact]
    public async Task TryUpdateAsync_RowRewrittenByAnotherProcess_StaleETagIsRefused()
    {
        var relay = _spool.OpenSpool();
        var flushCommand = _spool.OpenSpool();
        var record = SpoolRecords.Sample(nextAttemptAt: SpoolRecords.T0.AddHours(1));
        record = await relay.CreateAsync(record, None);

        // The flush command makes the message due; the relay still holds the copy it created.
        var flushed = (await flushCommand.GetAsync(record.Domain, record.QueueId, None))!;
        flushed = await flushCommand.UpdateAsync(flushed! with { NextAttemptAt = SpoolRecords.T0 }, None);
        Assert.NotEqual(record.ETag, flushed.ETag);

        Assert.Null(await relay.TryUpdateAsync(record! with { LeaseOwner = "relay" }, None));
        Assert.False(await relay.TryDeleteAsync(record, None));
        Assert.Equal(SpoolRecords.T0, (await relay.GetAsync(record.Domain, record.QueueId, None))!.NextAttemptAt);
    }

    [Fact]
    public async Task TryUpdateAsync_FlushCommandsCopyAfterTheRelaysClaim_DoesNotClearTheLease()
    {
        var relay = _spool.OpenSpool();
        var flushCommand = _spool.OpenSpool();
        for (var i = 0; i < 5; i++)
        {
            await flushCommand.CreateAsync(SpoolRecords.Sample(), None);
        }

        var record = SpoolRecords.Sample(nextAttemptAt: SpoolRecords.T0.AddHours(1));
        record = await relay.CreateAsync(record, None);

        // The flush command makes the message due and keeps the copy it wrote.
        var flushed = (await flushCommand.GetAsync(record.Domain, record.QueueId, None))!;
        flushed = await flushCommand.UpdateAsync(flushed! with { NextAttemptAt = SpoolRecords.T0 }, None);

        // The relay goes on writing, then claims the message for delivery.
        for (var i = 0; i < 4; i++)
        {
            await relay.CreateAsync(SpoolRecords.Sample(), None);
        }

        var claimed = (await relay.GetAsync(record.Domain, record.QueueId, None))!;
        claimed = await relay.UpdateAsync(claimed! with { LeaseOwner = "relay", LeaseExpiresAt = SpoolRecords.T0.AddMinutes(15) }, None);

        // A second write from the flush command's copy must lose, or the live lease is cleared.
        Assert.Null(await flushCommand.TryUpdateAsync(flushed! with { Attempts = 0 }, None));
        Assert.Equal("relay", (await relay.GetAsync(record.Domain, record.QueueId, None))!.LeaseOwner);
    }

    [Fact]
    public async Task Versions_InterleavedWritersOnOneFile_AreAllDistinct()
    {
        var stores = new[] { _spool.OpenSpool(), _spool.OpenSpool() };
        var etags = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            var record = await stores[i % 2].CreateAsync(SpoolRecords.Sample(), None);
            etags.Add(record.ETag!);
            record = await stores[(i + 1) % 2].UpdateAsync(record with { Attempts = 1 }, None);
            etags.Add(record.ETag!);
        }

        Assert.Equal(etags.Count, etags.Distinct().Count());
    }

    [Fact]
    public async Task Open_SchemaOneSpool_MigratesAndKeepsVersionsAboveTheOldOnes()
    {
        var record = SpoolRecords.Sample();
        using (var seed = new SqliteSpoolStore(_spool.Path))
        {
            seed.Open();
            record = await seed.CreateAsync(record, None);
        }

        // Back to what a schema-1 build left: no counter, no quarantine, a row at version 41.
        using (var connection = new SqliteConnection($"Data Source={Path.Combine(_spool.Path, SqliteSpoolStore.FileName)};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "DROP TABLE spool_version; DROP TABLE quarantine; UPDATE spool SET version = 41; PRAGMA user_version = 1;"
                + "DROP TABLE flush_epoch; DROP INDEX spool_flush; ALTER TABLE spool DROP COLUMN flush_after; ALTER TABLE spool DROP COLUMN received_at;"
                + "ALTER TABLE spool DROP COLUMN pending; ALTER TABLE spool DROP COLUMN error_at;";
            command.ExecuteNonQuery();
        }

        var store = _spool.OpenSpool();

        // The columns the new schema derives from each record are filled in: a flush and the totals find it.
        await store.SetFlushEpochAsync(record.Domain, record.ReceivedAt.AddDays(1), None);
        Assert.Equal(1, await store.CountFlushedAsync(record.Domain, viewFixed: null, None));
        Assert.Equal(record.Recipients.Count, (await store.TallyAsync(None)).Domains[record.Domain].Recipients);

        var read = (await store.GetAsync(record.Domain, record.QueueId, None))!;
        Assert.Equal("41", read.ETag);
        read = await store.UpdateAsync(read! with { Attempts = 2 }, None);
        Assert.True(long.Parse(read.ETag!, CultureInfo.InvariantCulture) > 41);
        Assert.Empty(await ToListAsync(store.ListQuarantinedAsync(None)));
    }

    [Fact]
    public async Task ListDueAsync_UnreadableRowAmongMoreThanAPage_ReturnsAllTheOthersInOneCall()
    {
        // The pump reads due records a page at a time; a bad row used to fail its whole listing, every second.
        var store = _spool.OpenSpool();
        var records = Enumerable.Range(0, 300).Select(i => SpoolRecords.Sample(nextAttemptAt: SpoolRecords.T0.AddSeconds(i))).ToList();
        foreach (var r in records)
        {
            await store.CreateAsync(r, None);
        }

        await CorruptAsync(records[255].QueueId);
        await CorruptAsync(records[10].QueueId);

        var due = await ToListAsync(store.ListDueAsync(SpoolRecords.T0.AddHours(1), 1000, None));

        Assert.Equal(records.Where((_, i) => i is not (10 or 255)).Select(r => r.QueueId), due.Select(r => r.QueueId));
        Assert.Equal(
            new[] { records[10].QueueId, records[255].QueueId }.Order(StringComparer.Ordinal),
            (await ToListAsync(store.ListQuarantinedAsync(None))).Select(q => q.QueueId));
    }

    [Fact]
    public async Task RecoverAsync_LeasedUnreadableRow_IsQuarantinedAndTheOthersReleased()
    {
        var store = _spool.OpenSpool();
        var now = SpoolRecords.T0;
        var good = SpoolRecords.Sample(nextAttemptAt: now);
        var bad = SpoolRecords.Sample(nextAttemptAt: now);
        foreach (var r in new[] { good, bad })
        {
            var created = await store.CreateAsync(r, None);
            await store.UpdateAsync(created with { LeaseOwner = "killed", LeaseExpiresAt = now.AddMinutes(15) }, None);
        }

        await CorruptAsync(bad.QueueId);

        Assert.Equal(1, await store.RecoverAsync(now, None));
        Assert.Null((await store.GetAsync(good.Domain, good.QueueId, None))!.LeaseOwner);
        Assert.Equal(bad.QueueId, Assert.Single(await ToListAsync(store.ListQuarantinedAsync(None))).QueueId);
    }

    [Fact]
    public async Task RunAsync_QuarantinedRecord_KeepsItsBody()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var store = _spool.OpenSpool();
        var bodies = _spool.OpenBodies();
        var record = SpoolRecords.Sample();
        await bodies.WriteAsync(record.QueueId, new MemoryStream([1]), None);
        record = await store.CreateAsync(record, None);
        File.SetLastWriteTimeUtc(bodies.PathOf(record.QueueId), time.GetUtcNow().UtcDateTime.AddHours(-1));
        await CorruptAsync(record.QueueId);
        Assert.Null(await store.GetAsync(record.Domain, record.QueueId, None));

        using var initializer = new LocalSpoolInitializer(store, bodies, TempSpool.OpenStatuses(store), time, NullLogger<LocalSpoolInitializer>.Instance);
        await initializer.RunAsync(None);

        Assert.True(File.Exists(bodies.PathOf(record.QueueId)));
    }

    [Fact]
    public async Task CreateAsync_DatabaseCannotGrow_FailsAsOutOfSpace()
    {
        var store = _spool.OpenSpool();
        await store.CreateAsync(SpoolRecords.Sample(), None);
        await store.LimitGrowthAsync(0, None);

        // Intake answers 452 4.3.1 exactly when this holds.
        var full = await Assert.ThrowsAnyAsync<Exception>(() => store.CreateAsync(SpoolRecords.Sample(recipients: 2000), None));
        Assert.True(StorageErrors.IsOutOfSpace(full));

    }

    [Fact]
    public async Task AcceptAsync_SpoolDatabaseFull_FailsAsInsufficientStorage()
    {
        // Intake over the real store: the receiver answers 452 4.3.1 for InsufficientStorage, 451 otherwise.
        var store = _spool.OpenSpool();
        using var h = new CoreHarness(spool: store);
        await store.LimitGrowthAsync(0, None);

        IntakeResult result;
        var attempts = 0;
        do
        {
            result = await h.Intake.AcceptAsync(
                new IncomingMessage
                {
                    Sender = "alice@sender.test",
                    Recipients = [new IncomingRecipient("bob@example.test")],
                    Content = MessageContent.FromBytes("Subject: hi\r\n\r\nHi.\r\n"u8.ToArray()),
                },
                None);
        }
        while (result is IntakeResult.Accepted && ++attempts < 500);

        Assert.True(Assert.IsType<IntakeResult.Failed>(result).InsufficientStorage);
    }

    [Fact]
    public void DirectoryFsyncFailure_NoSpaceLeft_IsOutOfSpace()
    {
        Assert.True(StorageErrors.IsOutOfSpace(DirectorySync.Failure("fsync", _spool.Path, 28)));
        Assert.False(StorageErrors.IsOutOfSpace(DirectorySync.Failure("fsync", _spool.Path, 5)));
    }

    [Fact]
    public async Task SqlitePrimaryStatusStore_Connections_WaitForTheWriterLikeTheSpoolsDo()
    {
        var statuses = TempSpool.OpenStatuses(_spool.OpenSpool());
        await using var connection = await statuses.OpenAsync(None);
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA busy_timeout";
        Assert.Equal((long)SqliteSpoolStore.BusyTimeoutMilliseconds, await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task TryUpdateAsync_StoredDocument_KeepsTheETagOutAndTheFieldNamesEarlierBuildsRead()
    {
        // The ETag is init-only like every other property, and an update's record carries one; it is
        // the row's version, never part of the document.
        var store = _spool.OpenSpool();
        var record = await store.CreateAsync(SpoolRecords.Sample(), CancellationToken.None);
        record = await store.UpdateAsync(record with { Attempts = 2, WakeUpToken = "42" }, CancellationToken.None);

        await using var connection = new SqliteConnection($"Data Source={Path.Combine(_spool.Path, SqliteSpoolStore.FileName)};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT data FROM spool WHERE queue_id = $id";
        command.Parameters.AddWithValue("$id", record.QueueId);
        using var document = System.Text.Json.JsonDocument.Parse((string)(await command.ExecuteScalarAsync())!);

        var root = document.RootElement;
        Assert.False(root.TryGetProperty("eTag", out _));
        Assert.Equal(record.QueueId, root.GetProperty("queueId").GetString());
        Assert.Equal(2, root.GetProperty("attempts").GetInt32());
        Assert.Equal("42", root.GetProperty("wakeUpToken").GetString());
        Assert.Equal("user1@example.test", root.GetProperty("recipients")[0].GetProperty("address").GetString());
        Assert.Equal("Pending", root.GetProperty("recipients")[0].GetProperty("status").GetString());
    }

    private async Task CorruptAsync(string queueId)
    {
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(_spool.Path, SqliteSpoolStore.FileName)};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "UPDATE spool SET data = 'not json' WHERE queue_id = $id";
        command.Parameters.AddWithValue("$id", queueId);
        Assert.Equal(1, await command.ExecuteNonQueryAsync());
    }

    private static async Task<List<T>> ToListAsync<T>(IAsyncEnumerable<T> source)
    {
        var list = new List<T>();
        await foreach (var item in source)
        {
            list.Add(item);
        }

        return list;
    }
}
