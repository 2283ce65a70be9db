using Azure.Messaging.ServiceBus;

namespace BackupMx.Azure.Tests.Model;

/// <summary>
/// One Service Bus queue of scheduled messages on the model's clock, shared by every process:
/// a message becomes receivable at its scheduled time, is locked while a worker holds it, and
/// comes back if the worker dies (its lock runs out) or abandons it. Several senders and receivers
/// (the relay's lives, the flush command) see the same queue.
/// </summary>
public sealed class ModelServiceBus(TimeProvider time)
{
    private readonly Lock _lock = new();
    private readonly List<(ServiceBusMessage Message, DateTimeOffset At, long SequenceNumber)> _scheduled = [];
    private readonly Dictionary<long, (ServiceBusMessage Message, DateTimeOffset At)> _locked = [];
    private long _nextSequenceNumber = 1;

    public ServiceBusSender CreateSender() => new Sender(this);

    public ServiceBusReceiver CreateReceiver() => new Receiver(this);

    /// <summary>Every scheduled message is lost (the sweep must rescue their records).</summary>
    public void DropScheduled()
    {
        lock (_lock)
        {
            _scheduled.Clear();
        }
    }

    /// <summary>The receiving worker died: its locks run out and the messages come back.</summary>
    public void ReleaseLocks()
    {
        lock (_lock)
        {
            foreach (var (sequenceNumber, (message, at)) in _locked)
            {
                _scheduled.Add((message, at, sequenceNumber));
            }

            _locked.Clear();
        }
    }

    private long Schedule(ServiceBusMessage message, DateTimeOffset at)
    {
        lock (_lock)
        {
            var sequenceNumber = _nextSequenceNumber++;
            _scheduled.Add((message, at, sequenceNumber));
            return sequenceNumber;
        }
    }

    private void Cancel(long sequenceNumber)
    {
        lock (_lock)
        {
            _scheduled.RemoveAll(s => s.SequenceNumber == sequenceNumber);
        }
    }

    private List<ServiceBusReceivedMessage> Receive(int max)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            var due = _scheduled.Where(s => s.At <= now).OrderBy(s => s.At).ThenBy(s => s.SequenceNumber).Take(max).ToList();
            var received = new List<ServiceBusReceivedMessage>();
            foreach (var item in due)
            {
                _scheduled.Remove(item);
                _locked[item.SequenceNumber] = (item.Message, item.At);
                received.Add(ServiceBusModelFactory.ServiceBusReceivedMessage(
                    body: item.Message.Body,
                    messageId: item.Message.MessageId,
                    properties: new Dictionary<string, object>(item.Message.ApplicationProperties),
                    sequenceNumber: item.SequenceNumber));
            }

            return received;
        }
    }

    private void Settle(ServiceBusReceivedMessage message, bool complete)
    {
        lock (_lock)
        {
            if (!_locked.Remove(message.SequenceNumber, out var held))
            {
                throw new ServiceBusException("lock lost", ServiceBusFailureReason.MessageLockLost);
            }

            if (!complete)
            {
                _scheduled.Add((held.Message, time.GetUtcNow(), message.SequenceNumber));
            }
        }
    }

    private sealed class Sender(ModelServiceBus bus) : ServiceBusSender
    {
        public override Task<long> ScheduleMessageAsync(ServiceBusMessage message, DateTimeOffset scheduledEnqueueTime, CancellationToken cancellationToken = default) =>
            Task.FromResult(bus.Schedule(message, scheduledEnqueueTime));

        public override Task<IReadOnlyList<long>> ScheduleMessagesAsync(IEnumerable<ServiceBusMessage> messages, DateTimeOffset scheduledEnqueueTime, CancellationToken cancellationToken = default)
        {
            var batch = messages.ToList();
            ServiceBusLimits.EnsureFits(batch);
            return Task.FromResult<IReadOnlyList<long>>([.. batch.Select(m => bus.Schedule(m, scheduledEnqueueTime))]);
        }

        public override Task CancelScheduledMessageAsync(long sequenceNumber, CancellationToken cancellationToken = default)
        {
            bus.Cancel(sequenceNumber);
            return Task.CompletedTask;
        }
    }

    private sealed class Receiver(ModelServiceBus bus) : ServiceBusReceiver
    {
        public override Task<IReadOnlyList<ServiceBusReceivedMessage>> ReceiveMessagesAsync(int maxMessages, TimeSpan? maxWaitTime = null, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<ServiceBusReceivedMessage>>(bus.Receive(maxMessages));

        public override Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default)
        {
            bus.Settle(message, complete: true);
            return Task.CompletedTask;
        }

        public override Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
        {
            bus.Settle(message, complete: false);
            return Task.CompletedTask;
        }

        public override Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, string deadLetterReason, string? deadLetterErrorDescription = null, CancellationToken cancellationToken = default)
        {
            bus.Settle(message, complete: true);
            return Task.CompletedTask;
        }
    }
}
