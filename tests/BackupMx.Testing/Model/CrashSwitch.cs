using System.Runtime.CompilerServices;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing.Fakes;

namespace BackupMx.Testing.Model;

/// <summary>Thrown by every port of a process that has died: nothing it does reaches storage any more.</summary>
public sealed class SimulatedCrashException() : Exception("the process died");

/// <summary>A storage call that failed (a timeout, a 500, a full disk) while the process lives on.</summary>
public sealed class InjectedFaultException() : IOException("injected storage fault");

/// <summary>
/// The life of one simulated process. Armed, it dies at a chosen write (before or after the write
/// is made); dead, every call of its ports throws, as if the process were gone.
/// </summary>
public sealed class CrashSwitch
{
    private readonly Lock _lock = new();
    private int _writesLeft = -1;
    private bool _afterTheWrite;
    private int _faultIn = -1;
    private bool _faultAfterTheWrite;

    public bool Killed { get; private set; }

    /// <summary>Queue ids of the records whose write an injected fault failed (the outcome of an attempt may be lost with it).</summary>
    public HashSet<string> FaultedRecords { get; } = new(StringComparer.Ordinal);

    public void Arm(int writes, bool afterTheWrite)
    {
        lock (_lock)
        {
            _writesLeft = writes;
            _afterTheWrite = afterTheWrite;
        }
    }

    /// <summary>
    /// The <paramref name="writes"/>-th write from now fails, once: before it is made, or after
    /// (committed, but the caller hears an error, as when a reply is lost).
    /// </summary>
    public void ArmFault(int writes, bool afterTheWrite)
    {
        lock (_lock)
        {
            _faultIn = writes;
            _faultAfterTheWrite = afterTheWrite;
        }
    }

    public void Disarm()
    {
        lock (_lock)
        {
            _writesLeft = -1;
            _faultIn = -1;
        }
    }

    public void Kill()
    {
        lock (_lock)
        {
            Killed = true;
        }
    }

    public void ThrowIfKilled()
    {
        if (Killed)
        {
            throw new SimulatedCrashException();
        }
    }

    /// <summary>What each injected fault and crash hit, for the report.</summary>
    public List<string> Log { get; } = [];

    public async Task<T> WriteAsync<T>(Func<Task<T>> write, string? record = null, [CallerMemberName] string call = "", string? what = null)
    {
        bool dies;
        bool after;
        bool faults;
        bool faultAfter;
        lock (_lock)
        {
            ThrowIfKilled();
            dies = _writesLeft > 0 && --_writesLeft == 0;
            after = _afterTheWrite;
            if (dies && !after)
            {
                Killed = true;
            }

            faults = _faultIn > 0 && --_faultIn == 0;
            faultAfter = _faultAfterTheWrite;
            if (faults && record is not null)
            {
                FaultedRecords.Add(record);
            }

            if (faults || dies)
            {
                Log.Add($"{(dies ? "crash" : "fault")} {(dies ? after : faultAfter) switch { true => "after", false => "before" }} {call} {record ?? what}");
            }
        }

        ThrowIfKilled();
        if (faults && !faultAfter)
        {
            throw new InjectedFaultException();
        }

        var result = await write().ConfigureAwait(false);
        if (dies)
        {
            Kill();
        }

        ThrowIfKilled();
        if (faults)
        {
            throw new InjectedFaultException();
        }

        return result;
    }

    public Task WriteAsync(Func<Task> write, string? record = null, [CallerMemberName] string call = "", string? what = null) => WriteAsync(
        async () =>
        {
            await write().ConfigureAwait(false);
            return true;
        },
        record,
        call,
        what);

    public async Task<T> ReadAsync<T>(Func<Task<T>> read)
    {
        ThrowIfKilled();
        var result = await read().ConfigureAwait(false);
        ThrowIfKilled();
        return result;
    }

    public async IAsyncEnumerable<T> ListAsync<T>(IAsyncEnumerable<T> items, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ThrowIfKilled();
        await foreach (var item in items.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            ThrowIfKilled();
            yield return item;
        }
    }
}

public sealed class CrashableSpoolStore(ISpoolStore inner, CrashSwitch crash) : DelegatingSpoolStore(inner)
{
    public override Task<SpoolRecord> CreateAsync(SpoolRecord record, CancellationToken cancellationToken) => crash.WriteAsync(() => base.CreateAsync(record, cancellationToken), what: record.QueueId);

