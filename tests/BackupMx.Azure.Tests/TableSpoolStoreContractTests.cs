using System.Globalization;
using Azure.Data.Tables;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing.Azurite;
using BackupMx.Testing.Contracts;

namespace BackupMx.Azure.Tests;

[Collection(AzuriteFixture.CollectionName)]
public sealed class TableSpoolStoreContractTests(AzuriteFixture azurite) : SpoolStoreContract
{
    private static readonly CancellationToken None = CancellationToken.None;

    protected override async Task<ISpoolStore> CreateStoreAsync() => await CreateTableStoreAsync();

    protected override async Task CorruptAsync(ISpoolStore store, SpoolRecord record)
    {
        var table = ((TableSpoolStore)store).Table;
        var entity = new TableEntity(record.Domain.ToLowerInvariant(), record.QueueId) { ["Recipients"] = "[{\"address\": " };
        await table.UpdateEntityAsync(entity, global::Azure.ETag.All, TableUpdateMode.Merge);
    }

    private async Task<TableSpoolStore> CreateTableStoreAsync()
    {
        var table = new TableServiceClient(azurite.ConnectionString).GetTableClient(AzuriteFixture.UniqueName("spool"));
        await table.CreateIfNotExistsAsync();
        return new TableSpoolStore(table);
    }

    [Fact]
    public async Task CreateAsync_ThousandRecipientsWithLongReplies_RoundTripsCompressed()
    {
        var store = await CreateTableStoreAsync();
        var record = SpoolRecords.Sample(recipients: 1000);
        record = record with
        {
            Recipients = record.Recipients.Select((recipient, i) => recipient with
            {
                LastReply = new SmtpReply(451, "4.2.1", $"mailbox {i} temporarily unavailable, please try again later; the quick brown fox jumps over the lazy dog"),
                RemoteHost = "mx1.example.test",
                Status = i % 7 == 0 ? RecipientStatus.Delivered : recipient.Status,
                CompletedAt = i % 7 == 0 ? SpoolRecords.T0.AddSeconds(i) : recipient.CompletedAt,
            }).ToArray(),
        };

        record = await store.CreateAsync(record, None);
        var entity = (await store.Table.GetEntityAsync<TableEntity>("example.test", record.QueueId)).Value;
        Assert.Null(entity.GetString("Recipients"));
        Assert.True(entity.GetInt32("RecipientsBrParts") >= 1);

        var read = await store.GetAsync(record.Domain, record.QueueId, None);
        Assert.NotNull(read);
        Assert.Equal(1000, read.Recipients.Count);
        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(record.Recipients[i].Address, read.Recipients[i].Address);
            Assert.Equal(record.Recipients[i].Status, read.Recipients[i].Status);
            Assert.Equal(record.Recipients[i].LastReply, read.Recipients[i].LastReply);
            Assert.Equal(record.Recipients[i].CompletedAt, read.Recipients[i].CompletedAt);
        }

