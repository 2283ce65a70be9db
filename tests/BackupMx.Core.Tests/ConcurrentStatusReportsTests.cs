using BackupMx.Core.Configuration;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using BackupMx.Testing;
using BackupMx.Testing.Fakes;
using BackupMx.Testing.Contracts;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Tests;

/// <summary>
/// Two monitors sharing one status store, as the ProbePrimaries timer and a Forward invocation on two
/// Azure Functions instances do: each has its own process-local gate, so only the store can keep their
/// read → decide → write cycles apart. The interleavings are forced by holding a writer after its read.
/// </summary>
public sealed class ConcurrentStatusReportsTests : IDisposable
{
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly FlushCountingSpool _spool = new(new InMemorySpoolStore());
    private readonly CoreHarness _h;

    public ConcurrentStatusReportsTests()
    {
        _h = new CoreHarness(spool: _spool);
    }

    public void Dispose() => _h.Dispose();

    /// <summary>A monitor of its own ("another instance") on the harness's spool, prober and status store.</summary>
    private PrimaryMonitor Instance(IPrimaryStatusStore statuses) =>
        new(_h.Prober, statuses, _h.Flusher, _h.Get<IOptions<BackupMxOptions>>(), _h.Time, NullLogger<PrimaryMonitor>.Instance);

    /// <summary>One message that failed once and waits for its retry in 5 minutes.</summary>
    private async Task<string> DeferredMessageAsync()
    {
        var id = Assert.Single(Assert.IsType<IntakeResult.Accepted>(await _h.Intake.AcceptAsync(TestMessages.Make(), None)).QueueIds);
        var record = await _h.Spool.GetAsync("example.test", id, None);
        record = await _h.Spool.UpdateAsync(record! with { Attempts = 1, NextAttemptAt = _h.Time.GetUtcNow().AddMinutes(5) }, None);
        return id;
    }

    private async Task<PrimaryStatus> StatusAsync() =>
        (await _h.Get<IPrimaryStatusStore>().GetAsync("example.test", None))!.Status;

    [Fact]
    public async Task Record_FailureAndProbeDecideFromTheSameUp_ProbeFlushesAfterTheFailureWins()
    {
        var shared = _h.Get<IPrimaryStatusStore>();
        await shared.OverwriteAsync(new PrimaryStatus("example.test", PrimaryState.Up, _h.Time.GetUtcNow(), _h.Time.GetUtcNow(), null, "primary.test"), None);
        var id = await DeferredMessageAsync();
        var forwardInstance = new SteppedStatusStore(shared);
        var probeInstance = new SteppedStatusStore(shared);

        // A delivery attempt that began after the primary was last seen up fails, and reads Up...
        _h.Time.Advance(TimeSpan.FromSeconds(5));
        var failureRead = forwardInstance.HoldAfterNextRead("example.test");
        var failure = Instance(forwardInstance).ReportUnreachableAsync("example.test", "connection refused", _h.Time.GetUtcNow(), None);
        await failureRead.Read;

        // ...and a probe on another instance, which finds the primary answering, reads the same Up.
        _h.Time.Advance(TimeSpan.FromSeconds(1));
        _h.Prober.IsUp = _ => true;
        var probeRead = probeInstance.HoldAfterNextRead("example.test");
        var probe = Instance(probeInstance).ProbeAllAsync(None);
        await probeRead.Read;
        var flushesBefore = _spool.Flushes;

        // The failure writes Down first; the probe's write, decided from Up, must not pass for "no change".
        failureRead.Resume();
        await failure;
        Assert.Equal(PrimaryState.Down, (await StatusAsync()).State);
        probeRead.Resume();
        await probe;

        var status = await StatusAsync();
        Assert.Equal(PrimaryState.Up, status.State);
        Assert.Equal(_h.Time.GetUtcNow(), status.Since);
        Assert.Equal(1, _spool.Flushes - flushesBefore);
        var record = await _h.Spool.GetAsync("example.test", id, None);
        Assert.Equal(0, record!.Attempts);
        Assert.Equal(_h.Time.GetUtcNow(), record.NextAttemptAt);
    }

    [Fact]
    public async Task Record_ProbeDecidesFromUpWhileAFailureIsStale_StaysUpWithoutFlush()
    {
        var shared = _h.Get<IPrimaryStatusStore>();
        await shared.OverwriteAsync(new PrimaryStatus("example.test", PrimaryState.Up, _h.Time.GetUtcNow(), _h.Time.GetUtcNow(), null, "primary.test"), None);
        var id = await DeferredMessageAsync();
        var forwardInstance = new SteppedStatusStore(shared);

        // The attempt began before the probe below, so once the probe has written, its failure is stale.
        _h.Time.Advance(TimeSpan.FromSeconds(5));
        var attemptStartedAt = _h.Time.GetUtcNow();
        var failureRead = forwardInstance.HoldAfterNextRead("example.test");
        var failure = Instance(forwardInstance).ReportUnreachableAsync("example.test", "connection refused", attemptStartedAt, None);
        await failureRead.Read;
        _h.Time.Advance(TimeSpan.FromSeconds(1));
        _h.Prober.IsUp = _ => true;
        await Instance(shared).ProbeAllAsync(None);
        var flushesBefore = _spool.Flushes;

        failureRead.Resume();
        await failure;

        var status = await StatusAsync();
        Assert.Equal(PrimaryState.Up, status.State);
        Assert.Equal(_h.Time.GetUtcNow(), status.LastChecked);
        Assert.Null(status.LastError);
        Assert.Equal(0, _spool.Flushes - flushesBefore);
        Assert.Equal(1, (await _h.Spool.GetAsync("example.test", id, None))!.Attempts);
    }

