// Monitoring: knows whether each domain's primary is up, and flushes on recovery.
//
// Evidence comes from periodic probes (connect, greeting, EHLO, QUIT) and from
// every delivery attempt. A primary seen answering after it was Down, or for the
// first time since start-up (Unknown), gets its domain flushed: all its spooled
// mail becomes due at once. Scheduled retries are only the fallback (rule 7).
// Only state changes are written, so a busy forwarder does not hammer the store.
//
// Several writers can report on one primary at once: in Azure mode the probe timer
// and every Forward invocation, on several instances. Each report reads the state,
// decides, and writes only if nobody wrote in between (the store's version); on a
// conflict it reads again and decides from what the other writer stored. So no
// change is lost, and of several writers that saw the primary come back, exactly
// the one whose write changed the state to Up flushes.
//
// A connect can take a while to fail, so a delivery attempt that started while
// the primary was down may fail after a probe has seen it up again. Its failure
// is stale evidence: it does not mark the primary Down. And the recovery flush
// had to pass that message by (it was leased), so the forwarder asks, once the
// failure is committed, whether a recovery happened during the attempt and if so
// gets the message the flush it missed. Only a recovery after the attempt began
// counts, so the retry that follows (which begins after it) never qualifies: at
// most one extra attempt per recovery, never a loop.
using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Monitoring;

