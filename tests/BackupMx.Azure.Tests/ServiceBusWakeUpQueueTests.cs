using System.Text.Json;
using Azure.Messaging.ServiceBus;
using BackupMx.Core.Ports;
using BackupMx.Testing.Contracts;

namespace BackupMx.Azure.Tests;

public sealed class ServiceBusWakeUpQueueTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly FakeSender _sender = new();
    private readonly FakeReceiver _receiver = new();

    private ServiceBusWakeUpQueue CreateQueue() => new(_sender, _receiver);

    [Fact]
    public async Task ScheduleAsync_SchedulesAtDueTime_AndReturnsTheSequenceNumberAsToken()
    {
        var queue = CreateQueue();
        var due = SpoolRecords.T0.AddMinutes(5);

        var token = await queue.ScheduleAsync(new WakeUp("example.test", "QID1"), due, None);

        var (message, at, sequenceNumber) = Assert.Single(_sender.Scheduled);
        Assert.Equal(sequenceNumber.ToString(System.Globalization.CultureInfo.InvariantCulture), token);
        Assert.Equal(due, at);
        Assert.Equal("example.test", message.ApplicationProperties["domain"]);
        Assert.Equal("QID1", message.ApplicationProperties["queueId"]);
        Assert.Equal($"QID1:{due.UtcTicks}", message.MessageId);
        Assert.Equal("application/json", message.ContentType);
        using var body = JsonDocument.Parse(message.Body.ToMemory());
        Assert.Equal("example.test", body.RootElement.GetProperty("domain").GetString());
        Assert.Equal("QID1", body.RootElement.GetProperty("queueId").GetString());
    }

    [Fact]
    public async Task ScheduleAsync_SameMessageAtAnotherTime_GetsAnotherMessageId()
    {
        // Duplicate detection must only drop a retried schedule of the same attempt, never a flush or a later retry.
        var queue = CreateQueue();
        await queue.ScheduleAsync(new WakeUp("example.test", "QID1"), SpoolRecords.T0, None);
        await queue.ScheduleAsync(new WakeUp("example.test", "QID1"), SpoolRecords.T0.AddMinutes(5), None);
        await queue.ScheduleAsync(new WakeUp("example.test", "QID1"), SpoolRecords.T0, None);

        var ids = _sender.Scheduled.Select(s => s.Message.MessageId).ToList();
        Assert.NotEqual(ids[0], ids[1]);
        Assert.Equal(ids[0], ids[2]);
    }

    [Fact]
    public async Task ScheduleManyAsync_250WithLongestDomain_CallsOfAtMostTheLimitWithinTheBatchSizeAndTokensInOrder()
    {
        var queue = CreateQueue();
        var due = SpoolRecords.T0.AddMinutes(5);
        var domain = string.Join('.', Enumerable.Repeat(new string('d', 63), 4))[..253];
        var wakeUps = Enumerable.Range(0, 250).Select(i => new WakeUp(domain, $"QUEUEID{i:D3}ABCDEFGHIJKLMNOPQRSTUVWXYZ0123")).ToList();

        var tokens = await queue.ScheduleManyAsync(wakeUps, due, None);

        Assert.Equal([100, 100, 50], _sender.ScheduleCalls);
        Assert.Equal(_sender.Scheduled.Select(s => s.SequenceNumber.ToString(System.Globalization.CultureInfo.InvariantCulture)), tokens);
        Assert.Equal(wakeUps.Select(w => w.QueueId), _sender.Scheduled.Select(s => (string)s.Message.ApplicationProperties["queueId"]));
        Assert.All(_sender.Scheduled, s => Assert.Equal(due, s.At));
        Assert.All(_sender.Scheduled, s => Assert.Equal($"{s.Message.ApplicationProperties["queueId"]}:{due.UtcTicks}", s.Message.MessageId));
        Assert.True(ServiceBusWakeUpQueue.MaxWakeUpsPerSchedule * ServiceBusLimits.SizeOf(_sender.Scheduled[0].Message) < ServiceBusLimits.MaxBatchBytes / 2);
    }

    [Fact]
    public async Task ScheduleManyAsync_SecondCallFails_ThrowsWithTheFirstCallScheduledAndNothingOfTheSecond()
    {
        var queue = CreateQueue();
        var failing = "QID150";
        _sender.ScheduleFailure = m => (string)m.ApplicationProperties["queueId"] == failing ? new ServiceBusException("busy", ServiceBusFailureReason.ServiceBusy) : null;
        var wakeUps = Enumerable.Range(0, 250).Select(i => new WakeUp("example.test", $"QID{i:D3}")).ToList();

        var error = await Assert.ThrowsAsync<ServiceBusException>(() => queue.ScheduleManyAsync(wakeUps, SpoolRecords.T0, None));

        Assert.Equal(ServiceBusFailureReason.ServiceBusy, error.Reason);
        Assert.Equal([100, 100], _sender.ScheduleCalls);
        Assert.Equal(100, _sender.Scheduled.Count);
    }

    [Fact]
    public async Task FakeSender_ScheduleCallOverTheBatchSizeLimit_IsRefusedAsByServiceBusAndSchedulesNothing()
    {
        var messages = Enumerable.Range(0, 3).Select(_ => new ServiceBusMessage(new byte[100 * 1024])).ToList();

        var error = await Assert.ThrowsAsync<ServiceBusException>(() => _sender.ScheduleMessagesAsync(messages, SpoolRecords.T0));

        Assert.Equal(ServiceBusFailureReason.MessageSizeExceeded, error.Reason);
        Assert.Empty(_sender.Scheduled);
        await _sender.ScheduleMessagesAsync(messages.Take(2), SpoolRecords.T0);
        Assert.Equal(2, _sender.Scheduled.Count);
    }

    [Fact]
    public async Task CancelAsync_Token_CancelsThatSequenceNumber()
    {
        var queue = CreateQueue();
        var token = await queue.ScheduleAsync(new WakeUp("example.test", "QID1"), SpoolRecords.T0, None);

        await queue.CancelAsync(token!, None);

        Assert.Equal([_sender.Scheduled[0].SequenceNumber], _sender.Cancelled);
    }

    [Fact]
    public async Task CancelAsync_MessageNotFound_IsSwallowed()
    {
        var queue = CreateQueue();
        _sender.CancelFailure = new ServiceBusException("gone", ServiceBusFailureReason.MessageNotFound);

        await queue.CancelAsync("42", None);

        Assert.Equal([42L], _sender.Cancelled);
    }

    [Fact]
    public async Task CancelAsync_OtherFailure_Propagates()
    {
        var queue = CreateQueue();
        _sender.CancelFailure = new ServiceBusException("busy", ServiceBusFailureReason.ServiceBusy);

        var ex = await Assert.ThrowsAsync<ServiceBusException>(() => queue.CancelAsync("42", None));
        Assert.Equal(ServiceBusFailureReason.ServiceBusy, ex.Reason);
    }

    [Fact]
    public async Task CancelAsync_ForeignToken_IsIgnored()
    {
        var queue = CreateQueue();
        await queue.CancelAsync("in-process", None);
        Assert.Empty(_sender.Cancelled);
    }

    [Fact]
    public async Task ReceiveDueAsync_MapsMessagesToWakeUpsWithTheMessageAsHandle()
    {
        var queue = CreateQueue();
        var first = Received("example.test", "QID1", 1);
        var second = Received("other.test", "QID2", 2);
        _receiver.Available.Enqueue(first);
        _receiver.Available.Enqueue(second);

        var received = await queue.ReceiveDueAsync(10, TimeSpan.FromSeconds(3), None);

        Assert.Equal((10, (TimeSpan?)TimeSpan.FromSeconds(3)), Assert.Single(_receiver.Receives));
        Assert.Equal([("example.test", "QID1"), ("other.test", "QID2")], received.Select(r => (r.WakeUp.Domain, r.WakeUp.QueueId)));
        Assert.Same(first, Assert.IsType<ServiceBusWakeUpReceipt>(received[0].Receipt).Message);
        Assert.Same(second, Assert.IsType<ServiceBusWakeUpReceipt>(received[1].Receipt).Message);
    }

    [Fact]
    public async Task ReceiveDueAsync_ScheduledWakeUp_CarriesItsDueTime()
    {
        var queue = CreateQueue();
        var due = SpoolRecords.T0.AddMinutes(5);
        await queue.ScheduleAsync(new WakeUp("example.test", "QID1"), due, None);
        var (message, _, sequenceNumber) = Assert.Single(_sender.Scheduled);
        _receiver.Available.Enqueue(ServiceBusModelFactory.ServiceBusReceivedMessage(
            body: message.Body, messageId: message.MessageId, sequenceNumber: sequenceNumber, properties: message.ApplicationProperties));

        // One scheduled before the property existed: the message id still says when.
        _receiver.Available.Enqueue(ServiceBusModelFactory.ServiceBusReceivedMessage(
            messageId: $"QID2:{due.UtcTicks}",
            sequenceNumber: 2,
            properties: new Dictionary<string, object> { ["domain"] = "example.test", ["queueId"] = "QID2" }));

        var received = await queue.ReceiveDueAsync(10, TimeSpan.FromSeconds(1), None);

        Assert.Equal([due, due], received.Select(r => r.WakeUp.DueAt));
    }

    [Fact]
    public async Task ReceiveDueAsync_BodyOnly_IsUnderstood()
    {
        var queue = CreateQueue();
        _receiver.Available.Enqueue(ServiceBusModelFactory.ServiceBusReceivedMessage(
            body: BinaryData.FromString("""{"domain":"example.test","queueId":"QID9"}"""), messageId: "m", sequenceNumber: 9));

        var received = await queue.ReceiveDueAsync(1, TimeSpan.FromSeconds(1), None);

        Assert.Equal(new WakeUp("example.test", "QID9"), Assert.Single(received).WakeUp);
    }

    [Fact]
    public async Task ReceiveDueAsync_Malformed_IsDeadLetteredAndNotReturned()
    {
        var queue = CreateQueue();
        var bad = ServiceBusModelFactory.ServiceBusReceivedMessage(body: BinaryData.FromString("not json"), messageId: "bad", sequenceNumber: 3);
        _receiver.Available.Enqueue(bad);
        _receiver.Available.Enqueue(Received("example.test", "QID1", 4));

        var received = await queue.ReceiveDueAsync(10, TimeSpan.FromSeconds(1), None);

        Assert.Equal("QID1", Assert.Single(received).WakeUp.QueueId);
        Assert.Same(bad, Assert.Single(_receiver.DeadLettered).Message);
    }

    [Fact]
    public async Task CompleteAndAbandon_SettleTheReceivedMessage()
    {
        var queue = CreateQueue();
        _receiver.Available.Enqueue(Received("example.test", "QID1", 1));
        _receiver.Available.Enqueue(Received("example.test", "QID2", 2));
        var received = await queue.ReceiveDueAsync(2, TimeSpan.FromSeconds(1), None);

        await queue.CompleteAsync(received[0], None);
        await queue.AbandonAsync(received[1], None);

        Assert.Same(((ServiceBusWakeUpReceipt)received[0].Receipt).Message, Assert.Single(_receiver.Completed));
        Assert.Same(((ServiceBusWakeUpReceipt)received[1].Receipt).Message, Assert.Single(_receiver.Abandoned));
    }

    [Fact]
    public async Task CompleteAsync_LockLost_IsSwallowed()
    {
        var queue = CreateQueue();
        _receiver.Available.Enqueue(Received("example.test", "QID1", 1));
        var received = Assert.Single(await queue.ReceiveDueAsync(1, TimeSpan.FromSeconds(1), None));
        _receiver.SettleFailure = new ServiceBusException("lock lost", ServiceBusFailureReason.MessageLockLost);

        await queue.CompleteAsync(received, None);
        await queue.AbandonAsync(received, None);
    }

    [Fact]
    public async Task CompleteAsync_HandleFromElsewhere_Throws()
    {
        var queue = CreateQueue();
        await Assert.ThrowsAsync<ArgumentException>(() => queue.CompleteAsync(new ReceivedWakeUp(new WakeUp("a.test", "Q"), new ForeignReceipt()), None));
    }

    [Fact]
    public async Task ReceiveDueAsync_WithoutReceiver_Throws()
    {
        var queue = new ServiceBusWakeUpQueue(_sender, receiver: null);
        await Assert.ThrowsAsync<InvalidOperationException>(() => queue.ReceiveDueAsync(1, TimeSpan.Zero, None));
    }

    private static ServiceBusReceivedMessage Received(string domain, string queueId, long sequenceNumber) =>
        ServiceBusModelFactory.ServiceBusReceivedMessage(
            body: BinaryData.FromString("{}"),
            messageId: $"{queueId}:0",
            sequenceNumber: sequenceNumber,
            properties: new Dictionary<string, object> { ["domain"] = domain, ["queueId"] = queueId });

    private sealed class ForeignReceipt : WakeUpReceipt;
}
