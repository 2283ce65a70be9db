using BackupMx.Core.Monitoring;
using BackupMx.Core.Ports;
using BackupMx.Telemetry;
using Microsoft.Azure.Functions.Worker;

namespace BackupMx.Functions;

/// <summary>
/// Probes every configured primary. The monitor keeps each primary's state in the
/// IPrimaryStatusStore (a table in Azure mode, since every run is a fresh invocation)
/// and flushes a domain the moment its primary answers again (rule 7).
/// </summary>
public sealed class ProbePrimariesFunction(PrimaryMonitor monitor, IPrimaryStatusStore statuses, SpoolGauges gauges)
{
    public const string Name = "ProbePrimaries";

    /// <summary>
    /// Every 30 seconds, the default BackupMx:Delivery:ProbeInterval. A constant rather than an
    /// app setting: a %setting% that is missing stops the host from indexing the function at all.
    /// </summary>
    public const string Schedule = "*/30 * * * * *";

    [Function(Name)]
    public Task Run([TimerTrigger(Schedule)] TimerInfo timer, CancellationToken cancellationToken) =>
        ProbeAsync(cancellationToken);

    public async Task ProbeAsync(CancellationToken cancellationToken)
    {
        await monitor.ProbeAllAsync(cancellationToken).ConfigureAwait(false);
        gauges.Update(await statuses.ListAsync(cancellationToken).ConfigureAwait(false));
    }
}
