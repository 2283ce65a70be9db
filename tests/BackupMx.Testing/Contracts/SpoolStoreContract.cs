using BackupMx.Core.Forwarding;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Xunit;

namespace BackupMx.Testing.Contracts;

/// <summary>
/// What every <see cref="ISpoolStore"/> must do. Each implementation's test project
/// derives from this and supplies a fresh, empty store, so embedded and Azure modes
/// cannot drift apart.
/// </summary>
public abstract class SpoolStoreContract
{
    /// <summary>A new, empty store.</summary>
    protected abstract Task<ISpoolStore> CreateStoreAsync();

    /// <summary>
    /// Damages the stored form of <paramref name="record"/> (created in <paramref name="store"/>) the
    /// way a bad disk or a hand edit could, so that reading it fails.
    /// </summary>
    protected abstract Task CorruptAsync(ISpoolStore store, SpoolRecord record);

    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task CreateAsync_ThenGet_RoundTripsEveryField()
    {
        var store = await CreateStoreAsync();
        var record = SpoolRecords.Sample().WithRecipient(1, r => r with
        {
            Status = RecipientStatus.Failed,
            LastReply = new SmtpReply(550, "5.1.1", "no such user"),
            FailureStatus = "5.1.1",
            NeedsNotification = true,
            RemoteHost = "mx1.example.test",
            CompletedAt = SpoolRecords.T0.AddMinutes(1),
        }) with
        {
            Attempts = 3,
            LastError = "451 4.4.1 timeout",
            LastAttemptAt = SpoolRecords.T0.AddMinutes(2),
            WakeUpToken = "42",
        };

        record = await store.CreateAsync(record, None);
        Assert.False(string.IsNullOrEmpty(record.ETag));

        var read = await store.GetAsync(record.Domain, record.QueueId, None);
        Assert.NotNull(read);
        Assert.Equal(record.ETag, read.ETag);
        Assert.Equal(record.QueueId, read.QueueId);
        Assert.Equal(record.Kind, read.Kind);
        Assert.Equal(record.Domain, read.Domain);
        Assert.Equal(record.Sender, read.Sender);
        Assert.Equal(record.Parameters, read.Parameters);
        Assert.Equal(record.ReceivedAt, read.ReceivedAt);
        Assert.Equal(record.ExpiresAt, read.ExpiresAt);
        Assert.Equal(record.NextAttemptAt, read.NextAttemptAt);
        Assert.Equal(3, read.Attempts);
        Assert.Equal(record.LastError, read.LastError);
        Assert.Equal(record.LastAttemptAt, read.LastAttemptAt);
        Assert.Equal(record.BodyLength, read.BodyLength);
        Assert.Equal(record.ClientAddress, read.ClientAddress);
        Assert.Equal(record.HeloName, read.HeloName);
        Assert.Equal("42", read.WakeUpToken);
        Assert.Equal(2, read.Recipients.Count);
        Assert.Equal("user1@example.test", read.Recipients[0].Address);
        Assert.Equal("FAILURE,DELAY", read.Recipients[0].Notify);
        Assert.Equal("rfc822;User1@example.test", read.Recipients[0].OriginalRecipient);
        Assert.Equal(RecipientStatus.Pending, read.Recipients[0].Status);
        Assert.Equal(RecipientStatus.Failed, read.Recipients[1].Status);
        Assert.Equal(new SmtpReply(550, "5.1.1", "no such user"), read.Recipients[1].LastReply);
        Assert.Equal("5.1.1", read.Recipients[1].FailureStatus);
        Assert.True(read.Recipients[1].NeedsNotification);
        Assert.Equal("mx1.example.test", read.Recipients[1].RemoteHost);
        Assert.Equal(SpoolRecords.T0.AddMinutes(1), read.Recipients[1].CompletedAt);
    }

    /// <summary>
    /// Every settable property of the record, of its recipients and of its parameters is stored: each
    /// is given a value other than its default (found by reflection, so a property added later is
    /// covered without a change here) and must come back from the store. A store whose mapping
    /// forgets a new property fails here rather than dropping it silently.
    /// </summary>
    [Fact]
    public async Task CreateAsync_EveryStoredProperty_RoundTrips()
    {
        var store = await CreateStoreAsync();
        var record = StoredProperties.FullyPopulated();

        await store.CreateAsync(record, None);
        var read = await store.GetAsync(record.Domain, record.QueueId, None);

        Assert.NotNull(read);
        StoredProperties.AssertSame(record, read);

        // And again after an update, which rewrites every column.
        Assert.NotNull(await store.TryUpdateAsync(read, None));
        var again = await store.GetAsync(record.Domain, record.QueueId, None);
        Assert.NotNull(again);
        StoredProperties.AssertSame(record, again);
    }

