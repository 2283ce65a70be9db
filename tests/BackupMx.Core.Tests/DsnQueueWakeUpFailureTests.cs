using BackupMx.Core.Configuration;
using BackupMx.Core.Forwarding;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Contracts;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Tests;

public sealed class DsnQueueWakeUpFailureTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Enqueue_WakeUpFailsAfterTheDsnIsCommitted_ReturnsItsIdAndLeavesTheWakeUpToTheSweep()
    {
        // Found by the model-based tests: a thrown schedule left the recipient marked as owed a
        // notice although its DSN was spooled. Once that DSN had been sent and removed, the next
        // attempt found no DSN under the id and queued it again: the sender was told twice.
        using var h = new CoreHarness();
        var message = TestMessages.Make("alice@sender.test") with { Recipients = [new IncomingRecipient("a@example.test")] };
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await h.Intake.AcceptAsync(message, None)).QueueIds);
        var original = (await h.Spool.GetAsync("example.test", id, None))!.WithRecipient(0, r => r with { Status = RecipientStatus.Failed, FailureStatus = "5.1.1" });
        var queue = new DsnQueue(new BackupMx.Core.Spool.SpoolLedger(h.Spool, h.Bodies, new FailingWakeUpQueue(), h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<BackupMx.Core.Spool.SpoolLedger>.Instance), h.Bodies, new SimpleDsnComposer(), h.Get<IOptions<BackupMxOptions>>(), h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<DsnQueue>.Instance);

        var dsnId = await queue.EnqueueAsync(original, [new DsnRecipient(original.Recipients[0], DsnAction.Failed)], None);

        var dsn = await h.Spool.GetAsync("sender.test", dsnId, None);
        Assert.NotNull(dsn);
        Assert.True(dsn.NextAttemptAt <= h.Time.GetUtcNow(), "the DSN is due, so the pump or the sweep finds it");
    }

    private sealed class FailingWakeUpQueue : IWakeUpQueue
    {
        public Task<string?> ScheduleAsync(WakeUp wakeUp, DateTimeOffset dueAt, CancellationToken cancellationToken) =>
            Task.FromException<string?>(new IOException("queue unavailable"));

        public Task CancelAsync(string token, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