    public override Task<SpoolRecord?> GetAsync(string domain, string queueId, CancellationToken cancellationToken) => crash.ReadAsync(() => base.GetAsync(domain, queueId, cancellationToken));

    public override Task<SpoolRecord?> TryUpdateAsync(SpoolRecord record, CancellationToken cancellationToken) => crash.WriteAsync(() => base.TryUpdateAsync(record, cancellationToken), record.QueueId);

    public override Task<bool> TryDeleteAsync(SpoolRecord record, CancellationToken cancellationToken) => crash.WriteAsync(() => base.TryDeleteAsync(record, cancellationToken), record.QueueId);

    public override IAsyncEnumerable<SpoolRecord> ListDomainAsync(string domain, CancellationToken cancellationToken) => crash.ListAsync(base.ListDomainAsync(domain, cancellationToken), cancellationToken);

    public override IAsyncEnumerable<SpoolRecord> ListDueAsync(DateTimeOffset dueBy, int max, CancellationToken cancellationToken) => crash.ListAsync(base.ListDueAsync(dueBy, max, cancellationToken), cancellationToken);

    public override IAsyncEnumerable<SpoolRecord> ListAllAsync(CancellationToken cancellationToken) => crash.ListAsync(base.ListAllAsync(cancellationToken), cancellationToken);
}

public sealed class CrashableBodyStore(IBodyStore inner, CrashSwitch crash) : IBodyStore
{
    public Task<long> WriteAsync(string queueId, Stream content, CancellationToken cancellationToken) => crash.WriteAsync(() => inner.WriteAsync(queueId, content, cancellationToken), what: "body " + queueId);

    public Task<Stream> OpenReadAsync(string queueId, CancellationToken cancellationToken) => crash.ReadAsync(() => inner.OpenReadAsync(queueId, cancellationToken));

    public Task DeleteAsync(string queueId, CancellationToken cancellationToken) => crash.WriteAsync(() => inner.DeleteAsync(queueId, cancellationToken), what: "body " + queueId);
}

public sealed class CrashableWakeUpQueue(IWakeUpQueue inner, CrashSwitch crash) : IWakeUpQueue
{
    public Task<string?> ScheduleAsync(WakeUp wakeUp, DateTimeOffset dueAt, CancellationToken cancellationToken) => crash.WriteAsync(() => inner.ScheduleAsync(wakeUp, dueAt, cancellationToken), what: "wake-up " + wakeUp.QueueId);

    public Task CancelAsync(string token, CancellationToken cancellationToken) => crash.WriteAsync(() => inner.CancelAsync(token, cancellationToken), what: "wake-up token " + token);
}

public sealed class CrashablePrimaryStatusStore(IPrimaryStatusStore inner, CrashSwitch crash) : IPrimaryStatusStore
{
    public Task<VersionedPrimaryStatus?> GetAsync(string domain, CancellationToken cancellationToken) => crash.ReadAsync(() => inner.GetAsync(domain, cancellationToken));

    public Task<bool> TrySetAsync(PrimaryStatus status, string? expectedVersion, CancellationToken cancellationToken) => crash.WriteAsync(() => inner.TrySetAsync(status, expectedVersion, cancellationToken), what: "status " + status.Domain);

    public Task<IReadOnlyList<PrimaryStatus>> ListAsync(CancellationToken cancellationToken) => crash.ReadAsync(() => inner.ListAsync(cancellationToken));
}

/// <summary>A process's clock: the world's, shifted by a skew that may change (an NTP step, even backwards).</summary>
public sealed class SkewedTimeProvider(TimeProvider world) : TimeProvider
{
    private long _offsetTicks;

    public TimeProvider World => world;

    public TimeSpan Offset
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));
        set => Interlocked.Exchange(ref _offsetTicks, value.Ticks);
    }

    public override DateTimeOffset GetUtcNow() => world.GetUtcNow() + Offset;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override long TimestampFrequency => world.TimestampFrequency;

    public override long GetTimestamp() => world.GetTimestamp();

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) => world.CreateTimer(callback, state, dueTime, period);
}