        // Back under the plain-text limit: Replace mode must drop the compressed columns.
        Assert.NotNull(await store.TryUpdateAsync(read with { Recipients = read.Recipients.Take(2).ToArray() }, None));
        entity = (await store.Table.GetEntityAsync<TableEntity>("example.test", record.QueueId)).Value;
        Assert.NotNull(entity.GetString("Recipients"));
        Assert.DoesNotContain(entity.Keys, k => k.StartsWith("RecipientsBr", StringComparison.Ordinal));
        Assert.Equal(2, (await store.GetAsync(record.Domain, record.QueueId, None))!.Recipients.Count);
    }

    [Fact]
    public async Task CreateAsync_HundredRecipients_StayPlainJson()
    {
        var store = await CreateTableStoreAsync();
        var record = SpoolRecords.Sample(recipients: 100);
        record = await store.CreateAsync(record, None);

        var entity = (await store.Table.GetEntityAsync<TableEntity>("example.test", record.QueueId)).Value;
        Assert.StartsWith("[{", entity.GetString("Recipients"), StringComparison.Ordinal);
        Assert.Equal(100, (await store.GetAsync(record.Domain, record.QueueId, None))!.Recipients.Count);
    }

    [Fact]
    public async Task Instants_RoundTripToTheTick_IncludingExtremesAndOffsets()
    {
        var store = await CreateTableStoreAsync();
        var record = SpoolRecords.Sample().WithRecipient(0, r => r with
        {
            CompletedAt = SpoolRecords.T0.AddTicks(1),
            LastReply = SmtpReply.LocalTransient("4.4.1", "connection refused"),
        }) with
        {
            NextAttemptAt = default,
            LeaseExpiresAt = DateTimeOffset.MaxValue,
            LastAttemptAt = new DateTimeOffset(2026, 11, 27, 14, 0, 0, TimeSpan.FromHours(2)).AddTicks(1234567),
        };

        record = await store.CreateAsync(record, None);
        var read = (await store.GetAsync(record.Domain, record.QueueId, None))!;

        Assert.Equal(default, read.NextAttemptAt);
        Assert.Equal(DateTimeOffset.MaxValue, read.LeaseExpiresAt);
        Assert.Equal(record.LastAttemptAt, read.LastAttemptAt);
        Assert.Equal(record.LastAttemptAt!.Value.UtcTicks, read.LastAttemptAt!.Value.UtcTicks);
        Assert.Equal(SpoolRecords.T0.AddTicks(1), read.Recipients[0].CompletedAt);
        Assert.False(read.Recipients[0].LastReply!.FromRemote);
    }

    [Fact]
    public async Task ListDueAsync_TicksOfDifferentLength_CompareAsNumbers()
    {
        // Azurite compares Int64 filters as text; the fixed-width string column must not.
        var store = await CreateTableStoreAsync();
        var never = SpoolRecords.Sample(nextAttemptAt: DateTimeOffset.MaxValue);
        var ancient = SpoolRecords.Sample(nextAttemptAt: new DateTimeOffset(1, 1, 2, 0, 0, 0, TimeSpan.Zero));
        var now = SpoolRecords.Sample(nextAttemptAt: SpoolRecords.T0);
        foreach (var r in new[] { never, ancient, now })
        {
            await store.CreateAsync(r, None);
        }

        var due = await ToListAsync(store.ListDueAsync(SpoolRecords.T0, 10, None));
        Assert.Equal([ancient.QueueId, now.QueueId], due.Select(r => r.QueueId));

        var early = await ToListAsync(store.ListDueAsync(new DateTimeOffset(1000, 1, 1, 0, 0, 0, TimeSpan.Zero), 10, None));
        Assert.Equal([ancient.QueueId], early.Select(r => r.QueueId));
    }

    [Fact]
    public async Task ListDueAsync_SameInstant_OrdersByQueueId()
    {
        var store = await CreateTableStoreAsync();
        var records = Enumerable.Range(0, 5).Select(i => SpoolRecords.Sample(queueId: QueueId.New(SpoolRecords.T0) + "-" + i.ToString(CultureInfo.InvariantCulture), domain: $"d{i}.test")).ToList();
        foreach (var r in records.AsEnumerable().Reverse())
        {
            await store.CreateAsync(r, None);
        }

        var due = await ToListAsync(store.ListDueAsync(SpoolRecords.T0, 3, None));
        Assert.Equal(records.Select(r => r.QueueId).Order(StringComparer.Ordinal).Take(3), due.Select(r => r.QueueId));
    }

    [Fact]
    public async Task GetAsync_DomainInOtherCase_FindsTheRecordAndKeepsItsSpelling()
    {
        var store = await CreateTableStoreAsync();
        var record = SpoolRecords.Sample(domain: "Example.TEST");
        record = await store.CreateAsync(record, None);

        var read = await store.GetAsync("example.test", record.QueueId, None);
        Assert.Equal("Example.TEST", read!.Domain);
        Assert.Single(await ToListAsync(store.ListDomainAsync("EXAMPLE.test", None)));
    }

    [Theory]
    [InlineData("we#ird/dom?ain.test")]
    [InlineData("back\\slash%20.test")]
    [InlineData("[192.0.2.1]")]
    public async Task Domain_WithCharactersKeysCannotHold_RoundTrips(string domain)
    {
        var store = await CreateTableStoreAsync();
        var record = SpoolRecords.Sample(domain: domain);
        record = await store.CreateAsync(record, None);

        Assert.Equal(domain, (await store.GetAsync(domain, record.QueueId, None))!.Domain);
        Assert.Equal(record.QueueId, Assert.Single(await ToListAsync(store.ListDomainAsync(domain, None))).QueueId);
        record = await store.UpdateAsync(record! with { Attempts = 1 }, None);
        Assert.True(await store.TryDeleteAsync(record, None));
    }

    [Fact]
    public async Task TryUpdateAsync_NullingAColumn_RemovesIt()
    {
        var store = await CreateTableStoreAsync();
        var record = SpoolRecords.Sample() with { LeaseOwner = "w1", LeaseExpiresAt = SpoolRecords.T0.AddMinutes(5) };
        record = await store.CreateAsync(record, None);

        record = await store.UpdateAsync(record with { LeaseOwner = null, LeaseExpiresAt = null }, None);

        var read = (await store.GetAsync(record.Domain, record.QueueId, None))!;
        Assert.Null(read.LeaseOwner);
        Assert.Null(read.LeaseExpiresAt);
    }

    [Fact]
    public async Task TryUpdateAsync_RecordWithoutETag_ReturnsFalse()
    {
        var store = await CreateTableStoreAsync();
        var record = SpoolRecords.Sample();
        record = await store.CreateAsync(record, None) with { ETag = null };
        Assert.Null(await store.TryUpdateAsync(record, None));
        Assert.False(await store.TryDeleteAsync(record, None));
    }
}
