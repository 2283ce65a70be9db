using BackupMx.Core.Configuration;
using BackupMx.Delivery.WarmUp;

namespace BackupMx.Delivery.Tests;

public sealed class DeliveryWarmUpTests
{
    [Fact]
    public async Task Run_DeliversOneMessageThroughTheTransportToItsLoopbackSink()
    {
        // A domain whose primary would refuse everything: the warm-up must not go there.
        var configured = new BackupMxOptions
        {
            HostName = "backup.test",
            Domains = [new DomainOptions { Name = "example.test", Primary = "192.0.2.1:25" }],
        };

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.Equal(1, await DeliveryWarmUp.RunAsync(configured, TimeProvider.System, cts.Token));
    }
}
