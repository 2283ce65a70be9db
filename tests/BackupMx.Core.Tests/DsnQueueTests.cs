using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Testing;

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
        Assert.Equal($"{original.QueueId}-d0.1", first);
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

        Assert.StartsWith($"{original.QueueId}-d0-", all, StringComparison.Ordinal);
        Assert.True(all.Length <= original.QueueId.Length + 16, all);
        Assert.NotEqual(all, allButLast);
    }

    private static DsnRecipient Failed(SpoolRecord original, int place)
    {
        var recipient = original.Recipients[place];
        recipient.Status = RecipientStatus.Failed;
        recipient.FailureStatus = "5.1.1";
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
