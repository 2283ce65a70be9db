using BackupMx.Core.Configuration;
using BackupMx.Core.Expiry;
using BackupMx.Core.Forwarding;
using BackupMx.Core.Monitoring;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Hosting;

/// <summary>Runs the <see cref="DueMessagePump"/> for the life of the host.</summary>
public sealed class ForwardingService(DueMessagePump pump) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => pump.RunAsync(stoppingToken);
}

/// <summary>Probes every primary at start-up and then every <c>ProbeInterval</c>.</summary>
public sealed partial class PrimaryMonitorService(
    PrimaryMonitor monitor,
    IOptions<BackupMxOptions> options,
    TimeProvider time,
    ILogger<PrimaryMonitorService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await monitor.ProbeAllAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogProbeLoopError(logger, ex);
            }

            try
            {
                await Task.Delay(options.Value.Delivery.ProbeInterval, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [LoggerMessage(EventId = 1700, Level = LogLevel.Error, Message = "Probing primaries failed")]
    private static partial void LogProbeLoopError(ILogger logger, Exception exception);
}

/// <summary>Runs the <see cref="SpoolSweeper"/> once a minute.</summary>
public sealed partial class SweepService(SpoolSweeper sweeper, TimeProvider time, ILogger<SweepService> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Interval, time, stoppingToken).ConfigureAwait(false);
                await sweeper.SweepAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogSweepError(logger, ex);
            }
        }
    }

    [LoggerMessage(EventId = 1701, Level = LogLevel.Error, Message = "Spool sweep failed")]
    private static partial void LogSweepError(ILogger logger, Exception exception);
}
