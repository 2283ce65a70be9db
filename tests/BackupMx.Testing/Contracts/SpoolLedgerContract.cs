using System.Text;
using BackupMx.Core.Forwarding;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Core.Spool;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace BackupMx.Testing.Contracts;

/// <summary>
/// What <see cref="SpoolLedger"/> guarantees, on every backend: each test project derives from this
/// and supplies a fresh spool store, body store and wake-up queue (in-memory; SQLite and files;
/// Tables, Blobs and the Service Bus adapter). The crash points between the ledger's steps are
/// simulated by a store that fails at that step: what is left must never be a record without its
/// body, nor a committed message that nothing will wake.
/// </summary>
public abstract class SpoolLedgerContract
{
    private static readonly CancellationToken None = CancellationToken.None;

    protected FakeTimeProvider Time { get; } = new(SpoolRecords.T0);

    /// <summary>Fresh, empty stores and a wake-up queue that returns tokens or not, as the backend does.</summary>
    protected abstract Task<(ISpoolStore Spool, IBodyStore Bodies, IWakeUpQueue WakeUps)> CreatePortsAsync();

    /// <summary>
    /// False where a small body is stored and deleted in the same commit as its record
    /// (<see cref="IInlineBodySpoolStore"/>): then no body is left behind for a crash to orphan.
    /// </summary>
    protected virtual bool BodyOutlivesItsRecord => true;

    private sealed record Rig(SpoolLedger Ledger, ISpoolStore Spool, IBodyStore Bodies, IWakeUpQueue WakeUps);

    private async Task<Rig> CreateRigAsync(Func<ISpoolStore, ISpoolStore>? wrapSpool = null)
    {
        var (spool, bodies, wakeUps) = await CreatePortsAsync();
        var wrapped = wrapSpool?.Invoke(spool) ?? spool;
        return new Rig(new SpoolLedger(wrapped, bodies, wakeUps, Time, NullLogger<SpoolLedger>.Instance), spool, bodies, wakeUps);
    }

    private static MemoryStream Body(string text = "Subject: x\r\n\r\nhello\r\n") => new(Encoding.ASCII.GetBytes(text));

    private async Task<SpoolRecord> AcceptAsync(Rig rig, DateTimeOffset? nextAttemptAt = null)
    {
        var acceptance = rig.Ledger.BeginAccept();
        var record = SpoolRecords.Sample(nextAttemptAt: nextAttemptAt ?? Time.GetUtcNow());
        await acceptance.WriteBodyAsync(record.QueueId, Body(), None);
        return await acceptance.CommitAsync(record, None);
    }

    private static async Task<bool> BodyExistsAsync(IBodyStore bodies, string queueId)
    {
        try
        {
            await using var stream = await bodies.OpenReadAsync(queueId, None);
            return true;
        }
        catch (BodyNotFoundException)
        {
            return false;
        }
    }

    private static bool AnyDue(SpoolRecord record) => true;

    [Fact]
    public async Task Accept_BodyThenRecord_BothReadable()
    {
        var rig = await CreateRigAsync();

        var record = await AcceptAsync(rig);

        Assert.NotNull(await rig.Spool.GetAsync(record.Domain, record.QueueId, None));
        Assert.True(await BodyExistsAsync(rig.Bodies, record.QueueId));
    }

    [Fact]
    public async Task Accept_RecordBeforeItsBody_IsRefusedAndNothingIsStored()
    {
        var rig = await CreateRigAsync();
        var acceptance = rig.Ledger.BeginAccept();
        var record = SpoolRecords.Sample();

        await Assert.ThrowsAsync<InvalidOperationException>(() => acceptance.CommitAsync(record, None));

        Assert.Null(await rig.Spool.GetAsync(record.Domain, record.QueueId, None));
    }

    [Fact]
    public async Task Accept_CrashBetweenBodyAndRecord_UndoLeavesNeitherRecordNorBody()
    {
        var rig = await CreateRigAsync(spool => new FailingCreateStore(spool));
        var acceptance = rig.Ledger.BeginAccept();
        var record = SpoolRecords.Sample();
        await acceptance.WriteBodyAsync(record.QueueId, Body(), None);

        await Assert.ThrowsAsync<IOException>(() => acceptance.CommitAsync(record, None));
        var failures = await acceptance.UndoAsync();

        Assert.Empty(failures);
        Assert.Null(await rig.Spool.GetAsync(record.Domain, record.QueueId, None));
        Assert.False(await BodyExistsAsync(rig.Bodies, record.QueueId));
    }

