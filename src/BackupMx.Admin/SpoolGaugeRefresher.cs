using BackupMx.Core.Inspection;
using BackupMx.Telemetry;
using Microsoft.Extensions.Logging;

namespace BackupMx.Admin;

/// <summary>
/// Feeds the spool gauges (depth, oldest age, primary reachable) before a scrape. In Azure mode the
/// timers that read the spool anyway hand their totals over; in embedded mode nothing else reads the
/// whole spool, so a scrape does, at most once per <see cref="MinimumInterval"/> however often or
/// concurrently it is scraped.
/// </summary>
internal sealed class SpoolGaugeRefresher(QueueInspector inspector, SpoolGauges gauges, TimeProvider time, ILogger<SpoolGaugeRefresher> logger)
{
    public static readonly TimeSpan MinimumInterval = TimeSpan.FromSeconds(5);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private DateTimeOffset? _last;

    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var now = time.GetUtcNow();
            if (_last is { } last && now - last < MinimumInterval && now >= last)
            {
                return;
            }

            gauges.Update(await inspector.SummarizeAsync(cancellationToken).ConfigureAwait(false));
            _last = now;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The counters are still worth a scrape; the gauges age out by themselves.
            Log.GaugeRefreshFailed(logger, ex);
        }
        finally
        {
            _gate.Release();
        }
    }
}