public sealed partial class PrimaryMonitor(
    IPrimaryProber prober,
    IPrimaryStatusStore statuses,
    DomainFlusher flusher,
    IOptions<BackupMxOptions> options,
    TimeProvider time,
    ILogger<PrimaryMonitor> logger)
{
    // Conflicts need another writer to squeeze in between a read and a write; five in a row mean a
    // storm of reports, and dropping this one costs at most a probe interval.
    private const int MaxWriteAttempts = 5;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> _lastFlush = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Probes every configured domain's primary once, in parallel.</summary>
    public async Task ProbeAllAsync(CancellationToken cancellationToken)
    {
        await Parallel.ForEachAsync(
            options.Value.Domains.Select(d => d.Name),
            new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken },
            async (domain, ct) =>
            {
                ProbeResult result;
                try
                {
                    result = await prober.ProbeAsync(domain, ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    result = new ProbeResult(false, null, ex.Message);
                }

                await RecordAsync(domain, result.Reachable, result.Host, result.Error, probed: true, attemptStartedAt: null, ct).ConfigureAwait(false);
            }).ConfigureAwait(false);
    }

    public Task ReportReachableAsync(string domain, string? host, CancellationToken cancellationToken) =>
        RecordAsync(domain, reachable: true, host, error: null, probed: false, attemptStartedAt: null, cancellationToken);

    /// <summary>
    /// A delivery attempt that started at <paramref name="attemptStartedAt"/> could not reach the primary.
    /// Ignored when the primary has been seen up since the attempt started.
    /// </summary>
    public Task ReportUnreachableAsync(string domain, string? error, DateTimeOffset attemptStartedAt, CancellationToken cancellationToken) =>
        RecordAsync(domain, reachable: false, host: null, error, probed: false, attemptStartedAt, cancellationToken);

    /// <summary>
    /// Flushes one message whose attempt, started at <paramref name="attemptStartedAt"/>, failed to reach
    /// the primary, if the primary recovered while that attempt was under way: the recovery flush passed
    /// the message by because it was leased. Call it after the attempt's outcome is committed and the
    /// lease released; a recovery recorded later then finds the message unleased and flushes it itself.
    /// </summary>
    /// <returns>Whether the message was made due now.</returns>
    public async Task<bool> FlushIfRecoveredDuringAsync(SpoolRecord record, DateTimeOffset attemptStartedAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        var status = (await statuses.GetAsync(record.Domain, cancellationToken).ConfigureAwait(false))?.Status;
        if (status is not { State: PrimaryState.Up, Since: { } recoveredAt } || recoveredAt <= attemptStartedAt)
        {
            return false;
        }

        return await flusher.FlushMessageAsync(record, "primary came back during its attempt", cancellationToken).ConfigureAwait(false);
    }

    private async Task RecordAsync(string domain, bool reachable, string? host, string? error, bool probed, DateTimeOffset? attemptStartedAt, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var newState = reachable ? PrimaryState.Up : PrimaryState.Down;
        var recovered = false;

        // The store's conditional write is what keeps concurrent reports apart; this gate only makes
        // one process's reports queue instead of racing, so that embedded mode (one process) never
        // sees a conflict and in Azure mode only invocations on different instances can.
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                var current = await statuses.GetAsync(domain, cancellationToken).ConfigureAwait(false);
                var previous = current?.Status;
                if (attemptStartedAt is { } started && previous is { State: PrimaryState.Up, LastChecked: { } seenUp } && seenUp > started)
                {
                    LogStaleFailure(logger, domain, started, seenUp);
                    return;
                }

                var changed = previous?.State != newState;
                if (!changed && !probed)
                {
                    return;
                }

                var next = new PrimaryStatus(domain, newState, changed ? now : previous!.Since, now, reachable ? null : error, host ?? previous?.Host);
                if (await statuses.TrySetAsync(next, current?.Version, cancellationToken).ConfigureAwait(false))
                {
                    // Decided from the state this write replaced, so of several writers that saw the
                    // primary come back, exactly one made the change and flushes.
                    recovered = changed && reachable;
                    if (changed)
                    {
                        LogStateChanged(logger, domain, previous?.State ?? PrimaryState.Unknown, newState, host ?? "-", error ?? "-");
                    }

                    break;
                }

                // Someone else wrote since our read: what they stored may make this report stale,
                // no change, or a change from a different state, so decide again from it.
                if (attempt == MaxWriteAttempts)
                {
                    LogGaveUp(logger, domain, newState, attempt);
                    return;
                }

                LogWriteConflict(logger, domain, newState);
            }
        }
        finally
        {
            _gate.Release();
        }

        if (recovered)
        {
            // A flapping primary (or one whose connection limit made attempts fail) would otherwise
            // get its whole domain flushed at every Down→Up: every deferred message due at once,
            // more connections, more refusals. One flush per probe interval; a message whose
            // attempt spanned a skipped recovery still gets its own catch-up (FlushIfRecoveredDuringAsync).
            var previousFlush = _lastFlush.GetValueOrDefault(domain);
            if (now - previousFlush < options.Value.Delivery.ProbeInterval)
            {
                LogFlushSkipped(logger, domain, previousFlush);
                return;
            }

            _lastFlush[domain] = now;
            await flusher.FlushAsync(domain, "primary is reachable", cancellationToken).ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 1400, Level = LogLevel.Warning, Message = "Primary of {Domain} went from {Previous} to {State} (host {Host}, error {Error})")]
    private static partial void LogStateChanged(ILogger logger, string domain, PrimaryState previous, PrimaryState state, string? host, string? error);

    [LoggerMessage(EventId = 1404, Level = LogLevel.Information, Message = "Primary of {Domain} is up again, but its domain was flushed at {LastFlush}, less than a probe interval ago; not flushed again")]
    private static partial void LogFlushSkipped(ILogger logger, string domain, DateTimeOffset lastFlush);

    [LoggerMessage(EventId = 1401, Level = LogLevel.Debug, Message = "Primary of {Domain} stays Up: a delivery attempt started at {AttemptStartedAt} failed, but the primary was seen up at {SeenUpAt}")]
    private static partial void LogStaleFailure(ILogger logger, string domain, DateTimeOffset attemptStartedAt, DateTimeOffset seenUpAt);

    [LoggerMessage(EventId = 1402, Level = LogLevel.Debug, Message = "Primary status of {Domain} changed while reporting {State}; deciding again")]
    private static partial void LogWriteConflict(ILogger logger, string domain, PrimaryState state);

    [LoggerMessage(EventId = 1403, Level = LogLevel.Warning, Message = "Primary status of {Domain} kept changing; report of {State} dropped after {Attempts} tries, the next probe reports again")]
    private static partial void LogGaveUp(ILogger logger, string domain, PrimaryState state, int attempts);
}
