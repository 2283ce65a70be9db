// Forwarding in Azure mode.
//
// Wake-ups are Service Bus scheduled messages; there is no Service Bus trigger
// here, so a timer drains them: each run receives the due ones with peek-lock
// and hands each to the MessageForwarder, at most MaxConcurrentForwards at a
// time. A wake-up is completed only after ProcessAsync returned, which is after
// the record's new state (delivered, deferred with its next wake-up, finished)
// was written; if anything throws, the wake-up is abandoned and comes back. A
// duplicate or stale wake-up is harmless: the record's ETag and lease decide
// (rule 2). The run keeps receiving until nothing is due or its time budget is
// spent; in-flight deliveries always finish. The timer runs as a singleton, so
// runs never overlap.
using BackupMx.Core.Forwarding;
using BackupMx.Core.Ports;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Functions;

/// <summary>What one Forward run did.</summary>
public sealed record ForwardRunReport(int Received, int Completed, int Abandoned, bool StoppedEarly);

public sealed partial class ForwardFunction(
    IWakeUpSource wakeUps,
    MessageForwarder forwarder,
    IOptions<FunctionsOptions> options,
    TimeProvider time,
    ILogger<ForwardFunction> logger)
{
    public const string Name = "Forward";

    /// <summary>Every 10 seconds: the longest a due wake-up waits for a run to pick it up.</summary>
    public const string Schedule = "*/10 * * * * *";

    [Function(Name)]
    public Task Run([TimerTrigger(Schedule)] TimerInfo timer, CancellationToken cancellationToken) =>
        ForwardDueAsync(cancellationToken);

    public async Task<ForwardRunReport> ForwardDueAsync(CancellationToken cancellationToken)
    {
        var config = options.Value;
        var started = time.GetTimestamp();
        var inFlight = new BoundedDispatcher<bool>(config.MaxConcurrentForwards);
        int received = 0, completed = 0, abandoned = 0;
        var stoppedEarly = false;

        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                // Settle the books first: a failure that already happened must count before receiving more.
                Count(inFlight.Collect());

                if (time.GetElapsedTime(started) >= config.ForwardTimeBudget)
                {
                    stoppedEarly = true;
                    LogBudgetSpent(logger, config.ForwardTimeBudget);
                    break;
                }

                if (abandoned >= config.MaxFailuresPerRun)
                {
                    stoppedEarly = true;
                    LogTooManyFailures(logger, abandoned);
                    break;
                }

                var free = inFlight.Free;
                if (free == 0)
                {
                    await inFlight.WhenAnyFinishedAsync().ConfigureAwait(false);
                    continue;
                }

                // Only as many as can start now: a wake-up received but left waiting would hold its lock for nothing.
                var batch = await wakeUps.ReceiveDueAsync(free, config.ReceiveWait, cancellationToken).ConfigureAwait(false);
                if (batch.Count == 0)
                {
                    if (inFlight.Running == 0)
                    {
                        break;
                    }

                    // What is in flight may make more mail due now (a DSN, a flush after the primary answered).
                    await inFlight.WhenAnyFinishedAsync().ConfigureAwait(false);
                    continue;
                }

                received += batch.Count;
                foreach (var wakeUp in batch)
                {
                    inFlight.Start(() => ForwardOneAsync(wakeUp, cancellationToken));
                }
            }
        }
        finally
        {
            // Never leave a received wake-up unsettled, even when receiving failed or the host is stopping.
            Count(await inFlight.DrainAsync().ConfigureAwait(false));
        }

        if (received > 0)
        {
            LogRun(logger, received, completed, abandoned, time.GetElapsedTime(started).TotalMilliseconds);
        }

        return new ForwardRunReport(received, completed, abandoned, stoppedEarly);

        void Count(IEnumerable<bool> settled)
        {
            foreach (var wasCompleted in settled)
            {
                if (wasCompleted)
                {
                    completed++;
                }
                else
                {
                    abandoned++;
                }
            }
        }
    }

    /// <returns>True when the wake-up was completed, false when it was abandoned.</returns>
    private async Task<bool> ForwardOneAsync(ReceivedWakeUp received, CancellationToken cancellationToken)
    {
        var wakeUp = received.WakeUp;
        ForwardOutcome outcome;
        try
        {
            outcome = await forwarder.ProcessAsync(wakeUp, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            LogForwardFailed(logger, ex, wakeUp.QueueId, wakeUp.Domain);
            try
            {
                await wakeUps.AbandonAsync(received, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception abandonError)
            {
                // The lock runs out by itself and the wake-up comes back then.
                LogSettleFailed(logger, abandonError, "abandon", wakeUp.QueueId);
            }

            return false;
        }

        LogForwarded(logger, wakeUp.QueueId, wakeUp.Domain, outcome);
        try
        {
            await wakeUps.CompleteAsync(received, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The state is already written; a wake-up that comes back finds the record finished, not due or leased.
            LogSettleFailed(logger, ex, "complete", wakeUp.QueueId);
        }

        return true;
    }

    [LoggerMessage(EventId = 6000, Level = LogLevel.Debug, Message = "Wake-up for {QueueId} ({Domain}): {Outcome}")]
    private static partial void LogForwarded(ILogger logger, string queueId, string domain, ForwardOutcome outcome);

    [LoggerMessage(EventId = 6001, Level = LogLevel.Error, Message = "Forwarding {QueueId} ({Domain}) failed; its wake-up is abandoned and will come back")]
    private static partial void LogForwardFailed(ILogger logger, Exception exception, string queueId, string domain);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Warning, Message = "Could not {Action} the wake-up for {QueueId}")]
    private static partial void LogSettleFailed(ILogger logger, Exception exception, string action, string queueId);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Information, Message = "Forward run: {Received} wake-up(s) received, {Completed} completed, {Abandoned} abandoned in {ElapsedMs:F0} ms")]
    private static partial void LogRun(ILogger logger, int received, int completed, int abandoned, double elapsedMs);

    [LoggerMessage(EventId = 6004, Level = LogLevel.Information, Message = "Forward run used its time budget of {Budget}; the next run goes on")]
    private static partial void LogBudgetSpent(ILogger logger, TimeSpan budget);

    [LoggerMessage(EventId = 6005, Level = LogLevel.Warning, Message = "Forward run stopped after {Failures} failed wake-up(s); the next run tries again")]
    private static partial void LogTooManyFailures(ILogger logger, int failures);
}
