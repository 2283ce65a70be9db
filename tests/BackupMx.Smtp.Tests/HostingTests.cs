using System.Net.Sockets;
using System.Text.RegularExpressions;
using BackupMx.Core.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Microsoft.Extensions.Logging;

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

    private const string ShuttingDown = "421 4.3.2 mx.backup.test Service shutting down, try again later\r\n";

    /// <summary>
    /// RFC 5321 §3.8: a session still open when the grace period ends is told 421 (transient: the
    /// sender tries again later) and closed, whatever it was doing; SmtpServer's own cancellation
    /// answered a body in progress with a bare 554 (permanent: the sender bounces) and an idle
    /// session with nothing. A message answered 250 before the cut-off stays spooled; one whose
    /// body was still arriving was never accepted and leaves nothing behind.
    /// </summary>
    [Fact]
    public async Task Stop_SessionsOutliveGracePeriod_EachGets421AndCloseAndOnlyAcceptedMailKept()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var host = await ReceiverHost.StartAsync(
            new() { ["BackupMx:Smtp:ShutdownGracePeriod"] = "00:00:30" },
            configureServices: s => s.AddSingleton<TimeProvider>(time));
        await using (host)
        {
            await using var idle = await host.ConnectAsync();
            Assert.StartsWith("250", await idle.CommandAsync("EHLO client.test"));

            await using var inData = await host.ConnectAsync();
            await inData.BeginAsync(to: "partial@example.test");
            Assert.StartsWith("354", await inData.CommandAsync("DATA"));
            await inData.SendRawAsync("Subject: partial\r\n\r\nthe first line\r\nand half of the sec");

            await using var done = await host.ConnectAsync();
            await done.BeginAsync(to: "done@example.test");
            Assert.StartsWith("250", await done.DataAsync("Subject: done\r\n\r\nbody\r\n.\r\n"));

            // The body read so far has reached the receiver (a command after it in the same session
            // would be answered only once it had); nothing of it may be spooled.
            var stopping = host.StopAsync();
            await Task.Delay(200);
            Assert.False(stopping.IsCompleted, "the grace period runs on the TimeProvider");
            Assert.Single(await host.RecordsAsync());

            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!stopping.IsCompleted && DateTime.UtcNow < deadline)
            {
                time.Advance(TimeSpan.FromSeconds(30));
                await Task.WhenAny(stopping, Task.Delay(50));
            }

            await stopping.WaitAsync(TimeSpan.FromSeconds(5));

            string[] replies = [await idle.ReadToEndAsync(), await inData.ReadToEndAsync(), await done.ReadToEndAsync()];
            Assert.Equal([ShuttingDown, ShuttingDown, ShuttingDown], replies);

            var record = Assert.Single(await host.RecordsAsync());
            Assert.Equal("done@example.test", Assert.Single(record.Recipients).Address);
            Assert.Contains("Subject: done", host.BodyAfterReceived(record.QueueId), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Stop_SessionOutlivesGracePeriod_CutOffWith421()
    {
        var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:ShutdownGracePeriod"] = "00:00:00.200" });
        await using (host)
        {
            await using var client = await host.ConnectAsync();
            await client.BeginAsync();

            await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(20));

            Assert.Equal(ShuttingDown, await client.ReadToEndAsync());
            Assert.Empty(await host.RecordsAsync());
        }
    }

    [Fact]
    public async Task Start_KeyPathWithoutCertificatePath_FailsNamingTheKeys()
    {
        using var certificate = new TestCertificate();
        var settings = certificate.Settings();
        settings.Remove("BackupMx:Smtp:TlsCertificatePath");

        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => ReceiverHost.StartAsync(settings));
        Assert.Contains("BackupMx:Smtp:TlsKeyPath needs BackupMx:Smtp:TlsCertificatePath", error.Message);
    }

    [Fact]
    public async Task Start_PemCertificateWithoutAnyKey_FailsNamingTheFileAndTheKeySetting()
    {
        using var certificate = new TestCertificate();
        var settings = certificate.Settings();
        settings.Remove("BackupMx:Smtp:TlsKeyPath");

        var error = await Assert.ThrowsAsync<StartupException>(() => ReceiverHost.StartAsync(settings));
        Assert.Equal(
            $"the STARTTLS certificate cannot be loaded from BackupMx:Smtp:TlsCertificatePath '{certificate.CertificatePath}': the PEM file holds no private key: set BackupMx:Smtp:TlsKeyPath or add the key to the file.",
            error.Message);
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

    [Fact]
    public async Task Start_EndpointInUse_FailsNamingTheEndpoint()
    {
        using var occupant = new TcpListener(System.Net.IPAddress.Loopback, 0);
        occupant.Start();
        var port = ((System.Net.IPEndPoint)occupant.LocalEndpoint).Port;

        var error = await Assert.ThrowsAsync<StartupException>(() => ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:Endpoints:0"] = $"127.0.0.1:{port}" }));
        Assert.StartsWith($"127.0.0.1:{port} is already in use (", error.Message, StringComparison.Ordinal);
        Assert.Contains("BackupMx:Smtp:Endpoints", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_KeyOfAnotherCertificate_FailsNamingBothFiles()
    {
        using var certificate = new TestCertificate();
        using var other = new TestCertificate();
        var settings = certificate.Settings();
        settings["BackupMx:Smtp:TlsKeyPath"] = other.KeyPath;

        var error = await Assert.ThrowsAsync<StartupException>(() => ReceiverHost.StartAsync(settings));
        Assert.Equal($"the STARTTLS certificate cannot be loaded from BackupMx:Smtp:TlsCertificatePath '{certificate.CertificatePath}' with BackupMx:Smtp:TlsKeyPath '{other.KeyPath}': the key does not belong to the certificate.", error.Message);
    }

    [Fact]
    public async Task Start_KeyFileNotPem_FailsNamingBothFiles()
    {
        using var certificate = new TestCertificate();
        await File.WriteAllTextAsync(certificate.KeyPath, "not a key");

        var error = await Assert.ThrowsAsync<StartupException>(() => ReceiverHost.StartAsync(certificate.Settings()));
        Assert.Contains(certificate.KeyPath, error.Message, StringComparison.Ordinal);
        Assert.Contains(certificate.CertificatePath, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_WithCertificate_LogsExpiryInIso8601()
    {
        using var certificate = new TestCertificate();
        var logs = new CollectingLoggerProvider();
        var host = await ReceiverHost.StartAsync(certificate.Settings(), configureServices: services => services.AddLogging(b => b.AddProvider(logs)));
        await host.DisposeAsync();

        Assert.Contains(logs.Entries, e => Regex.IsMatch(e.Message, @"valid until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"));
    }

    [Fact]
    public async Task FailedTlsHandshake_LogsOneLineWithoutWarningOrStackTrace()
    {
        using var certificate = new TestCertificate();
        var logs = new CollectingLoggerProvider();
        await using (var host = await ReceiverHost.StartAsync(certificate.Settings(), configureServices: services => services.AddLogging(b => b.AddProvider(logs))))
        {
            await using var client = await host.ConnectAsync();
            await client.CommandAsync("EHLO client.test");
            Assert.StartsWith("220", await client.CommandAsync("STARTTLS"));
#pragma warning disable SYSLIB0039 // An obsolete protocol on purpose: the server must refuse it.
            await Assert.ThrowsAnyAsync<Exception>(() => client.UpgradeToTlsAsync(System.Security.Authentication.SslProtocols.Tls11));
#pragma warning restore SYSLIB0039

            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!logs.Entries.Any(e => e.Message.Contains("ended by the client's side", StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }
        }

        // A scanner's failed handshake is routine on a public MX: one information line saying why.
        var line = Assert.Single(logs.Entries, e => e.Message.Contains("ended by the client's side", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Information, line.Level);
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
    }

    /// <summary>
    /// Container Apps probes the receiver with TCP connections to the SMTP port (infra/modules/receiver.bicep):
    /// connect, maybe read the greeting, close. Those must not count as failed sessions in the logs
    /// (they come every few seconds, forever) and must not use up the per-client connection limit.
    /// </summary>
    [Fact]
    public async Task TcpProbe_ConnectAndClose_LogsNoWarningAndHoldsNoConnection()
    {
        var logs = new CollectingLoggerProvider();
        var host = await ReceiverHost.StartAsync(
            new() { ["BackupMx:Smtp:MaxConnectionsPerIp"] = "2" },
            configureServices: services => services.AddLogging(b => b.AddProvider(logs)));
        await using (host)
        {
            for (var i = 0; i < 20; i++)
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync("127.0.0.1", host.Port);
                if (i % 2 == 0)
                {
                    // Some probes read the greeting before closing, some close at once.
                    var buffer = new byte[512];
                    _ = await probe.GetStream().ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
                }
            }

            // Were probe connections still held, the per-client limit of 2 would refuse this one with 421.
            await using var client = await host.ConnectAsync();
            await client.BeginAsync();
            Assert.StartsWith("250", await client.DataAsync("Subject: x\r\n\r\nbody\r\n.\r\n"));
            Assert.StartsWith("221", await client.CommandAsync("QUIT"));
        }

        Assert.Contains(logs.Entries, e => e.Message.StartsWith("Accepted ", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
    }
}
