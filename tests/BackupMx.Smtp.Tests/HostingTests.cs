using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using BackupMx.Core.Hosting;
using Microsoft.Extensions.DependencyInjection;
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

    private sealed class CollectingLoggerProvider : ILoggerProvider
    {
        public ConcurrentQueue<(LogLevel Level, string Message)> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Collector(Entries);

        public void Dispose()
        {
        }

        private sealed class Collector(ConcurrentQueue<(LogLevel Level, string Message)> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                entries.Enqueue((logLevel, formatter(state, exception)));
        }
    }
}
