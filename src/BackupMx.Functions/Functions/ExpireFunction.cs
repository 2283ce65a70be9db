using BackupMx.Core.Expiry;
using BackupMx.Core.Inspection;
using BackupMx.Telemetry;
using Microsoft.Azure.Functions.Worker;

namespace BackupMx.Functions;

/// <summary>
/// The periodic pass over the spool: bounces (DSN) and removes what is past retention, and
/// re-schedules due records whose wake-up went missing. It also refreshes the spool gauges,
/// since it is the one job that reads the whole spool anyway.
/// </summary>
public sealed class ExpireFunction(SpoolSweeper sweeper, QueueInspector inspector, SpoolGauges gauges)
{
    public const string Name = "Expire";

    /// <summary>Every minute, at second 0, like the embedded host's sweep.</summary>
    public const string Schedule = "0 * * * * *";

    [Function(Name)]
    public Task Run([TimerTrigger(Schedule)] TimerInfo timer, CancellationToken cancellationToken) =>
        SweepAsync(cancellationToken);

    public async Task<SweepReport> SweepAsync(CancellationToken cancellationToken)
    {
        var report = await sweeper.SweepAsync(cancellationToken).ConfigureAwait(false);
        gauges.Update(await inspector.SummarizeAsync(cancellationToken).ConfigureAwait(false));
        return report;
    }
}
