// Gauges of what is waiting in the spool.
//
// Counting the spool means reading every record, which is far too slow for a
// metrics callback that the exporter calls whenever it likes. So the periodic
// jobs that read the spool anyway (the Expire and ProbePrimaries timers in Azure
// mode) hand their results here, and the observable gauges export the cached
// values. A value not refreshed for StaleAfter is no longer exported: a worker
// instance that stopped running the timers must not keep reporting old numbers.
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using BackupMx.Core.Inspection;
using BackupMx.Core.Ports;

namespace BackupMx.Telemetry;

public sealed class SpoolGauges
{
    public const string SpoolDepthName = "backupmx.spool.depth";
    public const string OldestAgeName = "backupmx.spool.oldest_age";
    public const string PrimaryReachableName = "backupmx.primary.reachable";
    public const string DomainTag = Core.Telemetry.DomainMetricTag;

    private readonly ConcurrentDictionary<string, Sample> _depth = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, Sample> _oldestAge = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, Sample> _reachable = new(StringComparer.OrdinalIgnoreCase);
    private readonly TimeProvider _time;

    public SpoolGauges(IMeterFactory meterFactory, TimeProvider time)
    {
        _time = time;

        // Same name as Core's meter, so AddMeter("BackupMx") exports these with the counters.
        var meter = meterFactory.Create(Core.Telemetry.Name);
        meter.CreateObservableGauge(SpoolDepthName, () => Observe(_depth), "{message}", "Messages in the spool per domain.");
        meter.CreateObservableGauge(OldestAgeName, () => Observe(_oldestAge), "s", "Age of the oldest spooled message per domain.");
        meter.CreateObservableGauge(PrimaryReachableName, () => Observe(_reachable), "1", "1 when the domain's primary answered its last probe, 0 when it did not.");
    }

    /// <summary>How long a refreshed value stays valid; a few refresh periods (the Expire timer runs every minute).</summary>
    public TimeSpan StaleAfter { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Takes depth, oldest age and primary state from one pass of the queue inspector.</summary>
    public void Update(IEnumerable<DomainQueueSummary> summaries)
    {
        var now = _time.GetUtcNow();
        foreach (var summary in summaries)
        {
            _depth[summary.Domain] = new Sample(summary.Messages, now);
            _oldestAge[summary.Domain] = new Sample(summary.OldestAge?.TotalSeconds ?? 0, now);
            SetReachable(summary.Domain, summary.PrimaryState, now);
        }
    }

    /// <summary>Takes the primaries' state right after a probe round.</summary>
    public void Update(IEnumerable<PrimaryStatus> statuses)
    {
        var now = _time.GetUtcNow();
        foreach (var status in statuses)
        {
            SetReachable(status.Domain, status.State, now);
        }
    }

    private void SetReachable(string domain, PrimaryState state, DateTimeOffset now)
    {
        // Unknown means not probed yet: better no value than a false alarm.
        if (state == PrimaryState.Unknown)
        {
            _reachable.TryRemove(domain, out _);
        }
        else
        {
            _reachable[domain] = new Sample(state == PrimaryState.Up ? 1 : 0, now);
        }
    }

    private IEnumerable<Measurement<double>> Observe(ConcurrentDictionary<string, Sample> samples)
    {
        var oldest = _time.GetUtcNow() - StaleAfter;
        return samples
            .Where(p => p.Value.At >= oldest)
            .Select(p => new Measurement<double>(p.Value.Value, new KeyValuePair<string, object?>(DomainTag, p.Key)))
            .ToList();
    }

    private readonly record struct Sample(double Value, DateTimeOffset At);
}
