using System.Text;
using Azure.Data.Tables;
using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Azurite;
using BackupMx.Testing.Fakes;

namespace BackupMx.Azure.Tests;

/// <summary>The wake-up token saved between the forwarder's read and its claim, with ETags from Azurite.</summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class ClaimRaceTableTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Process_TokenSavedBetweenReadAndClaim_ClaimsTheCurrentRecordAndDelivers()
    {
        var table = new TableServiceClient(azurite.ConnectionString).GetTableClient(AzuriteFixture.UniqueName("spool"));
        await table.CreateIfNotExistsAsync();
        var spool = new OvertakenRead(new TableSpoolStore(table));
        using var h = new CoreHarness(spool: spool);
        var result = await h.Intake.AcceptAsync(
            new IncomingMessage
            {
                Sender = "alice@sender.test",
                Recipients = [new IncomingRecipient("bob@example.test")],
                Content = MessageContent.FromBytes(Encoding.ASCII.GetBytes("Subject: hi\r\n\r\nHello.\r\n")),
            },
            None);
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(result).QueueIds);
        spool.Overtake = r => r with { WakeUpToken = "4711" };

        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        Assert.Single(h.Transport.Attempts);
        Assert.Null(await spool.GetAsync("example.test", id, None));
    }
}
