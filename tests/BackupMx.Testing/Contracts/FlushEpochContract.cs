using BackupMx.Core.Forwarding;
using BackupMx.Core.Model;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using BackupMx.Core.Spool;
using BackupMx.Testing.Fakes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace BackupMx.Testing.Contracts;

/// <summary>
/// What a flush epoch (<see cref="IFlushEpochStore"/>) means, on every store that keeps them
/// (in-memory, SQLite): one write makes every waiting message of the domain due with its retries
/// reset, and nothing else.
/// </summary>
public abstract class FlushEpochContract
{
    private static readonly CancellationToken None = CancellationToken.None;

    protected FakeTimeProvider Time { get; } = new(SpoolRecords.T0);

    /// <summary>A fresh, empty store that implements both <see cref="ISpoolStore"/> and <see cref="IFlushEpochStore"/>.</summary>
    protected abstract Task<ISpoolStore> CreateStoreAsync();

    private sealed record Rig(ISpoolStore Spool, SpoolLedger Ledger, DomainFlusher Flusher, WakeUpSignal Pump);

    private async Task<Rig> CreateRigAsync()
    {
        var spool = await CreateStoreAsync();
        var pump = new WakeUpSignal();
        var ledger = new SpoolLedger(spool, new InMemoryBodyStore(), new InProcessWakeUpQueue(pump), Time, NullLogger<SpoolLedger>.Instance, (IFlushEpochStore)spool);
        return new Rig(spool, ledger, new DomainFlusher(ledger, Time, NullLogger<DomainFlusher>.Instance, pump), pump);
    }

    /// <summary>A message tried <paramref name="attempts"/> times, the last a minute ago, next due in an hour.</summary>
    private async Task<SpoolRecord> WaitingAsync(ISpoolStore spool, string domain = "example.test", int attempts = 3, Func<SpoolRecord, SpoolRecord>? change = null)
    {
        var record = SpoolRecords.Sample(domain: domain, nextAttemptAt: Time.GetUtcNow().AddHours(1)) with
        {
            ReceivedAt = Time.GetUtcNow().AddHours(-2),
            Attempts = attempts,
            LastAttemptAt = attempts > 0 ? Time.GetUtcNow().AddMinutes(-1) : null,
            LastError = attempts > 0 ? "451 try later" : null,
        };
        return await spool.CreateAsync(change?.Invoke(record) ?? record, None);
    }

    private async Task<List<string>> DueIdsAsync(ISpoolStore spool, int max = 1000)
    {
        var ids = new List<string>();
        await foreach (var record in spool.ListDueAsync(Time.GetUtcNow(), max, None))
        {
            ids.Add(record.QueueId);
        }

        return ids;
    }

    [Fact]
    public async Task Flush_Domain_EveryWaitingMessageDueWithRetriesReset_NoRecordRewritten()
    {
        var rig = await CreateRigAsync();
        var retried = await WaitingAsync(rig.Spool);
        var neverTried = await WaitingAsync(rig.Spool, attempts: 0);
        var held = await WaitingAsync(rig.Spool, change: r => r with { HeldAt = Time.GetUtcNow(), NextAttemptAt = DateTimeOffset.MaxValue });
        var leased = await WaitingAsync(rig.Spool, change: r => r with { LeaseOwner = "worker-1", LeaseExpiresAt = Time.GetUtcNow().AddMinutes(5), NextAttemptAt = Time.GetUtcNow().AddMinutes(5) });
        var dsn = await CreateDsnAsync(rig.Spool);
        var otherDomain = await WaitingAsync(rig.Spool, domain: "other.test");
        Time.Advance(TimeSpan.FromSeconds(1));

        var count = await rig.Flusher.FlushAsync("EXAMPLE.test", "test", None);

        Assert.True(rig.Pump.WaitAsync().IsCompleted, "the pump is woken at once");
        var due = await DueIdsAsync(rig.Spool);
        Assert.Contains(retried.QueueId, due);
        Assert.Contains(neverTried.QueueId, due);
        Assert.DoesNotContain(held.QueueId, due);
        Assert.DoesNotContain(leased.QueueId, due);
        Assert.DoesNotContain(dsn.QueueId, due);
        Assert.DoesNotContain(otherDomain.QueueId, due);
        Assert.Equal(due.Count, due.Distinct().Count());

        Assert.Equal(2, count);
        var flushed = (await rig.Spool.GetAsync(retried.Domain, retried.QueueId, None))!;
        Assert.Equal(0, flushed.Attempts);
        Assert.True(flushed.NextAttemptAt <= Time.GetUtcNow());
        Assert.Equal(retried.ETag, flushed.ETag);
        Assert.Equal(retried.ExpiresAt, flushed.ExpiresAt);
        var stillHeld = (await rig.Spool.GetAsync(held.Domain, held.QueueId, None))!;
        Assert.Equal(held.ETag, stillHeld.ETag);
        Assert.Equal(DateTimeOffset.MaxValue, stillHeld.NextAttemptAt);
        Assert.Equal(3, stillHeld.Attempts);
        var stillLeased = (await rig.Spool.GetAsync(leased.Domain, leased.QueueId, None))!;
        Assert.Equal("worker-1", stillLeased.LeaseOwner);
        Assert.Equal(3, stillLeased.Attempts);
        Assert.Equal(3, (await rig.Spool.GetAsync(otherDomain.Domain, otherDomain.QueueId, None))!.Attempts);
    }

