using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Contracts;
using BackupMx.Testing.Fakes;

namespace BackupMx.Core.Tests;

public sealed class DsnQueueTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Enqueue_SameNoticeTwice_OneDsn()
    {
        // A crash between the DSN write and the original's update queues the same notice again.
        using var h = new CoreHarness();
        var original = await AcceptAsync(h, "a@example.test", "b@example.test");
        var queue = h.Get<DsnQueue>();
        var notice = new[] { Failed(original, 0), Failed(original, 1) };

        var first = await queue.EnqueueAsync(original, notice, None);
        var second = await queue.EnqueueAsync(original, notice, None);

        Assert.Equal(first, second);
        Assert.Equal($"{original.QueueId}-d0-1", first);
        Assert.True(h.Bodies is InMemoryBodyStore bodies && bodies.Contains(first));
        Assert.Single(await DsnsAsync(h));
    }

    [Fact]
    public async Task Enqueue_RetryCoversMoreRecipientsThanTheNoticeFound_TheOthersAreStillTold()
    {
        // The notice for a@ was written, then the process died before the original recorded it.
        // On the retry b@ has failed too: the notice for both must not be mistaken for a@'s alone.
        using var h = new CoreHarness();
        var original = await AcceptAsync(h, "a@example.test", "b@example.test");
        var queue = h.Get<DsnQueue>();

        var alone = await queue.EnqueueAsync(original, [Failed(original, 0)], None);
        var both = await queue.EnqueueAsync(original, [Failed(original, 0), Failed(original, 1)], None);

        Assert.NotEqual(alone, both);
        Assert.Equal([alone, both], (await DsnsAsync(h)).Select(d => d.QueueId).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task DsnId_ManyRecipients_StaysShortAndDependsOnTheWholeSet()
    {
        using var h = new CoreHarness();
        var original = await AcceptAsync(h, Enumerable.Range(0, 40).Select(i => $"r{i}@example.test").ToArray());

        var all = DsnQueue.DsnId(original, original.Recipients.Select(r => new DsnRecipient(r, DsnAction.Failed)).ToList());
        var allButLast = DsnQueue.DsnId(original, original.Recipients.SkipLast(1).Select(r => new DsnRecipient(r, DsnAction.Failed)).ToList());

        Assert.StartsWith($"{original.QueueId}-h", all, StringComparison.Ordinal);
        Assert.True(QueueId.IsValid(all), all);
        Assert.True(QueueId.IsValid(allButLast), allButLast);
        Assert.NotEqual(all, allButLast);
    }

    [Fact]
    public void DsnId_EverySubsetOfUpToTwelveRecipients_IsAValidQueueIdOfItsOwn()
    {
        // Every id names a body file, a blob and a table row: all of them must pass QueueId.IsValid,
        // and no two sets of recipients of one message may share an id (the dedup is by id).
        var original = SpoolRecords.Sample(recipients: 12);
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var mask = 1; mask < 1 << 12; mask++)
        {
            var set = original.Recipients.Where((_, i) => (mask & (1 << i)) != 0).Select(r => new DsnRecipient(r, DsnAction.Failed)).ToList();
            var id = DsnQueue.DsnId(original, set);
            Assert.True(QueueId.IsValid(id), id);
            Assert.True(seen.TryAdd(id, mask), $"{id} for sets {seen.GetValueOrDefault(id)} and {mask}");
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(60)]
    [InlineData(1000)]
    public async Task Enqueue_SeveralRecipients_QueuesOneDsnWhoseBodyAndRecordAreStored(int count)
    {
        using var h = new CoreHarness(s => s["BackupMx:Smtp:MaxRecipients"] = "1000");
        var original = await AcceptAsync(h, Enumerable.Range(0, count).Select(i => $"r{i}@example.test").ToArray());
        var notice = Enumerable.Range(0, count).Select(i => Failed(original, i)).ToList();

        var id = await h.Get<DsnQueue>().EnqueueAsync(original, notice, None);

        var dsn = Assert.Single(await DsnsAsync(h));
        Assert.Equal(id, dsn.QueueId);
        Assert.Equal(MessageKind.Dsn, dsn.Kind);
        Assert.Equal(string.Empty, dsn.Sender);
        Assert.Equal(count, Assert.Single(((SimpleDsnComposer)h.Get<IDsnComposer>()).Composed).Recipients.Count);
        await using var body = await h.Bodies.OpenReadAsync(id, None);
        Assert.Equal(dsn.BodyLength, body.Length);
    }

    private static DsnRecipient Failed(SpoolRecord original, int place)
    {
        var recipient = original.Recipients[place] with { Status = RecipientStatus.Failed, FailureStatus = "5.1.1" };
        return new DsnRecipient(recipient, DsnAction.Failed);
    }

    private static async Task<SpoolRecord> AcceptAsync(CoreHarness h, params string[] recipients)
    {
        var message = TestMessages.Make("alice@sender.test") with { Recipients = recipients.Select(r => new IncomingRecipient(r)).ToList() };
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(message, None)).QueueIds);
        return (await h.Spool.GetAsync("example.test", id, None))!;
    }

    private static Task<List<SpoolRecord>> DsnsAsync(CoreHarness h) => MessageForwarderTests.ListAsync(h.Spool.ListDomainAsync("sender.test", None));
}
