using Microsoft.Extensions.DependencyInjection;
using System.Net;

namespace BackupMx.Admin.Tests;

public sealed class HealthTests
{
    // Tests run as root, which ignores permission bits: the bodies folder is made unusable by putting
    // a regular file in its place, which fails every write under it for root as for anyone.
    [Fact]
    public async Task Readyz_SpoolNotWritable_503WhileHealthzAnswers_ReadyAgainWhenRestored()
    {
        await using var rig = await AdminRig.StartAsync("health.test", primaryUp: true);

        using (var ready = await rig.GetAsync("/readyz"))
        {
            ready.ShouldBeOk();
            var text = await ready.Content.ReadAsStringAsync();
            Assert.StartsWith("Healthy\n", text, StringComparison.Ordinal);
            Assert.Contains("smtp: Healthy", text, StringComparison.Ordinal);
            Assert.Contains("spool: Healthy", text, StringComparison.Ordinal);
        }

        var bodies = Path.Combine(rig.Spool.Path, "bodies");
        Directory.Delete(bodies, recursive: true);
        await File.WriteAllBytesAsync(bodies, []);

        using (var ready = await rig.GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            var text = await ready.Content.ReadAsStringAsync();
            Assert.StartsWith("Unhealthy\n", text, StringComparison.Ordinal);
            Assert.Contains("spool: Unhealthy: the spool folder " + bodies + " cannot be written", text, StringComparison.Ordinal);
            Assert.Contains("smtp: Healthy", text, StringComparison.Ordinal);
        }

        using (var live = await rig.GetAsync("/healthz"))
        {
            live.ShouldBeOk();
            Assert.Equal("Healthy\n", await live.Content.ReadAsStringAsync());
        }

        File.Delete(bodies);
        Directory.CreateDirectory(bodies);
        using (var ready = await rig.GetAsync("/readyz"))
        {
            ready.ShouldBeOk();
        }

        Assert.Empty(Directory.GetFiles(rig.Spool.Path, ".ready-*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Readyz_ReceiverStopped_503()
    {
        await using var rig = await AdminRig.StartAsync("stopping.test", primaryUp: true);
        var receiver = rig.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>()
            .Single(s => s.GetType().Name == "SmtpReceiverHostedService");
        await receiver.StopAsync(CancellationToken.None);

        using var ready = await rig.GetAsync("/readyz");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Contains("smtp: Unhealthy: the SMTP receiver is not listening", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
