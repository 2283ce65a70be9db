using BackupMx.Core.Expiry;
using BackupMx.Core.Inspection;
using BackupMx.Telemetry;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Options;

namespace BackupMx.Functions;

/// <summary>
/// The periodic pass over the spool: bounces (DSN) and removes what is past retention, and
/// re-schedules due records whose wake-up went missing. It also refreshes the spool gauges
/// from the totals the sweep gathers as it pages, so the Table spool is read once per run.
/// Once per <see cref="FunctionsOptions.OrphanBodySweepInterval"/> it also deletes body blobs
/// that no record refers to (<see cref="OrphanBodySweeper"/>).
/// </summary>
public sealed class ExpireFunction(SpoolSweeper sweeper, QueueInspector inspector, SpoolGauges gauges, OrphanBodySweeper orphans, IOptions<FunctionsOptions> options)
{
    public const string Name = "Expire";

    /// <summary>Every minute, at second 0, like the embedded host's sweep.</summary>
    public const string Schedule = "0 * * * * *";

    [Function(Name)]
    public Task Run([TimerTrigger(Schedule)] TimerInfo timer, CancellationToken cancellationToken) =>
        SweepAsync(cancellationToken);

    public async Task<SweepReport> SweepAsync(CancellationToken cancellationToken)
    {
        var tally = new QueueTally();
        var report = await sweeper.SweepAsync(tally, cancellationToken).ConfigureAwait(false);
        gauges.Update(await inspector.SummarizeAsync(tally, cancellationToken).ConfigureAwait(false));
        var settings = options.Value;
        await orphans.SweepIfDueAsync(settings.OrphanBodyAge, settings.MaxOrphanBodiesPerSweep, settings.OrphanBodySweepInterval, cancellationToken).ConfigureAwait(false);
        return report;
    }
}
