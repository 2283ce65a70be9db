using System.Diagnostics;
using BackupMx.Core.Model;
using BackupMx.Testing.Contracts;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace BackupMx.Local.Tests;

public sealed class SqliteSpoolStoreTests(ITestOutputHelper output) : IDisposable
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly TempSpool _spool = new();

    public void Dispose() => _spool.Dispose();

    [Fact]
    public async Task Reopen_ReadsBackWhatWasCommitted()
    {
        var record = SpoolRecords.Sample();
        string etag;
        using (var first = new SqliteSpoolStore(_spool.Path))
        {
            first.Open();
            record = await first.CreateAsync(record, None);
            record = await first.UpdateAsync(record! with { Attempts = 4, LastError = "451 4.4.1 try later" }, None);
            etag = record.ETag!;
        }

        var second = _spool.OpenSpool();
        var read = await second.GetAsync(record.Domain, record.QueueId, None);
        Assert.NotNull(read);
        Assert.Equal(etag, read.ETag);
        Assert.Equal(4, read.Attempts);
        Assert.Equal("451 4.4.1 try later", read.LastError);

        // Versions keep growing across a reopen, so an ETag from before stays unique.
        read = await second.UpdateAsync(read! with { Attempts = 5 }, None);
        Assert.True(long.Parse(read.ETag!, System.Globalization.CultureInfo.InvariantCulture) > long.Parse(etag, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Timestamps_KeepTicksAndOffset()
    {
        var store = _spool.OpenSpool();
        var received = new DateTimeOffset(2026, 11, 27, 13, 0, 0, TimeSpan.FromHours(1)).AddTicks(1_234_567);
        var record = new SpoolRecord
        {
            QueueId = QueueId.New(received),
            Domain = "example.test",
            Sender = "a@sender.test",
            Recipients = [new RecipientState { Address = "b@example.test", CompletedAt = received.AddTicks(1), Status = RecipientStatus.Delivered }],
            ReceivedAt = received,
            ExpiresAt = received.AddDays(5).AddTicks(3),
            NextAttemptAt = received.AddTicks(7),
            LastAttemptAt = received.ToOffset(TimeSpan.FromHours(-5)),
            LeaseExpiresAt = received.AddMinutes(15),
            LeaseOwner = "w",
        };

        record = await store.CreateAsync(record, None);
        var read = (await store.GetAsync("EXAMPLE.test", record.QueueId, None))!;

        Assert.Equal(received.Ticks, read.ReceivedAt.Ticks);
        Assert.Equal(received.Offset, read.ReceivedAt.Offset);
        Assert.Equal(record.ExpiresAt.UtcTicks, read.ExpiresAt.UtcTicks);
        Assert.Equal(record.NextAttemptAt.UtcTicks, read.NextAttemptAt.UtcTicks);
        Assert.Equal(TimeSpan.FromHours(-5), read.LastAttemptAt!.Value.Offset);
        Assert.Equal(record.LeaseExpiresAt, read.LeaseExpiresAt);
        Assert.Equal(record.Recipients[0].CompletedAt!.Value.UtcTicks, read.Recipients[0].CompletedAt!.Value.UtcTicks);
    }

    [Fact]
    public async Task Open_CreatesWalDatabaseWithSchemaVersion()
    {
        _spool.OpenSpool();
        using var connection = new SqliteConnection($"Data Source={Path.Combine(_spool.Path, SqliteSpoolStore.FileName)};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", command.ExecuteScalar());
        command.CommandText = "PRAGMA user_version";
        Assert.Equal((long)SqliteSpoolStore.SchemaVersion, command.ExecuteScalar());
    }

    [Fact]
    public void Open_NewerSchema_Throws()
    {
        using (var connection = new SqliteConnection($"Data Source={Path.Combine(_spool.Path, SqliteSpoolStore.FileName)};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = $"PRAGMA user_version = {SqliteSpoolStore.SchemaVersion + 1}";
            command.ExecuteNonQuery();
        }

        using var store = new SqliteSpoolStore(_spool.Path);
        var ex = Assert.Throws<InvalidOperationException>(store.Open);
        Assert.Contains("newer", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("../../etc/passwd")]
    [InlineData("short")]
    [InlineData("01234567890123456789/")]
    public async Task CreateAsync_InvalidQueueId_Throws(string id)
    {
        var store = _spool.OpenSpool();
        await Assert.ThrowsAsync<ArgumentException>(() => store.CreateAsync(SpoolRecords.Sample(id), None));
    }

    [Fact]
    public async Task TryUpdateAsync_ForeignOrMissingETag_ReturnsFalse()
    {
        var store = _spool.OpenSpool();
        var record = SpoolRecords.Sample();
        record = await store.CreateAsync(record, None);
        var copy = (await store.GetAsync(record.Domain, record.QueueId, None))!;

        Assert.Null(await store.TryUpdateAsync(copy with { ETag = "W/\"datetime'2026'\"" }, None));
        Assert.False(await store.TryDeleteAsync(copy with { ETag = null }, None));
    }

    [Fact]
    public async Task List_MoreThanOnePage_ReturnsAllInOrder()
    {
        var store = _spool.OpenSpool();
        var records = Enumerable.Range(0, 700)
            .Select(i => SpoolRecords.Sample(nextAttemptAt: SpoolRecords.T0.AddSeconds(i % 50), recipients: 1))
            .ToList();
        await Task.WhenAll(records.Select(r => store.CreateAsync(r, None)));

        var expected = records.OrderBy(r => r.NextAttemptAt).ThenBy(r => r.QueueId, StringComparer.Ordinal).Select(r => r.QueueId).ToList();
        var due = await ToListAsync(store.ListDueAsync(DateTimeOffset.MaxValue, int.MaxValue, None));
        Assert.Equal(expected, due.Select(r => r.QueueId));

        // 434 records are due by then: the limit cuts the second page short.
        var dueBy = SpoolRecords.T0.AddSeconds(30);
        var limited = await ToListAsync(store.ListDueAsync(dueBy, 300, None));
        var expectedLimited = records.Where(r => r.NextAttemptAt <= dueBy)
            .OrderBy(r => r.NextAttemptAt).ThenBy(r => r.QueueId, StringComparer.Ordinal).Take(300).Select(r => r.QueueId);
        Assert.Equal(expectedLimited, limited.Select(r => r.QueueId));

        var ordered = records.Select(r => r.QueueId).Order(StringComparer.Ordinal);
        Assert.Equal(ordered, (await ToListAsync(store.ListAllAsync(None))).Select(r => r.QueueId));
        Assert.Equal(ordered, (await ToListAsync(store.ListDomainAsync("EXAMPLE.test", None))).Select(r => r.QueueId));
        Assert.Empty(await ToListAsync(store.ListDomainAsync("other.test", None)));
    }

    [Fact]
    public async Task TryUpdateAsync_ManyConcurrentClaims_ExactlyOneWins()
    {
        var store = _spool.OpenSpool();
        var record = SpoolRecords.Sample();
        record = await store.CreateAsync(record, None);

        for (var round = 0; round < 10; round++)
        {
            var copies = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => store.GetAsync(record.Domain, record.QueueId, None)));
            var results = await Task.WhenAll(copies.Select((c, i) => Task.Run(() => store.TryUpdateAsync(c! with { LeaseOwner = $"r{round}w{i}" }, None))));

            Assert.Equal(1, results.Count(r => r is not null));
            var winner = results.Single(r => r is not null)!;
            var stored = (await store.GetAsync(record.Domain, record.QueueId, None))!;
            Assert.Equal(winner.LeaseOwner, stored.LeaseOwner);
            Assert.Equal(winner.ETag, stored.ETag);
        }
    }

    [Fact]
    public async Task CreateAsync_ManyConcurrentWriters_AllCommitted()
    {
        var store = _spool.OpenSpool();
        const int Tasks = 20;
        const int PerTask = 100;
        var stopwatch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Tasks).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < PerTask; i++)
            {
                await store.CreateAsync(SpoolRecords.Sample(recipients: 3), None);
            }
        })));
        stopwatch.Stop();
        output.WriteLine($"{Tasks * PerTask} creates from {Tasks} concurrent tasks: {stopwatch.ElapsedMilliseconds} ms ({Tasks * PerTask / stopwatch.Elapsed.TotalSeconds:F0}/s)");

        // The pump's pattern on top: claim, then release, every record.
        stopwatch.Restart();
        var claimed = 0;
        await foreach (var record in store.ListDueAsync(DateTimeOffset.MaxValue, int.MaxValue, None))
        {
            if (await store.TryUpdateAsync(record with { LeaseOwner = "pump" }, None) is not null)
            {
                claimed++;
            }
        }

        stopwatch.Stop();
        output.WriteLine($"{claimed} sequential claims: {stopwatch.ElapsedMilliseconds} ms");
        Assert.Equal(Tasks * PerTask, claimed);
        Assert.Equal(Tasks * PerTask, (await store.GetQueueIdsAsync(None)).Count);
    }

    [Fact]
    public async Task RecoverAsync_ReleasesLeasesAndMakesThemDue()
    {
        var store = _spool.OpenSpool();
        var now = SpoolRecords.T0.AddHours(1);
        var claimed = SpoolRecords.Sample();
        claimed = await store.CreateAsync(claimed, None);
        claimed = await store.UpdateAsync(claimed! with { LeaseOwner = "dead-process", LeaseExpiresAt = now.AddMinutes(10) }, None);
        var scheduled = SpoolRecords.Sample(nextAttemptAt: now.AddMinutes(30));
        scheduled = await store.CreateAsync(scheduled, None);
        Assert.Empty(await ToListAsync(store.ListDueAsync(now, 10, None)));

        Assert.Equal(1, await store.RecoverAsync(now, None));

        var due = Assert.Single(await ToListAsync(store.ListDueAsync(now, 10, None)));
        Assert.Equal(claimed.QueueId, due.QueueId);
        Assert.Null(due.LeaseOwner);
        Assert.Null(due.LeaseExpiresAt);
        Assert.Equal(claimed.NextAttemptAt, due.NextAttemptAt);
        Assert.NotEqual(claimed.ETag, due.ETag);
        Assert.Null(await store.TryUpdateAsync(claimed, None));

        var untouched = (await store.GetAsync(scheduled.Domain, scheduled.QueueId, None))!;
        Assert.Equal(scheduled.ETag, untouched.ETag);
        Assert.Equal(0, await store.RecoverAsync(now, None));
    }

    [Fact]
    public async Task CreateAsync_BeforeOpen_ThrowsInsteadOfWaitingForTheWriter()
    {
        using var store = new SqliteSpoolStore(Path.Combine(_spool.Path, "not-yet"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => store.CreateAsync(SpoolRecords.Sample(), None));
        Assert.False(Directory.Exists(Path.Combine(_spool.Path, "not-yet")));
    }

    [Fact]
    public async Task Dispose_ThenWrite_ThrowsObjectDisposed()
    {
        var store = new SqliteSpoolStore(_spool.Path);
        store.Open();
        store.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.CreateAsync(SpoolRecords.Sample(), None));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.GetAsync("example.test", QueueId.New(SpoolRecords.T0), None));
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
