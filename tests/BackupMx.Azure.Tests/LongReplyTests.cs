using Azure.Data.Tables;
using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Azurite;
using BackupMx.Testing.Contracts;

namespace BackupMx.Azure.Tests;

/// <summary>A remote reply far over the Table property limit, through the forwarder into Azure Tables on Azurite.</summary>
[Collection(AzuriteFixture.CollectionName)]
public sealed class LongReplyTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Process_HundredKilobyteReply_SavesEveryOutcomeWithTheReplyBounded()
    {
        var store = await CreateStoreAsync();
        using var h = new CoreHarness(spool: store);
        var accepted = await h.Intake.AcceptAsync(
            new IncomingMessage
            {
                Sender = "alice@sender.test",
                Recipients = [new IncomingRecipient("a@example.test"), new IncomingRecipient("b@example.test")],
                ClientAddress = "192.0.2.10",
                HeloName = "mail.sender.test",
                Content = MessageContent.FromBytes("Subject: hi\r\n\r\nHello.\r\n"u8.ToArray()),
            },
            None);
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(accepted).QueueIds);
        var huge = "try again later " + new string('x', 100 * 1024);
        h.Transport.Reply = (_, recipient) => recipient == "a@example.test" ? new SmtpReply(451, "4.2.0", huge) : new SmtpReply(250, "2.0.0", "ok");

        Assert.Equal(ForwardOutcome.Deferred, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));

        var record = await store.GetAsync("example.test", id, None);
        Assert.NotNull(record);
        Assert.Equal([RecipientStatus.Pending, RecipientStatus.Delivered], record.Recipients.Select(r => r.Status));
        Assert.StartsWith("451 4.2.0 try again later xxx", record.LastError, StringComparison.Ordinal);
        Assert.True(record.LastError!.Length <= StoredText.MaxLength);
        Assert.True(record.Recipients[0].LastReply!.Text.Length <= StoredText.MaxLength);

        // The next attempt delivers the other recipient only: the delivered one was saved and is not sent again.
        h.Time.Advance(record.NextAttemptAt - h.Time.GetUtcNow());
        h.Transport.Reply = (_, _) => new SmtpReply(250, "2.0.0", "ok");
        Assert.Equal(ForwardOutcome.Finished, await h.Forwarder.ProcessAsync(new WakeUp("example.test", id), None));
        Assert.Equal(["a@example.test"], h.Transport.Attempts.Last().Recipients);
    }

    [Fact]
    public async Task CreateAsync_ThousandRecipientsWithIncompressibleReplies_FitsTheEntityByShorteningReplies()
    {
        var store = await CreateStoreAsync();
        var record = SpoolRecords.Sample(recipients: 1000);
        var random = new Random(42);
        for (var index = 0; index < record.Recipients.Count; index++)
        {
            var text = string.Create(StoredText.MaxLength - 20, random, (span, r) =>
            {
                for (var i = 0; i < span.Length; i++)
                {
                    span[i] = (char)r.Next(0x21, 0x7F);
                }
            });
            record = record.WithRecipient(index, r => r with { LastReply = new SmtpReply(451, "4.2.0", text) });
        }

        record = await store.CreateAsync(record, None);

        var entity = (await store.Table.GetEntityAsync<TableEntity>("example.test", record.QueueId)).Value;
        Assert.True(entity.GetInt32("RecipientsBrParts") <= SpoolEntityMapper.MaxCompressedRecipientBytes / SpoolEntityMapper.MaxBinaryChunk);
        var read = await store.GetAsync(record.Domain, record.QueueId, None);
        Assert.Equal(1000, read!.Recipients.Count);
        Assert.All(read.Recipients, r => Assert.True(r.LastReply!.Text.Length <= SpoolEntityMapper.ShortReplyChars));
        Assert.Equal(record.Recipients[7].LastReply!.Text[..50], read.Recipients[7].LastReply!.Text[..50]);
    }

    private async Task<TableSpoolStore> CreateStoreAsync()
    {
        var table = new TableServiceClient(azurite.ConnectionString).GetTableClient(AzuriteFixture.UniqueName("spool"));
        await table.CreateIfNotExistsAsync();
        return new TableSpoolStore(table);
    }
}