    private async Task<SpoolRecord> CreateDsnAsync(ISpoolStore spool)
    {
        var dsn = SpoolRecords.Sample(nextAttemptAt: Time.GetUtcNow().AddHours(1)) with
        {
            Kind = MessageKind.Dsn,
            Sender = string.Empty,
            ReceivedAt = Time.GetUtcNow().AddHours(-1),
            Attempts = 2,
            LastAttemptAt = Time.GetUtcNow().AddMinutes(-1),
        };
        return await spool.CreateAsync(dsn, None);
    }

    [Fact]
    public async Task Flush_MessageAttemptedAfterIt_IsNotFlushedAgain()
    {
        var rig = await CreateRigAsync();
        var record = await WaitingAsync(rig.Spool);
        Time.Advance(TimeSpan.FromSeconds(1));
        await rig.Flusher.FlushAsync("example.test", "test", None);
        var listed = Assert.Single(await ToListAsync(rig.Spool.ListDueAsync(Time.GetUtcNow(), 10, None)));
        var now = Time.GetUtcNow();

        var claim = await rig.Ledger.ClaimAsync(listed, "worker-1", now, TimeSpan.FromMinutes(5), r => r.NextAttemptAt <= now, None);
        Assert.Equal(ClaimStatus.Claimed, claim.Status);
        Assert.Empty(await DueIdsAsync(rig.Spool));
        Time.Advance(TimeSpan.FromSeconds(1));
        var attempted = SpoolLedger.RecordFailedAttempt(claim.Record!, new DeliveryAttempt { At = Time.GetUtcNow(), Reply = "451 still down" }, new RetrySchedule([TimeSpan.FromMinutes(10)]));
        Assert.Equal(ReleaseStatus.Deferred, (await rig.Ledger.ReleaseAsync(attempted, None)).Status);

        Assert.Empty(await DueIdsAsync(rig.Spool));
        var stored = (await rig.Spool.GetAsync(record.Domain, record.QueueId, None))!;
        Assert.Equal(1, stored.Attempts);
        Assert.Equal(Time.GetUtcNow().AddMinutes(10), stored.NextAttemptAt);
        Assert.Equal(0, await rig.Ledger.CountFlushedAsync(record.Domain, viewFixed: null, None));
    }

    [Fact]
    public async Task FlushCount_IsTheViewFixedBeforeWorkersWake()
    {
        // The flusher wakes the pump once the count's view is fixed, not after the count: a record the
        // pump claims meanwhile must still be counted, or the operator is told that less was flushed.
        var rig = await CreateRigAsync();
        await WaitingAsync(rig.Spool);
        await WaitingAsync(rig.Spool);
        Time.Advance(TimeSpan.FromSeconds(1));
        var now = Time.GetUtcNow();
        Assert.True(await rig.Ledger.TryFlushDomainAsync("example.test", now, None));

        var count = await rig.Ledger.CountFlushedAsync("example.test", () =>
        {
            var listed = rig.Spool.ListDueAsync(now, 1, None).ToBlockingEnumerable().Single();
            var claim = rig.Ledger.ClaimAsync(listed, "worker-1", now, TimeSpan.FromMinutes(5), r => r.NextAttemptAt <= now, None).GetAwaiter().GetResult();
            Assert.Equal(ClaimStatus.Claimed, claim.Status);
        }, None);

        Assert.Equal(2, count);
        Assert.Equal(1, await rig.Ledger.CountFlushedAsync("example.test", viewFixed: null, None));
    }

    [Fact]
    public async Task Flush_MessageReceivedAfterIt_KeepsItsSchedule()
    {
        var rig = await CreateRigAsync();
        await rig.Flusher.FlushAsync("example.test", "test", None);
        Time.Advance(TimeSpan.FromSeconds(1));
        var later = SpoolRecords.Sample(nextAttemptAt: Time.GetUtcNow().AddMinutes(5)) with { ReceivedAt = Time.GetUtcNow() };
        await rig.Spool.CreateAsync(later, None);

        Assert.Empty(await DueIdsAsync(rig.Spool));
    }

    [Fact]
    public async Task ListDue_ManyFlushedAndDue_EachListedOnceUpToMax()
    {
        var rig = await CreateRigAsync();
        var created = new List<Task<SpoolRecord>>();
        for (var i = 0; i < 600; i++)
        {
            created.Add(WaitingAsync(rig.Spool, domain: i % 3 == 0 ? "other.test" : "example.test"));
        }

        for (var i = 0; i < 20; i++)
        {
            created.Add(WaitingAsync(rig.Spool, change: r => r with { NextAttemptAt = Time.GetUtcNow().AddMinutes(-5) }));
        }

        await Task.WhenAll(created);
        Time.Advance(TimeSpan.FromSeconds(1));
        await rig.Flusher.FlushAsync("example.test", "test", None);
        await rig.Flusher.FlushAsync("other.test", "test", None);

        var all = await DueIdsAsync(rig.Spool);
        Assert.Equal(620, all.Count);
        Assert.Equal(620, all.Distinct().Count());
        var some = await DueIdsAsync(rig.Spool, 300);
        Assert.Equal(300, some.Distinct().Count());
    }

    private static async Task<List<SpoolRecord>> ToListAsync(IAsyncEnumerable<SpoolRecord> source)
    {
        var list = new List<SpoolRecord>();
        await foreach (var item in source)
        {
            list.Add(item);
        }

        return list;
    }
}
