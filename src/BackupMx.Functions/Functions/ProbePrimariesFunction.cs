using BackupMx.Core.Configuration;
using BackupMx.Core.Monitoring;
using BackupMx.Core.Notifications;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Options;
using BackupMx.Telemetry;
using Microsoft.Azure.Functions.Worker;

namespace BackupMx.Functions;

/// <summary>
/// Probes every configured primary. The monitor keeps each primary's state in the
/// IPrimaryStatusStore (a table in Azure mode, since every run is a fresh invocation)
/// and flushes a domain the moment its primary answers again (rule 7). After each probe it runs
/// the outage notifier, the same as the embedded server's, with its state in the primaries table:
/// the domains' owners are told when a primary is down with mail waiting, and when it is delivered.
/// </summary>
public sealed class ProbePrimariesFunction(
    PrimaryMonitor monitor,
    IPrimaryStatusStore statuses,
    SpoolGauges gauges,
    OutageNotifier notifier,
    IOptions<BackupMxOptions> options,
    TimeProvider time)
{
    public const string Name = "ProbePrimaries";

    /// <summary>
    /// Every 10 seconds; each run probes only when BackupMx:Delivery:ProbeInterval has passed since
    /// the last probe, so the interval is configurable in steps of 10 s. A constant rather than an
    /// app setting: a %setting% that is missing stops the host from indexing the function at all.
    /// </summary>
    public const string Schedule = "*/10 * * * * *";

    // Timer runs drift by a few hundred milliseconds; without slack a 30 s interval would become 40 s.
    private static readonly TimeSpan Slack = TimeSpan.FromSeconds(2);

    [Function(Name)]
    public Task Run([TimerTrigger(Schedule)] TimerInfo timer, CancellationToken cancellationToken) =>
        ProbeIfDueAsync(cancellationToken);

    /// <summary>Probes when the probe interval has passed since the last probe of any configured domain; returns whether it did.</summary>
    public async Task<bool> ProbeIfDueAsync(CancellationToken cancellationToken)
    {
        var config = options.Value;
        var known = (await statuses.ListAsync(cancellationToken).ConfigureAwait(false))
            .ToDictionary(s => s.Domain, s => s.LastChecked, StringComparer.OrdinalIgnoreCase);
        var now = time.GetUtcNow();
        var due = config.Domains.Any(d =>
            known.GetValueOrDefault(d.Name) is not { } last || now - last >= config.Delivery.ProbeInterval - Slack);
        if (!due)
        {
            return false;
        }

        await ProbeAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    public async Task ProbeAsync(CancellationToken cancellationToken)
    {
        await monitor.ProbeAllAsync(cancellationToken).ConfigureAwait(false);
        gauges.Update(await statuses.ListAsync(cancellationToken).ConfigureAwait(false));

        // After the probe, so a notice reflects what it found; a notice never delays the probe.
        await notifier.RunOnceAsync(cancellationToken).ConfigureAwait(false);
    }
}