    [Fact]
    public async Task Accept_CreateStoredButItsReplyLost_UndoFindsAndRemovesTheRecordThenTheBody()
    {
        var rig = await CreateRigAsync(spool => new FailingCreateStore(spool) { StoreBeforeFailing = true });
        var acceptance = rig.Ledger.BeginAccept();
        var record = SpoolRecords.Sample();
        await acceptance.WriteBodyAsync(record.QueueId, Body(), None);

        await Assert.ThrowsAsync<IOException>(() => acceptance.CommitAsync(record, None));
        Assert.NotNull(await rig.Spool.GetAsync(record.Domain, record.QueueId, None));
        await acceptance.UndoAsync();

        Assert.Null(await rig.Spool.GetAsync(record.Domain, record.QueueId, None));
        Assert.False(await BodyExistsAsync(rig.Bodies, record.QueueId));
    }

    [Fact]
    public async Task Accept_CrashBeforeTheWakeUp_RecordIsCommittedAndDueSoTheSweepFindsIt()
    {
        var rig = await CreateRigAsync();

        // The process dies after the commit, before ScheduleWakeUpAsync: nothing else runs.
        var record = await AcceptAsync(rig);

        var stored = await rig.Spool.GetAsync(record.Domain, record.QueueId, None);
        Assert.NotNull(stored);
        Assert.True(stored.NextAttemptAt <= Time.GetUtcNow());
        Assert.Contains(await ListDueAsync(rig.Spool), r => r.QueueId == record.QueueId);
        Assert.NotNull(await rig.Ledger.RescheduleLostWakeUpAsync(stored, Time.GetUtcNow(), None));
    }