    [Fact]
    public async Task Record_TwoProbesSeeTheRecoveryFromTheSameDown_ExactlyOneFlushes()
    {
        var shared = _h.Get<IPrimaryStatusStore>();
        await shared.OverwriteAsync(new PrimaryStatus("example.test", PrimaryState.Down, _h.Time.GetUtcNow(), _h.Time.GetUtcNow(), "connection refused", null), None);
        var id = await DeferredMessageAsync();
        var first = new SteppedStatusStore(shared);
        var second = new SteppedStatusStore(shared);
        _h.Time.Advance(TimeSpan.FromSeconds(30));
        _h.Prober.IsUp = _ => true;
        var recoveredAt = _h.Time.GetUtcNow();

        var firstRead = first.HoldAfterNextRead("example.test");
        var firstProbe = Instance(first).ProbeAllAsync(None);
        await firstRead.Read;
        var secondRead = second.HoldAfterNextRead("example.test");
        var secondProbe = Instance(second).ProbeAllAsync(None);
        await secondRead.Read;
        var flushesBefore = _spool.Flushes;

        firstRead.Resume();
        await firstProbe;
        secondRead.Resume();
        await secondProbe;

        Assert.Equal(1, _spool.Flushes - flushesBefore);
        var status = await StatusAsync();
        Assert.Equal(PrimaryState.Up, status.State);
        Assert.Equal(recoveredAt, status.Since);
        Assert.Equal(_h.Time.GetUtcNow(), (await _h.Spool.GetAsync("example.test", id, None))!.NextAttemptAt);
    }

    [Fact]
    public async Task Record_EveryWriteConflicts_GivesUpWithoutFlushing()
    {
        var shared = _h.Get<IPrimaryStatusStore>();
        await shared.OverwriteAsync(new PrimaryStatus("example.test", PrimaryState.Down, _h.Time.GetUtcNow(), _h.Time.GetUtcNow(), "connection refused", null), None);
        var losing = new AlwaysConflicts(shared);
        _h.Prober.IsUp = _ => true;
        var flushesBefore = _spool.Flushes;

        await Instance(losing).ReportReachableAsync("example.test", "primary.test", None);

        Assert.Equal(5, losing.Writes);
        Assert.Equal(0, _spool.Flushes - flushesBefore);
        Assert.Equal(PrimaryState.Down, (await StatusAsync()).State);
    }

    /// <summary>Counts domain flushes of example.test: a flush lists the domain's messages once, and nothing else here does.</summary>
    private sealed class FlushCountingSpool(ISpoolStore inner) : DelegatingSpoolStore(inner)
    {
        private int _flushes;

        public int Flushes => Volatile.Read(ref _flushes);

        public override IAsyncEnumerable<SpoolRecord> ListDomainAsync(string domain, CancellationToken cancellationToken)
        {
            if (string.Equals(domain, "example.test", StringComparison.OrdinalIgnoreCase))
            {
                Interlocked.Increment(ref _flushes);
            }

            return base.ListDomainAsync(domain, cancellationToken);
        }
    }

    /// <summary>One instance's view of the shared store, which can hold that instance's next read of a domain until told to go on.</summary>
    private sealed class SteppedStatusStore(IPrimaryStatusStore inner) : IPrimaryStatusStore
    {
        private Hold? _hold;

        public Hold HoldAfterNextRead(string domain) =>
            _hold = new Hold(domain);

        public async Task<VersionedPrimaryStatus?> GetAsync(string domain, CancellationToken cancellationToken)
        {
            var read = await inner.GetAsync(domain, cancellationToken);
            if (_hold is { } hold && string.Equals(hold.Domain, domain, StringComparison.OrdinalIgnoreCase)
                && Interlocked.CompareExchange(ref _hold, null, hold) == hold)
            {
                await hold.ReadAndWaitAsync();
            }

            return read;
        }

        public Task<bool> TrySetAsync(PrimaryStatus status, string? expectedVersion, CancellationToken cancellationToken) =>
            inner.TrySetAsync(status, expectedVersion, cancellationToken);

        public Task<IReadOnlyList<PrimaryStatus>> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);
    }

    private sealed class Hold(string domain)
    {
        private readonly TaskCompletionSource _read = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _resume = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string Domain => domain;

        /// <summary>Completes when the held read has been done.</summary>
        public Task Read => _read.Task;

        public void Resume() => _resume.SetResult();

        public Task ReadAndWaitAsync()
        {
            _read.SetResult();
            return _resume.Task;
        }
    }

    /// <summary>A store someone else always writes to between this instance's read and its write.</summary>
    private sealed class AlwaysConflicts(IPrimaryStatusStore inner) : IPrimaryStatusStore
    {
        private int _writes;

        public int Writes => _writes;

        public Task<VersionedPrimaryStatus?> GetAsync(string domain, CancellationToken cancellationToken) => inner.GetAsync(domain, cancellationToken);

        public Task<bool> TrySetAsync(PrimaryStatus status, string? expectedVersion, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _writes);
            return Task.FromResult(false);
        }

        public Task<IReadOnlyList<PrimaryStatus>> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);
    }
}
