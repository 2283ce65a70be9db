using System.Text;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing.Azurite;
using BackupMx.Testing.Contracts;

namespace BackupMx.Azure.Tests;

/// <summary>
/// Writes whose first request was carried out by the service but whose response never arrived,
/// so the SDK's own retry sends them again and meets our own write (409 on insert, 412 on update).
/// </summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class LostResponseTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task CreateAsync_FirstInsertStoredButResponseLost_SucceedsWithTheStoredETag()
    {
        var (store, lose) = await CreateStoreAsync();
        var record = SpoolRecords.Sample();

        lose.Arm(RequestMethod.Post);
        record = await store.CreateAsync(record, None);

        Assert.Equal(1, lose.Lost);
        var stored = await store.GetAsync(record.Domain, record.QueueId, None);
        Assert.Equal(stored!.ETag, record.ETag);
        Assert.NotNull(await store.TryUpdateAsync(record with { Attempts = 1 }, None));
    }

    [Fact]
    public async Task CreateAsync_KeyTakenByAnotherWrite_StillConflicts()
    {
        var (store, _) = await CreateStoreAsync();
        var record = SpoolRecords.Sample();
        await store.CreateAsync(record, None);

        await Assert.ThrowsAsync<SpoolConflictException>(() => store.CreateAsync(record, None));
    }

    [Fact]
    public async Task TryUpdateAsync_UpdateStoredButResponseLost_ReturnsTrueWithTheStoredETag()
    {
        var (store, lose) = await CreateStoreAsync();
        var record = SpoolRecords.Sample();
        record = await store.CreateAsync(record, None);

        lose.Arm(RequestMethod.Put);
        record = await store.TryUpdateAsync(record with { Attempts = 3 }, None);
        Assert.NotNull(record);

        Assert.Equal(1, lose.Lost);
        var stored = await store.GetAsync(record.Domain, record.QueueId, None);
        Assert.Equal(3, stored!.Attempts);
        Assert.Equal(stored.ETag, record.ETag);
    }

    [Fact]
    public async Task TryUpdateAsync_ChangedByAnotherWriter_StillLoses()
    {
        var (store, _) = await CreateStoreAsync();
        var record = SpoolRecords.Sample();
        record = await store.CreateAsync(record, None);
        await store.UpdateAsync(record with { Attempts = 7 }, None);

        Assert.Null(await store.TryUpdateAsync(record with { Attempts = 3 }, None));
        Assert.Equal(7, (await store.GetAsync(record.Domain, record.QueueId, None))!.Attempts);
    }

    [Fact]
    public async Task AcceptAsync_RecordInsertResponseLost_AcceptsWithRecordAndBody()
    {
        var (store, lose) = await CreateStoreAsync();
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(AzuriteFixture.UniqueName("bodies"));
        await container.CreateIfNotExistsAsync();
        var bodies = new BlobBodyStore(container);
        using var h = new BackupMx.Testing.CoreHarness(spool: store, bodies: bodies);

        lose.Arm(RequestMethod.Post);
        var result = await h.Intake.AcceptAsync(IntakeMessage(), None);

        Assert.Equal(1, lose.Lost);
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
        Assert.NotNull(await store.GetAsync("example.test", id, None));
        await using var body = await bodies.OpenReadAsync(id, None);
        Assert.True(body.CanRead);
    }

    [Fact]
    public async Task OpenReadAsync_ContainerMissing_IsNotTakenForAMissingBody()
    {
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(AzuriteFixture.UniqueName("absent"));
        var bodies = new BlobBodyStore(container);

        var ex = await Assert.ThrowsAnyAsync<Exception>(() => bodies.OpenReadAsync(QueueId.New(SpoolRecords.T0), None));
        Assert.IsNotType<BodyNotFoundException>(ex);
    }

    private async Task<(TableSpoolStore Store, LoseFirstResponse Lose)> CreateStoreAsync()
    {
        var lose = new LoseFirstResponse();
        var options = new TableClientOptions();
        options.Retry.Delay = TimeSpan.FromMilliseconds(1);
        options.Retry.MaxRetries = 3;
        options.AddPolicy(lose, HttpPipelinePosition.PerRetry);
        var table = new TableServiceClient(azurite.ConnectionString, options).GetTableClient(AzuriteFixture.UniqueName("spool"));
        await table.CreateIfNotExistsAsync();
        return (new TableSpoolStore(table), lose);
    }

    private static IncomingMessage IntakeMessage() => new()
    {
        Sender = "alice@sender.test",
        Recipients = [new IncomingRecipient("bob@example.test")],
        ClientAddress = "192.0.2.10",
        HeloName = "mail.sender.test",
        Content = MessageContent.FromBytes(Encoding.ASCII.GetBytes("Subject: hi\r\n\r\nHello.\r\n")),
    };

    /// <summary>Lets the armed request reach the service, then fails as if the connection dropped before the response.</summary>
    private sealed class LoseFirstResponse : HttpPipelinePolicy
    {
        private RequestMethod? _armed;

        public int Lost { get; private set; }

        public void Arm(RequestMethod method) => _armed = method;

        public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            await ProcessNextAsync(message, pipeline).ConfigureAwait(false);
            Drop(message);
        }

        public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            ProcessNext(message, pipeline);
            Drop(message);
        }

        private void Drop(HttpMessage message)
        {
            if (_armed is { } method && message.Request.Method == method && message.Response.Status < 300)
            {
                _armed = null;
                Lost++;
                throw new IOException("The connection was reset before the response arrived.");
            }
        }
    }
}
