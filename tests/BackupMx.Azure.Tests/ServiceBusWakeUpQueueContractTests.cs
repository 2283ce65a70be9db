using BackupMx.Azure.Tests.Model;
using BackupMx.Core.Ports;
using BackupMx.Testing.Contracts;

namespace BackupMx.Azure.Tests;

/// <summary>The Service Bus adapter over the model's Service Bus (scheduled messages, peek-lock) on the test clock.</summary>
public sealed class ServiceBusWakeUpQueueContractTests : WakeUpQueueContract
{
    protected override IWakeUpQueue CreateQueue()
    {
        var bus = new ModelServiceBus(Time);
        return new ServiceBusWakeUpQueue(bus.CreateSender(), bus.CreateReceiver());
    }
}
