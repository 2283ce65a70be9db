using Azure.Data.Tables;
using BackupMx.Core.Ports;
using BackupMx.Testing.Azurite;
using BackupMx.Testing.Contracts;

namespace BackupMx.Azure.Tests;

[Collection(AzuriteFixture.CollectionName)]
public sealed class TablePrimaryStatusStoreContractTests(AzuriteFixture azurite) : PrimaryStatusStoreContract
{
    protected override async Task<IPrimaryStatusStore> CreateStoreAsync()
    {
        var table = new TableServiceClient(azurite.ConnectionString).GetTableClient(AzuriteFixture.UniqueName("primaries"));
        await table.CreateIfNotExistsAsync();
        return new TablePrimaryStatusStore(table);
    }
}
