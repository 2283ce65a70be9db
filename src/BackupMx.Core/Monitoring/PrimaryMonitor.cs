// Monitoring: knows whether each domain's primary is up, and flushes on recovery.
//
// Evidence comes from periodic probes (connect, greeting, EHLO, QUIT) and from
// every delivery attempt. A primary seen answering after it was Down, or for the
// first time since start-up (Unknown), gets its domain flushed: all its spooled
// mail becomes due at once. Scheduled retries are only the fallback (rule 7).
// Only state changes are written, so a busy forwarder does not hammer the store.
using BackupMx.Core.Configuration;
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
    private readonly SemaphoreSlim _gate = new(1, 1);

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

                await RecordAsync(domain, result.Reachable, result.Host, result.Error, probed: true, ct).ConfigureAwait(false);
            }).ConfigureAwait(false);
    }

    public Task ReportReachableAsync(string domain, string? host, CancellationToken cancellationToken) =>
        RecordAsync(domain, reachable: true, host, error: null, probed: false, cancellationToken);

    public Task ReportUnreachableAsync(string domain, string? error, CancellationToken cancellationToken) =>
        RecordAsync(domain, reachable: false, host: null, error, probed: false, cancellationToken);

    private async Task RecordAsync(string domain, bool reachable, string? host, string? error, bool probed, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var newState = reachable ? PrimaryState.Up : PrimaryState.Down;
        bool recovered;

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var previous = await statuses.GetAsync(domain, cancellationToken).ConfigureAwait(false);
            var changed = previous?.State != newState;
            if (!changed && !probed)
            {
                return;
            }

            await statuses.SetAsync(
                new PrimaryStatus(domain, newState, changed ? now : previous!.Since, now, reachable ? null : error, host ?? previous?.Host),
                cancellationToken).ConfigureAwait(false);

            recovered = changed && reachable;
            if (changed)
            {
                LogStateChanged(logger, domain, previous?.State ?? PrimaryState.Unknown, newState, host, error);
            }
        }
        finally
        {
            _gate.Release();
        }

        if (recovered)
        {
            await flusher.FlushAsync(domain, "primary is reachable", cancellationToken).ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 400, Level = LogLevel.Warning, Message = "Primary of {Domain} went from {Previous} to {State} (host {Host}, error {Error})")]
    private static partial void LogStateChanged(ILogger logger, string domain, PrimaryState previous, PrimaryState state, string? host, string? error);
}
