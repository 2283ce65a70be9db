using Azure.Messaging.ServiceBus;

namespace BackupMx.Azure.Tests;

/// <summary>
/// A sender that records what it is asked to do. The SDK types have protected parameterless
/// constructors and virtual members precisely so tests can stand in for a namespace.
/// </summary>
internal sealed class FakeSender : ServiceBusSender
{
    private long _nextSequenceNumber = 1000;

    public List<(ServiceBusMessage Message, DateTimeOffset At, long SequenceNumber)> Scheduled { get; } = [];

    public List<long> Cancelled { get; } = [];

    /// <summary>Thrown by the next cancel, if set.</summary>
    public Exception? CancelFailure { get; set; }

    /// <summary>Decides, per message, whether scheduling fails (and with what) instead of succeeding.</summary>
    public Func<ServiceBusMessage, Exception?>? ScheduleFailure { get; set; }

    public override Task<long> ScheduleMessageAsync(ServiceBusMessage message, DateTimeOffset scheduledEnqueueTime, CancellationToken cancellationToken = default)
    {
        if (ScheduleFailure?.Invoke(message) is { } failure)
        {
            return Task.FromException<long>(failure);
        }

        var sequenceNumber = _nextSequenceNumber++;
        Scheduled.Add((message, scheduledEnqueueTime, sequenceNumber));
        return Task.FromResult(sequenceNumber);
    }

    /// <summary>The size of each <see cref="ScheduleMessagesAsync"/> call, in messages, failed ones included.</summary>
    public List<int> ScheduleCalls { get; } = [];

    /// <summary>
    /// When a schedule call fails, schedule its messages all the same: the reply was lost, not the
    /// request, so the caller does not know they are on their way.
    /// </summary>
    public bool LoseRepliesOfFailures { get; set; }

    /// <summary>
    /// All or nothing, as Service Bus documents: a call whose messages exceed the batch size limit, or
    /// one of whose messages <see cref="ScheduleFailure"/> fails, schedules none of them (unless
    /// <see cref="LoseRepliesOfFailures"/>).
    /// </summary>
    public override Task<IReadOnlyList<long>> ScheduleMessagesAsync(IEnumerable<ServiceBusMessage> messages, DateTimeOffset scheduledEnqueueTime, CancellationToken cancellationToken = default)
    {
        var batch = messages.ToList();
        ScheduleCalls.Add(batch.Count);
        ServiceBusLimits.EnsureFits(batch);
        var failure = batch.Select(m => ScheduleFailure?.Invoke(m)).FirstOrDefault(f => f is not null);
        if (failure is not null && !LoseRepliesOfFailures)
        {
            return Task.FromException<IReadOnlyList<long>>(failure);
        }

        var sequenceNumbers = new List<long>(batch.Count);
        foreach (var message in batch)
        {
            var sequenceNumber = _nextSequenceNumber++;
            Scheduled.Add((message, scheduledEnqueueTime, sequenceNumber));
            sequenceNumbers.Add(sequenceNumber);
        }

        return failure is not null ? Task.FromException<IReadOnlyList<long>>(failure) : Task.FromResult<IReadOnlyList<long>>(sequenceNumbers);
    }

    public override Task CancelScheduledMessageAsync(long sequenceNumber, CancellationToken cancellationToken = default)
    {
        Cancelled.Add(sequenceNumber);
        return CancelFailure is { } failure ? Task.FromException(failure) : Task.CompletedTask;
    }
}

internal sealed class FakeReceiver : ServiceBusReceiver
{
    public Queue<ServiceBusReceivedMessage> Available { get; } = new();

    public List<(int Max, TimeSpan? Wait)> Receives { get; } = [];

    public List<ServiceBusReceivedMessage> Completed { get; } = [];

    public List<ServiceBusReceivedMessage> Abandoned { get; } = [];

    public List<(ServiceBusReceivedMessage Message, string Reason)> DeadLettered { get; } = [];

    public Exception? SettleFailure { get; set; }

    public override Task<IReadOnlyList<ServiceBusReceivedMessage>> ReceiveMessagesAsync(int maxMessages, TimeSpan? maxWaitTime = null, CancellationToken cancellationToken = default)
    {
        Receives.Add((maxMessages, maxWaitTime));
        var batch = new List<ServiceBusReceivedMessage>();
        while (batch.Count < maxMessages && Available.TryDequeue(out var message))
        {
            batch.Add(message);
        }

        return Task.FromResult<IReadOnlyList<ServiceBusReceivedMessage>>(batch);
    }

    public override Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default)
    {
        if (SettleFailure is { } failure)
        {
            return Task.FromException(failure);
        }

        Completed.Add(message);
        return Task.CompletedTask;
    }

    public override Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
    {
        if (SettleFailure is { } failure)
        {
            return Task.FromException(failure);
        }

        Abandoned.Add(message);
        return Task.CompletedTask;
    }

    public override Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, string deadLetterReason, string? deadLetterErrorDescription = null, CancellationToken cancellationToken = default)
    {
        DeadLettered.Add((message, deadLetterReason));
        return Task.CompletedTask;
    }
}
