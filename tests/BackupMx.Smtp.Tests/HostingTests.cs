using System.Net.Sockets;

namespace BackupMx.Smtp.Tests;

public sealed class HostingTests
{
    [Fact]
    public async Task Stop_OpenSession_FinishesWhileNewConnectionsRefused()
    {
        var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:ShutdownGracePeriod"] = "00:00:30" });
        await using (host)
        {
            var client = await host.ConnectAsync();
            await client.BeginAsync();

            var stopping = host.StopAsync();
            Assert.False(stopping.IsCompleted);
            await Assert.ThrowsAnyAsync<SocketException>(async () =>
            {
                using var other = new TcpClient();
                await other.ConnectAsync("127.0.0.1", host.Port);
            });

            Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nbody\r\n.\r\n"));
            Assert.StartsWith("221", await client.CommandAsync("QUIT"));
            await client.DisposeAsync();

            await stopping.WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Single(await host.RecordsAsync());
        }
    }

    [Fact]
    public async Task Stop_SessionOutlivesGracePeriod_CutOff()
    {
        var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:ShutdownGracePeriod"] = "00:00:00.200" });
        await using (host)
        {
            await using var client = await host.ConnectAsync();
            await client.BeginAsync();

            await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(20));

            var reply = await client.TryReadReplyAsync();
            Assert.True(reply is null || reply.StartsWith("221", StringComparison.Ordinal) || reply.StartsWith("421", StringComparison.Ordinal), reply);
            Assert.Empty(await host.RecordsAsync());
        }
    }

    [Theory]
    [InlineData("TlsCertificatePath")]
    [InlineData("TlsKeyPath")]
    public async Task Start_OnlyOneTlsFileConfigured_FailsNamingTheKeys(string key)
    {
        using var certificate = new TestCertificate();
        var settings = certificate.Settings();
        settings.Remove("BackupMx:Smtp:" + key);

        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => ReceiverHost.StartAsync(settings));
        Assert.Contains("BackupMx:Smtp:TlsCertificatePath and BackupMx:Smtp:TlsKeyPath", error.Message);
    }

    [Fact]
    public async Task Start_TlsFileMissing_FailsNamingTheKey()
    {
        using var certificate = new TestCertificate();
        var settings = certificate.Settings();
        settings["BackupMx:Smtp:TlsKeyPath"] = certificate.KeyPath + ".missing";

        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => ReceiverHost.StartAsync(settings));
        Assert.Contains("BackupMx:Smtp:TlsKeyPath", error.Message);
    }
}