    [Fact]
    public async Task TryUpdateAsync_DeliveredRecipientOwedARelayedNotice_KeepsTheMarkSoTheRecordIsNotFinished()
    {
        var store = await CreateStoreAsync();
        var record = await store.CreateAsync(SpoolRecords.Sample(recipients: 1), None);

        // The state between a delivery to a primary without DSN and the queuing of the "relayed" DSN.
        record = record.WithRecipient(0, r => r with
        {
            Status = RecipientStatus.Delivered,
            LastReply = new SmtpReply(250, "2.0.0", "queued as 4XYZ"),
            RemoteHost = "mx1.example.test",
            CompletedAt = SpoolRecords.T0.AddMinutes(1),
            NeedsNotification = true,
        });
        Assert.NotNull(await store.TryUpdateAsync(record, None));

        var read = await store.GetAsync(record.Domain, record.QueueId, None);
        var stored = Assert.Single(read!.Recipients);
        Assert.Equal(RecipientStatus.Delivered, stored.Status);
        Assert.True(stored.NeedsNotification);
        Assert.Equal(DsnAction.Relayed, stored.NoticeAction);
        Assert.Equal(new SmtpReply(250, "2.0.0", "queued as 4XYZ"), stored.LastReply);
        Assert.Equal("mx1.example.test", stored.RemoteHost);
        Assert.Equal(SpoolRecords.T0.AddMinutes(1), stored.CompletedAt);
        Assert.False(read.IsFinished);
    }

    [Fact]
    public async Task CreateAsync_SameQueueIdTwice_ThrowsSpoolConflict()
    {
        var store = await CreateStoreAsync();
        var record = await store.CreateAsync(SpoolRecords.Sample(), None);
        await Assert.ThrowsAsync<SpoolConflictException>(() => store.CreateAsync(SpoolRecords.Sample(record.QueueId), None));
    }

    [Fact]
    public async Task GetAsync_Unknown_ReturnsNull()
    {
        var store = await CreateStoreAsync();
        Assert.Null(await store.GetAsync("example.test", QueueId.New(SpoolRecords.T0), None));
    }

    [Fact]
    public async Task TryUpdateAsync_WithCurrentETag_SucceedsAndChangesETag()
    {
        var store = await CreateStoreAsync();
        var record = await store.CreateAsync(SpoolRecords.Sample(), None);
        var before = record.ETag;

        record = await store.TryUpdateAsync(record with { Attempts = 1, LeaseOwner = "worker-1", LeaseExpiresAt = SpoolRecords.T0.AddMinutes(5) }, None);
        Assert.NotNull(record);
        Assert.NotEqual(before, record.ETag);

        var read = await store.GetAsync(record.Domain, record.QueueId, None);
        Assert.Equal(1, read!.Attempts);
        Assert.Equal("worker-1", read.LeaseOwner);
        Assert.Equal(SpoolRecords.T0.AddMinutes(5), read.LeaseExpiresAt);
        Assert.Equal(record.ETag, read.ETag);
    }

    [Fact]
    public async Task TryUpdateAsync_WithStaleETag_ReturnsFalseAndKeepsWinner()
    {
        var store = await CreateStoreAsync();
        var record = await store.CreateAsync(SpoolRecords.Sample(), None);
        var first = await store.GetAsync(record.Domain, record.QueueId, None);
        var second = await store.GetAsync(record.Domain, record.QueueId, None);

        Assert.NotNull(await store.TryUpdateAsync(first! with { LeaseOwner = "first" }, None));
        Assert.Null(await store.TryUpdateAsync(second! with { LeaseOwner = "second" }, None));

        var read = await store.GetAsync(record.Domain, record.QueueId, None);
        Assert.Equal("first", read!.LeaseOwner);
    }

