using System.Text;
using Azure.Messaging.ServiceBus;

namespace BackupMx.Azure.Tests;

/// <summary>
/// What Service Bus refuses, for the fakes to refuse too. "Message size or batch size for a queue,
/// topic, or subscription entity": 256 KB on the Basic and Standard tiers, and 1 MB for a batch on
/// Premium (Microsoft Learn, "Service Bus quotas"). The fakes hold every schedule call, which is one
/// request, to the smaller limit, so code that passes them passes on every tier.
/// </summary>
internal static class ServiceBusLimits
{
    public const int MaxBatchBytes = 256 * 1024;

    // The AMQP encoding of a message's header, annotations (sequence number, enqueue time...) and
    // property names costs more than its raw fields; this errs on the large side.
    private const int PerMessageOverhead = 128;

    /// <summary>Throws as Service Bus does when the messages of one call exceed <see cref="MaxBatchBytes"/>.</summary>
    public static void EnsureFits(IReadOnlyCollection<ServiceBusMessage> messages)
    {
        var size = messages.Sum(SizeOf);
        if (size > MaxBatchBytes)
        {
            throw new ServiceBusException($"The batch of {messages.Count} messages ({size} bytes) exceeds the limit of {MaxBatchBytes} bytes.", ServiceBusFailureReason.MessageSizeExceeded);
        }
    }

    public static long SizeOf(ServiceBusMessage message) =>
        PerMessageOverhead
        + message.Body.ToMemory().Length
        + Utf8(message.MessageId) + Utf8(message.Subject) + Utf8(message.ContentType)
        + message.ApplicationProperties.Sum(p => Utf8(p.Key) + (p.Value is string text ? Utf8(text) : sizeof(long)));

    private static int Utf8(string? text) => text is null ? 0 : Encoding.UTF8.GetByteCount(text);
}
