using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Forwarding;

/// <summary>
/// Embedded mode's dispatcher: repeatedly takes the due records from the spool and
/// forwards them with bounded concurrency (<see cref="BoundedDispatcher{TResult}"/>), then sleeps until the next due time or a
/// nudge (new mail, a flush). All waiting goes through <see cref="TimeProvider"/>.
/// </summary>
public sealed partial class DueMessagePump(
    ISpoolStore spool,
    MessageForwarder forwarder,
    WakeUpSignal signal,
    IOptions<BackupMxOptions> options,
    TimeProvider time,
    ILogger<DueMessagePump> logger)
{
    /// <summary>Longest sleep without looking at the spool, a safety net for missed nudges.</summary>
    public static readonly TimeSpan MaxIdle = TimeSpan.FromSeconds(30);

    private readonly HashSet<string> _inFlight = [];
    private readonly Lock _lock = new();

    /// <summary>Number of messages being forwarded right now.</summary>
    public int InFlight
    {
        get
        {
            lock (_lock)
            {
                return _inFlight.Count;
            }
        }
    }

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var concurrency = options.Value.Delivery.MaxConcurrentDeliveries;
        var attempts = new BoundedDispatcher<string>(concurrency);
        while (!stoppingToken.IsCancellationRequested)
        {
            signal.Reset();
            var started = 0;
            TimeSpan sleep = MaxIdle;
            try
            {
                var now = time.GetUtcNow();
                await foreach (var record in spool.ListDueAsync(now, concurrency * 4, stoppingToken).ConfigureAwait(false))
                {
                    lock (_lock)
                    {
                        if (!_inFlight.Add(record.QueueId))
                        {
                            continue;
                        }
                    }

                    await attempts.WaitForSlotAsync(stoppingToken).ConfigureAwait(false);
                    started++;
                    attempts.Start(() => ForwardOneAsync(record, stoppingToken));
                }

                if (started == 0 && await NextDueAtAsync(stoppingToken).ConfigureAwait(false) is { } nextDue)
                {
                    var until = nextDue - time.GetUtcNow();
                    sleep = until < TimeSpan.Zero ? TimeSpan.FromMilliseconds(200) : until < MaxIdle ? until : MaxIdle;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                LogPumpError(logger, ex);
                sleep = TimeSpan.FromSeconds(1);
            }

            attempts.Collect();
            LogPass(logger, started, attempts.Running, sleep);
            if (started > 0)
            {
                // Look again at once when a slot frees up or something new arrives. Fast attempts
                // may all be over already, before the listing ended: then look again straight away.
                if (attempts.Running > 0)
                {
                    await Task.WhenAny(attempts.WhenAnyFinishedAsync(), signal.WaitAsync()).ConfigureAwait(false);
                }

                continue;
            }

            // From here a wake-up due after the sleep ends need not wake the pump: it looks then anyway.
            // Only while no attempt runs: a finishing attempt starts a new look at once, and that
            // look's sleep is chosen from the spool as it is then.
            if (attempts.Running == 0)
            {
                signal.SleepUntil(time.GetUtcNow() + sleep);
            }

            using var delayCts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var delay = Task.Delay(sleep, time, delayCts.Token);
            var tasks = new List<Task> { delay, signal.WaitAsync() };
            if (attempts.Running > 0)
            {
                tasks.Add(attempts.WhenAnyFinishedAsync());
            }

            await Task.WhenAny(tasks).ConfigureAwait(false);
            await delayCts.CancelAsync().ConfigureAwait(false);
        }

        // Let attempts in flight finish their state writes; the host's shutdown timeout bounds this.
        await attempts.DrainAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// The earliest moment a record becomes due. The listing is in next-attempt order and a leased
    /// record is due only when its lease ends, so the records being delivered here can stand in front
    /// of the one sought: it is among the first <see cref="InFlight"/> + 1, and the search stops at a
    /// next attempt no earlier than the best due time found.
    /// </summary>
    private async Task<DateTimeOffset?> NextDueAtAsync(CancellationToken cancellationToken)
    {
        DateTimeOffset? earliest = null;
        await foreach (var record in spool.ListDueAsync(DateTimeOffset.MaxValue, InFlight + 1, cancellationToken).ConfigureAwait(false))
        {
            if (earliest is { } best && record.NextAttemptAt >= best)
            {
                break;
            }

            if (earliest is null || record.DueAt < earliest)
            {
                earliest = record.DueAt;
            }
        }

        return earliest;
    }

    /// <returns>The record's queue id.</returns>
    private async Task<string> ForwardOneAsync(SpoolRecord record, CancellationToken stoppingToken)
    {
        try
        {
            // The listing's copy is as good as a fresh read: the claim checks its ETag.
            await forwarder.ProcessAsync(record, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: the record stays leased until its lease runs out, then is due again.
        }
        catch (Exception ex)
        {
            LogForwardError(logger, ex, record.QueueId);
        }
        finally
        {
            lock (_lock)
            {
                _inFlight.Remove(record.QueueId);
            }

            signal.Set();
        }

        return record.QueueId;
    }

    [LoggerMessage(EventId = 1600, Level = LogLevel.Error, Message = "Delivery pump could not read the spool; retrying")]
    private static partial void LogPumpError(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1602, Level = LogLevel.Debug, Message = "Delivery pump started {Started} attempt(s), {Running} running; idle for up to {Sleep}")]
    private static partial void LogPass(ILogger logger, int started, int running, TimeSpan sleep);

    [LoggerMessage(EventId = 1601, Level = LogLevel.Error, Message = "Forwarding {QueueId} failed; it stays spooled")]
    private static partial void LogForwardError(ILogger logger, Exception exception, string queueId);
}