    [Fact]
    public async Task TryUpdateAsync_ConcurrentClaims_ExactlyOneWins()
    {
        var store = await CreateStoreAsync();
        var record = await store.CreateAsync(SpoolRecords.Sample(), None);

        var copies = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => store.GetAsync(record.Domain, record.QueueId, None)));
        var results = await Task.WhenAll(copies.Select((c, i) => store.TryUpdateAsync(c! with { LeaseOwner = "w" + i }, None)));

        Assert.Equal(1, results.Count(r => r is not null));
    }

    [Fact]
    public async Task TryUpdateAsync_DeletedRecord_ReturnsFalse()
    {
        var store = await CreateStoreAsync();
        var record = await store.CreateAsync(SpoolRecords.Sample(), None);
        var copy = await store.GetAsync(record.Domain, record.QueueId, None);
        Assert.True(await store.TryDeleteAsync(record, None));
        Assert.Null(await store.TryUpdateAsync(copy!, None));
    }

    [Fact]
    public async Task TryDeleteAsync_StaleETag_ReturnsFalseAndKeepsRecord()
    {
        var store = await CreateStoreAsync();
        var record = await store.CreateAsync(SpoolRecords.Sample(), None);
        var stale = await store.GetAsync(record.Domain, record.QueueId, None);
        record = await store.TryUpdateAsync(record with { Attempts = 2 }, None);
        Assert.NotNull(record);

        Assert.False(await store.TryDeleteAsync(stale!, None));
        Assert.NotNull(await store.GetAsync(record.Domain, record.QueueId, None));
        Assert.True(await store.TryDeleteAsync(record, None));
        Assert.Null(await store.GetAsync(record.Domain, record.QueueId, None));
    }

    [Fact]
    public async Task ListDomainAsync_ReturnsOnlyThatDomain()
    {
        var store = await CreateStoreAsync();
        var a1 = SpoolRecords.Sample(domain: "a.test");
        var a2 = SpoolRecords.Sample(domain: "a.test");
        var b1 = SpoolRecords.Sample(domain: "b.test");
        foreach (var r in new[] { a1, a2, b1 })
        {
            await store.CreateAsync(r, None);
        }

        var ids = await ToListAsync(store.ListDomainAsync("a.test", None));
        Assert.Equal(new[] { a1.QueueId, a2.QueueId }.Order(), ids.Select(r => r.QueueId).Order());
        Assert.All(ids, r => Assert.False(string.IsNullOrEmpty(r.ETag)));
    }

    [Fact]
    public async Task ListDueAsync_ReturnsDueRecordsEarliestFirstUpToMax()
    {
        var store = await CreateStoreAsync();
        var late = SpoolRecords.Sample(nextAttemptAt: SpoolRecords.T0.AddMinutes(30));
        var first = SpoolRecords.Sample(nextAttemptAt: SpoolRecords.T0.AddMinutes(1));
        var second = SpoolRecords.Sample(nextAttemptAt: SpoolRecords.T0.AddMinutes(2), domain: "other.test");
        var third = SpoolRecords.Sample(nextAttemptAt: SpoolRecords.T0.AddMinutes(3));
        foreach (var r in new[] { late, third, first, second })
        {
            await store.CreateAsync(r, None);
        }

        var due = await ToListAsync(store.ListDueAsync(SpoolRecords.T0.AddMinutes(10), 2, None));
        Assert.Equal([first.QueueId, second.QueueId], due.Select(r => r.QueueId));

        var all = await ToListAsync(store.ListDueAsync(SpoolRecords.T0.AddMinutes(10), 100, None));
        Assert.Equal([first.QueueId, second.QueueId, third.QueueId], all.Select(r => r.QueueId));

        var next = await ToListAsync(store.ListDueAsync(DateTimeOffset.MaxValue, 1, None));
        Assert.Equal(first.QueueId, Assert.Single(next).QueueId);
    }

    [Fact]
    public async Task ListAllAsync_ReturnsEveryRecord()
    {
        var store = await CreateStoreAsync();
        var records = Enumerable.Range(0, 5).Select(i => SpoolRecords.Sample(domain: i % 2 == 0 ? "a.test" : "b.test")).ToList();
        foreach (var r in records)
        {
            await store.CreateAsync(r, None);
        }

        var all = await ToListAsync(store.ListAllAsync(None));
        Assert.Equal(records.Select(r => r.QueueId).Order(), all.Select(r => r.QueueId).Order());
    }

    [Fact]
    public async Task NullSenderAndNoParameters_RoundTrip()
    {
        var store = await CreateStoreAsync();
        var record = new SpoolRecord
        {
            QueueId = QueueId.New(SpoolRecords.T0) + "-d0",
            Kind = MessageKind.Dsn,
            Domain = "sender.test",
            Sender = string.Empty,
            Recipients = [new RecipientState { Address = "alice@sender.test", Notify = "NEVER" }],
            ReceivedAt = SpoolRecords.T0,
            ExpiresAt = SpoolRecords.T0.AddDays(5),
            NextAttemptAt = SpoolRecords.T0,
        };
        await store.CreateAsync(record, None);
        var read = await store.GetAsync("sender.test", record.QueueId, None);
        Assert.NotNull(read);
        Assert.Equal(string.Empty, read.Sender);
        Assert.Equal(MessageKind.Dsn, read.Kind);
        Assert.Equal(new MailParameters(), read.Parameters);
        Assert.Null(read.ClientAddress);
        Assert.Null(read.LeaseExpiresAt);
        Assert.Null(read.WakeUpToken);
    }

    /// <summary>A DSN about several recipients is a record like any other (row key, SQLite row).</summary>
    [Theory]
    [InlineData(2)]
    [InlineData(100)]
    public async Task CreateAsync_DsnAboutSeveralRecipients_RoundTripsAndIsFoundAgain(int recipients)
    {
        var store = await CreateStoreAsync();
        var original = SpoolRecords.Sample(recipients: recipients);
        var id = DsnQueue.DsnId(original, original.Recipients.Select(r => new DsnRecipient(r, DsnAction.Failed)).ToList());
        var record = new SpoolRecord
        {
            QueueId = id,
            Kind = MessageKind.Dsn,
            Domain = "sender.test",
            Sender = string.Empty,
            Recipients = [new RecipientState { Address = "alice@sender.test", Notify = "NEVER" }],
            ReceivedAt = SpoolRecords.T0,
            ExpiresAt = SpoolRecords.T0.AddDays(5),
            NextAttemptAt = SpoolRecords.T0,
        };

        record = await store.CreateAsync(record, None);

        Assert.Equal(id, (await store.GetAsync("sender.test", id, None))?.QueueId);
        await Assert.ThrowsAsync<SpoolConflictException>(() => store.CreateAsync(record with { ETag = null }, None));
        Assert.True(await store.TryDeleteAsync(record, None));
    }

    /// <summary>Ids become row keys and file names: anything but a queue id is refused, never stored.</summary>
    [Theory]
    [InlineData("01M9713EJV9GGRBSHABE-d0.1")]
    [InlineData("01M9713EJV9GGRBSHABE/d0")]
    [InlineData("short")]
    public async Task CreateAndUpdate_IdThatIsNotAQueueId_ThrowArgumentExceptionAndStoreNothing(string id)
    {
        var store = await CreateStoreAsync();

        await Assert.ThrowsAsync<ArgumentException>(() => store.CreateAsync(SpoolRecords.Sample(id), None));
        var stale = SpoolRecords.Sample(id) with { ETag = "1" };
        await Assert.ThrowsAsync<ArgumentException>(() => store.TryUpdateAsync(stale, None));
        Assert.Empty(await ToListAsync(store.ListAllAsync(None)));
    }

    [Fact]
    public async Task TryUpdateAndDelete_RecordNeverStored_ReturnFalse()
    {
        var store = await CreateStoreAsync();
        var record = SpoolRecords.Sample();

        Assert.Null(await store.TryUpdateAsync(record, None));
        Assert.False(await store.TryDeleteAsync(record, None));
        Assert.Null(await store.GetAsync(record.Domain, record.QueueId, None));
    }

    [Fact]
    public async Task Timestamps_WithSubMillisecondTicks_RoundTripExactly()
    {
        // Real clocks have 100 ns ticks; a store that rounds them makes a record read back unequal to what was written.
        var store = await CreateStoreAsync();
        var t = SpoolRecords.T0.AddTicks(1_234_567);
        var record = SpoolRecords.Sample(nextAttemptAt: t.AddTicks(1)).WithRecipient(0, r => r with { CompletedAt = t.AddTicks(4) }) with
        {
            LastAttemptAt = t.AddTicks(2),
            LeaseOwner = "w",
            LeaseExpiresAt = t.AddTicks(3),
        };
        await store.CreateAsync(record, None);

        var read = await store.GetAsync(record.Domain, record.QueueId, None);
        Assert.NotNull(read);
        Assert.Equal(record.NextAttemptAt, read.NextAttemptAt);
        Assert.Equal(record.LastAttemptAt, read.LastAttemptAt);
        Assert.Equal(record.LeaseExpiresAt, read.LeaseExpiresAt);
        Assert.Equal(record.Recipients[0].CompletedAt, read.Recipients[0].CompletedAt);
    }

    [Fact]
    public async Task TryDeleteAsync_AlreadyDeleted_ReturnsFalse()
    {
        var store = await CreateStoreAsync();
        var record = await store.CreateAsync(SpoolRecords.Sample(), None);
        var copy = await store.GetAsync(record.Domain, record.QueueId, None);
        Assert.True(await store.TryDeleteAsync(record, None));
        Assert.False(await store.TryDeleteAsync(copy!, None));
    }

    [Fact]
    public async Task TryUpdateAsync_ETagFromBeforeDeleteAndRecreate_ReturnsFalse()
    {
        // DSN records have deterministic ids, so one id can be deleted and created again; a copy
        // read before must not be able to overwrite the new record.
        var store = await CreateStoreAsync();
        var record = await store.CreateAsync(SpoolRecords.Sample(), None);
        var stale = await store.GetAsync(record.Domain, record.QueueId, None);
        Assert.True(await store.TryDeleteAsync(record, None));

        var recreated = SpoolRecords.Sample(record.QueueId);
        await store.CreateAsync(recreated, None);

        Assert.Null(await store.TryUpdateAsync(stale! with { LeaseOwner = "stale" }, None));
        Assert.False(await store.TryDeleteAsync(stale, None));
        Assert.Null((await store.GetAsync(record.Domain, record.QueueId, None))!.LeaseOwner);
    }

    [Fact]
    public async Task ListAllAsync_UnreadableRecord_QuarantinesItAndListsItsNeighbours()
    {
        var store = await CreateStoreAsync();
        var records = Enumerable.Range(0, 3).Select(i => SpoolRecords.Sample(domain: i == 1 ? "b.test" : "a.test")).ToList();
        foreach (var r in records)
        {
            await store.CreateAsync(r, None);
        }

        await CorruptAsync(store, records[1]);

        var all = await ToListAsync(store.ListAllAsync(None));
        Assert.Equal(new[] { records[0].QueueId, records[2].QueueId }.Order(StringComparer.Ordinal), all.Select(r => r.QueueId).Order(StringComparer.Ordinal));
        var quarantined = Assert.Single(await ToListAsync(store.ListQuarantinedAsync(None)));
        Assert.Equal(records[1].QueueId, quarantined.QueueId);
        Assert.Equal("b.test", quarantined.Domain, ignoreCase: true);
        Assert.False(string.IsNullOrWhiteSpace(quarantined.Reason));

        // Moved, not merely skipped: later reads no longer meet it.
        Assert.Null(await store.GetAsync(records[1].Domain, records[1].QueueId, None));
        Assert.Equal(2, (await ToListAsync(store.ListAllAsync(None))).Count);
        Assert.Empty(await ToListAsync(store.ListDomainAsync("b.test", None)));
    }

    [Fact]
    public async Task ListDueAsync_UnreadableRecordFirstInLine_ReturnsTheNextOnes()
    {
        var store = await CreateStoreAsync();
        var bad = SpoolRecords.Sample(nextAttemptAt: SpoolRecords.T0.AddMinutes(1));
        var second = SpoolRecords.Sample(nextAttemptAt: SpoolRecords.T0.AddMinutes(2));
        var third = SpoolRecords.Sample(nextAttemptAt: SpoolRecords.T0.AddMinutes(3));
        foreach (var r in new[] { bad, second, third })
        {
            await store.CreateAsync(r, None);
        }

        await CorruptAsync(store, bad);

        var due = await ToListAsync(store.ListDueAsync(SpoolRecords.T0.AddMinutes(10), 2, None));
        Assert.Equal([second.QueueId, third.QueueId], due.Select(r => r.QueueId));
        Assert.Equal(bad.QueueId, Assert.Single(await ToListAsync(store.ListQuarantinedAsync(None))).QueueId);
    }

    [Fact]
    public async Task GetAsync_UnreadableRecord_ReturnsNullAndQuarantinesIt()
    {
        var store = await CreateStoreAsync();
        var record = SpoolRecords.Sample();
        var neighbour = SpoolRecords.Sample();
        await store.CreateAsync(record, None);
        await store.CreateAsync(neighbour, None);
        Assert.Empty(await ToListAsync(store.ListQuarantinedAsync(None)));

        await CorruptAsync(store, record);

        Assert.Null(await store.GetAsync(record.Domain, record.QueueId, None));
        Assert.Equal(record.QueueId, Assert.Single(await ToListAsync(store.ListQuarantinedAsync(None))).QueueId);
        Assert.Equal(neighbour.QueueId, Assert.Single(await ToListAsync(store.ListDomainAsync(record.Domain, None))).QueueId);
    }

    protected static async Task<List<T>> ToListAsync<T>(IAsyncEnumerable<T> source)
    {
        var list = new List<T>();
        await foreach (var item in source)
        {
            list.Add(item);
        }

        return list;
    }
}