    [Fact]
    public async Task ScheduleWakeUp_AfterCommit_KeepsTheTokenTheQueueGave()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig);

        var scheduled = await rig.Ledger.ScheduleWakeUpAsync(record, Time.GetUtcNow(), None);
        Assert.NotNull(scheduled);

        var stored = await rig.Spool.GetAsync(record.Domain, record.QueueId, None);
        Assert.NotNull(stored);
        Assert.Equal(scheduled.WakeUpToken, stored.WakeUpToken);
    }

    [Fact]
    public async Task Claim_DueRecord_LeasesItAndASecondClaimIsBusy()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig);
        var now = Time.GetUtcNow();

        var first = await rig.Ledger.ClaimAsync(record, "worker-1", now, TimeSpan.FromMinutes(10), AnyDue, None);
        var stale = await rig.Spool.GetAsync(record.Domain, record.QueueId, None);
        var second = await rig.Ledger.ClaimAsync(stale!, "worker-2", now, TimeSpan.FromMinutes(10), AnyDue, None);

        Assert.Equal(ClaimStatus.Claimed, first.Status);
        Assert.Equal(ClaimStatus.Busy, second.Status);
        Assert.Equal("worker-1", stale!.LeaseOwner);
        Assert.Equal(now + TimeSpan.FromMinutes(10), stale.LeaseExpiresAt);

        // While leased, the record is not due: pumps and sweeps pass it by.
        Assert.DoesNotContain(await ListDueAsync(rig.Spool), r => r.QueueId == record.QueueId);
    }

    [Fact]
    public async Task Claim_WorkerCrashesHoldingTheLease_RecordIsDueAgainWhenTheLeaseRunsOut()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig);
        await rig.Ledger.ClaimAsync(record, "worker-1", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None);

        Time.Advance(TimeSpan.FromMinutes(10));
        Assert.Contains(await ListDueAsync(rig.Spool), r => r.QueueId == record.QueueId);
        var stored = await rig.Spool.GetAsync(record.Domain, record.QueueId, None);
        var retaken = await rig.Ledger.ClaimAsync(stored!, "worker-2", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None);

        Assert.Equal(ClaimStatus.Claimed, retaken.Status);
    }

    [Fact]
    public async Task Claim_NotDue_LeavesTheRecordUntouched()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig);
        var etag = record.ETag;

        var claim = await rig.Ledger.ClaimAsync(record, "worker-1", Time.GetUtcNow(), TimeSpan.FromMinutes(10), _ => false, None);

        Assert.Equal(ClaimStatus.NotDue, claim.Status);
        Assert.Equal(etag, (await rig.Spool.GetAsync(record.Domain, record.QueueId, None))!.ETag);
    }

    [Fact]
    public async Task Release_RecipientsStillPending_CommitsTheNextAttemptAndClearsTheLease()
    {
        var rig = await CreateRigAsync();
        var record = (await rig.Ledger.ClaimAsync(await AcceptAsync(rig), "worker-1", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None)).Record!;
        var next = Time.GetUtcNow().AddMinutes(5);
        record = SpoolLedger.RecordReply(record, record.Recipients[0], new SmtpReply(250, "2.0.0", "ok"), "mx.example.test");
        record = SpoolLedger.RecordDelivered(record, record.Recipients[0], Time.GetUtcNow(), notify: false);
        record = SpoolLedger.RecordFailedAttempt(record, new DeliveryAttempt { At = Time.GetUtcNow(), Reply = "451 4.3.0 later" }, new RetrySchedule([TimeSpan.FromMinutes(5)]));

        var released = await rig.Ledger.ReleaseAsync(record, None);

        Assert.Equal(ReleaseStatus.Deferred, released.Status);
        var stored = await rig.Spool.GetAsync(record.Domain, record.QueueId, None);
        Assert.NotNull(stored);
        Assert.Null(stored.LeaseOwner);
        Assert.Null(stored.LeaseExpiresAt);
        Assert.Equal(next, stored.NextAttemptAt);
        Assert.Equal(1, stored.Attempts);
        Assert.Equal(RecipientStatus.Delivered, stored.Recipients[0].Status);
        Assert.Equal(RecipientStatus.Pending, stored.Recipients[1].Status);
    }

    [Fact]
    public async Task SaveOutcomes_ThenCrash_AnsweredRecipientsStayAnsweredAndTheLeaseHolds()
    {
        var rig = await CreateRigAsync();
        var record = (await rig.Ledger.ClaimAsync(await AcceptAsync(rig), "worker-1", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None)).Record!;
        record = SpoolLedger.RecordFailed(record, record.Recipients[1], "5.1.1", Time.GetUtcNow());
        record = SpoolLedger.RecordFailedAttempt(record, new DeliveryAttempt { At = Time.GetUtcNow(), Reply = "451" }, new RetrySchedule([TimeSpan.FromMinutes(5)]));

        Assert.NotNull(await rig.Ledger.SaveOutcomesAsync(record));

        // The worker dies here: the record keeps its answers and is due only when the lease ends.
        var stored = await rig.Spool.GetAsync(record.Domain, record.QueueId, None);
        Assert.NotNull(stored);
        Assert.Equal(RecipientStatus.Failed, stored.Recipients[1].Status);
        Assert.True(stored.Recipients[1].NeedsNotification);
        Assert.Equal(Time.GetUtcNow().AddMinutes(5), stored.NextAttemptAt);
        Assert.True(stored.IsLeased(Time.GetUtcNow()));
        Assert.DoesNotContain(await ListDueAsync(rig.Spool), r => r.QueueId == record.QueueId);
    }

    [Fact]
    public async Task Claim_NextAttemptLongPassed_WritesOnlyTheLeaseAndTheRecordIsNotListedDueWhileItRuns()
    {
        var rig = await CreateRigAsync();
        var scheduled = Time.GetUtcNow().AddMinutes(-5);
        var record = await AcceptAsync(rig, scheduled);
        var leaseEnd = Time.GetUtcNow().AddMinutes(10);

        Assert.Equal(ClaimStatus.Claimed, (await rig.Ledger.ClaimAsync(record, "worker-1", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None)).Status);

        var stored = await rig.Spool.GetAsync(record.Domain, record.QueueId, None);
        Assert.NotNull(stored);
        Assert.Equal(scheduled, stored.NextAttemptAt);
        Assert.Equal("worker-1", stored.LeaseOwner);
        Assert.Equal(leaseEnd, stored.LeaseExpiresAt);
        Assert.DoesNotContain(await ListDueAsync(rig.Spool), r => r.QueueId == record.QueueId);
        Assert.DoesNotContain(await ListDueAsync(rig.Spool, leaseEnd.AddTicks(-1)), r => r.QueueId == record.QueueId);
        Assert.Contains(await ListDueAsync(rig.Spool, leaseEnd), r => r.QueueId == record.QueueId);
    }

    [Fact]
    public async Task Claim_LeaseExpiredWithoutARelease_RecordIsListedDueWithItsScheduledAttempt()
    {
        var rig = await CreateRigAsync();
        var scheduled = Time.GetUtcNow().AddMinutes(-5);
        var record = await AcceptAsync(rig, scheduled);
        await rig.Ledger.ClaimAsync(record, "worker-1", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None);

        // The worker died: nothing releases the lease, it only runs out.
        Time.Advance(TimeSpan.FromMinutes(10));

        var listed = Assert.Single(await ListDueAsync(rig.Spool), r => r.QueueId == record.QueueId);
        Assert.Equal(scheduled, listed.NextAttemptAt);
        Assert.Equal("worker-1", listed.LeaseOwner);
        Assert.Equal(ClaimStatus.Claimed, (await rig.Ledger.ClaimAsync(listed, "worker-2", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None)).Status);
    }

    [Fact]
    public async Task Release_WritesTheNextAttemptAndClearsTheLease_DueThenAndNotBefore()
    {
        var rig = await CreateRigAsync();
        var record = (await rig.Ledger.ClaimAsync(await AcceptAsync(rig), "worker-1", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None)).Record!;
        var next = Time.GetUtcNow().AddMinutes(3);
        record = SpoolLedger.RecordFailedAttempt(record, new DeliveryAttempt { At = Time.GetUtcNow(), Reply = "451 4.3.0 later" }, new RetrySchedule([TimeSpan.FromMinutes(3)]));

        Assert.Equal(ReleaseStatus.Deferred, (await rig.Ledger.ReleaseAsync(record, None)).Status);

        var stored = await rig.Spool.GetAsync(record.Domain, record.QueueId, None);
        Assert.NotNull(stored);
        Assert.Null(stored.LeaseOwner);
        Assert.Null(stored.LeaseExpiresAt);
        Assert.Equal(next, stored.NextAttemptAt);
        Assert.DoesNotContain(await ListDueAsync(rig.Spool, next.AddTicks(-1)), r => r.QueueId == record.QueueId);

        // Due at the next attempt, before the lease it had would have run out.
        Assert.Contains(await ListDueAsync(rig.Spool, next), r => r.QueueId == record.QueueId);
    }

    [Fact]
    public async Task RecordAttempt_ManyAttempts_TheLatestAreStoredOldestFirstAndBounded()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig);
        var total = SpoolLedger.MaxAttemptHistory + 3;
        for (var i = 1; i <= total; i++)
        {
            var claimed = (await rig.Ledger.ClaimAsync(record, "worker-1", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None)).Record!;
            var attempt = new DeliveryAttempt { At = Time.GetUtcNow(), Host = $"mx{i}.example.test", Reply = $"451 4.3.0 busy {i}", Delivered = i % 2, Deferred = 1 };
            claimed = SpoolLedger.RecordFailedAttempt(claimed, attempt, new RetrySchedule([TimeSpan.Zero]));
            Assert.Equal(ReleaseStatus.Deferred, (await rig.Ledger.ReleaseAsync(claimed, None)).Status);
            record = (await rig.Spool.GetAsync(record.Domain, record.QueueId, None))!;
            Time.Advance(TimeSpan.FromMinutes(1));
        }

        Assert.Equal(SpoolLedger.MaxAttemptHistory, record.AttemptHistory.Count);
        var oldestKept = total - SpoolLedger.MaxAttemptHistory + 1;
        Assert.Equal(Enumerable.Range(oldestKept, SpoolLedger.MaxAttemptHistory).Select(i => $"mx{i}.example.test"), record.AttemptHistory.Select(a => a.Host));
        var last = record.AttemptHistory[^1];
        Assert.Equal(new DeliveryAttempt { At = SpoolRecords.T0.AddMinutes(total - 1), Host = $"mx{total}.example.test", Reply = $"451 4.3.0 busy {total}", Delivered = total % 2, Deferred = 1 }, last);
        Assert.Equal(last.Reply, record.LastError);
        Assert.Equal(total, record.Attempts);
    }

    [Fact]
    public async Task Release_EveryRecipientAnswered_FinishesRecordThenBody()
    {
        var rig = await CreateRigAsync();
        var record = (await rig.Ledger.ClaimAsync(await AcceptAsync(rig), "worker-1", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None)).Record!;
        foreach (var recipient in record.Recipients)
        {
            record = SpoolLedger.RecordDelivered(record, recipient, Time.GetUtcNow(), notify: false);
        }

        var released = await rig.Ledger.ReleaseAsync(record, None);

        Assert.Equal(ReleaseStatus.Finished, released.Status);
        Assert.Null(await rig.Spool.GetAsync(record.Domain, record.QueueId, None));
        Assert.False(await BodyExistsAsync(rig.Bodies, record.QueueId));
    }

    [Fact]
    public async Task Finish_CrashBetweenRecordAndBody_LeavesOnlyABodyNoRecord()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig);
        foreach (var recipient in record.Recipients)
        {
            record = SpoolLedger.RecordDelivered(record, recipient, Time.GetUtcNow(), notify: false);
        }

        // The record is removed first; a crash before the body goes leaves an orphan body, never a
        // record without one. A body kept with its record goes in the same commit.
        Assert.True(await rig.Spool.TryDeleteAsync(record, None));

        Assert.Null(await rig.Spool.GetAsync(record.Domain, record.QueueId, None));
        Assert.Equal(BodyOutlivesItsRecord, await BodyExistsAsync(rig.Bodies, record.QueueId));
    }

    [Fact]
    public async Task Release_AfterTheLeaseWasTakenOver_ReportsTheLostClaimAndKeepsTheOtherWorkersState()
    {
        var rig = await CreateRigAsync();
        var mine = (await rig.Ledger.ClaimAsync(await AcceptAsync(rig), "worker-1", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None)).Record!;
        Time.Advance(TimeSpan.FromMinutes(11));
        var theirs = await rig.Ledger.ClaimAsync((await rig.Spool.GetAsync(mine.Domain, mine.QueueId, None))!, "worker-2", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None);
        Assert.Equal(ClaimStatus.Claimed, theirs.Status);

        var released = await rig.Ledger.ReleaseAsync(mine, None);

        Assert.Equal(ReleaseStatus.LostClaim, released.Status);
        Assert.Equal("worker-2", (await rig.Spool.GetAsync(mine.Domain, mine.QueueId, None))!.LeaseOwner);
    }

    [Fact]
    public async Task Flush_RetriedMessage_DueNowWithItsRetryCountReset()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig, Time.GetUtcNow().AddHours(1));
        record = await rig.Spool.TryUpdateAsync(record with { Attempts = 4 }, None);
        Assert.NotNull(record);

        var flushed = await rig.Ledger.FlushAsync(record, Time.GetUtcNow(), None);

        Assert.True(flushed.Flushed);
        var stored = await rig.Spool.GetAsync(record.Domain, record.QueueId, None);
        Assert.Equal(Time.GetUtcNow(), stored!.NextAttemptAt);
        Assert.Equal(0, stored.Attempts);
    }

    [Fact]
    public async Task Flush_LeasedMessage_IsPassedBy()
    {
        var rig = await CreateRigAsync();
        var claimed = (await rig.Ledger.ClaimAsync(await AcceptAsync(rig), "worker-1", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None)).Record!;

        var flushed = await rig.Ledger.FlushAsync(claimed, Time.GetUtcNow(), None);

        Assert.False(flushed.Flushed);
        Assert.Equal("worker-1", (await rig.Spool.GetAsync(claimed.Domain, claimed.QueueId, None))!.LeaseOwner);
    }

    [Fact]
    public async Task Hold_Message_IsNotClaimedFlushedOrListedDue()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig);

        Assert.Equal(LedgerChange.Done, await rig.Ledger.HoldAsync(record.Domain, record.QueueId, None));
        Time.Advance(TimeSpan.FromDays(6));
        var held = await rig.Spool.GetAsync(record.Domain, record.QueueId, None);

        Assert.NotNull(held);
        Assert.True(held.IsHeld);
        Assert.Equal(ClaimStatus.NotDue, (await rig.Ledger.ClaimAsync(held, "worker-1", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None)).Status);
        Assert.False((await rig.Ledger.FlushAsync(held, Time.GetUtcNow(), None)).Flushed);
        Assert.DoesNotContain(await ListDueAsync(rig.Spool), r => r.QueueId == record.QueueId);
        Assert.Equal(LedgerChange.Unchanged, await rig.Ledger.HoldAsync(record.Domain, record.QueueId, None));
    }

    [Fact]
    public async Task Hold_MessageBeingDelivered_IsBusy()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig);
        await rig.Ledger.ClaimAsync(record, "worker-1", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None);

        Assert.Equal(LedgerChange.Busy, await rig.Ledger.HoldAsync(record.Domain, record.QueueId, None));
    }

    [Fact]
    public async Task ReleaseHeld_ExpiryNotPassed_DueNowAndKeepsItsExpiry()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig);
        await rig.Ledger.HoldAsync(record.Domain, record.QueueId, None);
        Time.Advance(TimeSpan.FromDays(1));

        Assert.Equal(LedgerChange.Done, await rig.Ledger.ReleaseHeldAsync(record.Domain, record.QueueId, null, None));

        var stored = await rig.Spool.GetAsync(record.Domain, record.QueueId, None);
        Assert.NotNull(stored);
        Assert.False(stored.IsHeld);
        Assert.Equal(record.ExpiresAt, stored.ExpiresAt);
        Assert.Equal(Time.GetUtcNow(), stored.NextAttemptAt);
        Assert.Contains(await ListDueAsync(rig.Spool), r => r.QueueId == record.QueueId);
    }

    [Fact]
    public async Task ReleaseHeld_ExpiryPassedWhileHeld_GetsOneMoreDay()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig);
        await rig.Ledger.HoldAsync(record.Domain, record.QueueId, None);
        Time.Advance(TimeSpan.FromDays(7));

        await rig.Ledger.ReleaseHeldAsync(record.Domain, record.QueueId, null, None);

        Assert.Equal(Time.GetUtcNow() + TimeSpan.FromDays(1), (await rig.Spool.GetAsync(record.Domain, record.QueueId, None))!.ExpiresAt);
    }

    [Fact]
    public async Task ReleaseHeld_ExpiryGiven_UsesIt()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig);
        await rig.Ledger.HoldAsync(record.Domain, record.QueueId, None);
        var expiry = Time.GetUtcNow().AddDays(30);

        await rig.Ledger.ReleaseHeldAsync(record.Domain, record.QueueId, expiry, None);

        Assert.Equal(expiry, (await rig.Spool.GetAsync(record.Domain, record.QueueId, None))!.ExpiresAt);
    }

    [Fact]
    public async Task ReleaseHeld_NotHeld_IsUnchanged()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig);

        Assert.Equal(LedgerChange.Unchanged, await rig.Ledger.ReleaseHeldAsync(record.Domain, record.QueueId, null, None));
        Assert.Equal(LedgerChange.NotFound, await rig.Ledger.ReleaseHeldAsync(record.Domain, QueueId.New(Time.GetUtcNow()), null, None));
    }

    [Fact]
    public async Task Delete_Message_RemovesRecordThenBody()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig);

        Assert.Equal(LedgerChange.Done, await rig.Ledger.DeleteAsync(record.Domain, record.QueueId, None));

        Assert.Null(await rig.Spool.GetAsync(record.Domain, record.QueueId, None));
        Assert.False(await BodyExistsAsync(rig.Bodies, record.QueueId));
        Assert.Equal(LedgerChange.NotFound, await rig.Ledger.DeleteAsync(record.Domain, record.QueueId, None));
    }

    [Fact]
    public async Task Delete_MessageBeingDelivered_IsBusyAndKeepsIt()
    {
        var rig = await CreateRigAsync();
        var record = await AcceptAsync(rig);
        await rig.Ledger.ClaimAsync(record, "worker-1", Time.GetUtcNow(), TimeSpan.FromMinutes(10), AnyDue, None);

        Assert.Equal(LedgerChange.Busy, await rig.Ledger.DeleteAsync(record.Domain, record.QueueId, None));
        Assert.True(await BodyExistsAsync(rig.Bodies, record.QueueId));
    }

    private Task<List<SpoolRecord>> ListDueAsync(ISpoolStore spool) => ListDueAsync(spool, Time.GetUtcNow());

    private static async Task<List<SpoolRecord>> ListDueAsync(ISpoolStore spool, DateTimeOffset dueBy)
    {
        var due = new List<SpoolRecord>();
        await foreach (var record in spool.ListDueAsync(dueBy, 100, None))
        {
            due.Add(record);
        }

        return due;
    }

    /// <summary>A store whose create fails, after storing the record when asked (a lost reply).</summary>
    private sealed class FailingCreateStore(ISpoolStore inner) : DelegatingSpoolStore(inner)
    {
        public bool StoreBeforeFailing { get; init; }

        public override async Task<SpoolRecord> CreateAsync(SpoolRecord record, CancellationToken cancellationToken)
        {
            if (StoreBeforeFailing)
            {
                await base.CreateAsync(record, cancellationToken);
            }

            throw new IOException("simulated crash during the create");
        }
    }
}
