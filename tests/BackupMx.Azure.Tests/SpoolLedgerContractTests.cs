using Azure.Data.Tables;
using Azure.Storage.Blobs;
using BackupMx.Core.Ports;
using BackupMx.Testing.Azurite;
using BackupMx.Testing.Contracts;

namespace BackupMx.Azure.Tests;

/// <summary>The ledger over the Azure adapters: Tables and Blobs on Azurite, the Service Bus adapter over its fake sender.</summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class TableSpoolLedgerContractTests(AzuriteFixture azurite) : SpoolLedgerContract
{
    protected override async Task<(ISpoolStore Spool, IBodyStore Bodies, IWakeUpQueue WakeUps)> CreatePortsAsync()
    {
        var table = new TableServiceClient(azurite.ConnectionString).GetTableClient(AzuriteFixture.UniqueName("spool"));
        await table.CreateIfNotExistsAsync();
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(AzuriteFixture.UniqueName("bodies"));
        await container.CreateIfNotExistsAsync();
        return (new TableSpoolStore(table), new BlobBodyStore(container, BlobBodyStore.DefaultBlockSize), new ServiceBusWakeUpQueue(new FakeSender(), new FakeReceiver()));
    }
}
