using System.Diagnostics.Metrics;
using BackupMx.Core.Hosting;
using BackupMx.Smtp.Tls;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using MimeKit;

namespace BackupMx.Smtp.Tests;

/// <summary>
/// The certificate formats STARTTLS is served from (PEM, raw and base64 PKCS#12), and its renewal
/// while running: each test has a real client do STARTTLS and checks which certificate it was shown.
/// </summary>
public sealed class TlsCertificateTests
{
    private static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task StartTls_PemCertificateAndKeyFiles_ServesTheCertificate()
    {
        using var certificate = new TestCertificate();
        await using var host = await ReceiverHost.StartAsync(certificate.Settings());

        Assert.Equal(certificate.Thumbprint, await ServedThumbprintAsync(host));
    }

    [Fact]
    public async Task StartTls_PemWithKeyInTheSameFile_ServesTheCertificate()
    {
        using var certificate = new TestCertificate();
        var combined = certificate.PathOf("combined.pem");
        await File.WriteAllTextAsync(combined, certificate.CertificatePem + "\n" + certificate.KeyPem);
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:TlsCertificatePath"] = combined });

        Assert.Equal(certificate.Thumbprint, await ServedThumbprintAsync(host));
    }

    [Fact]
    public async Task StartTls_RawPkcs12WithPassword_ServesTheCertificate()
    {
        using var certificate = new TestCertificate();
        var pfx = certificate.PathOf("mx.pfx");
        await File.WriteAllBytesAsync(pfx, certificate.PfxWithPassword);
        await using var host = await ReceiverHost.StartAsync(new()
        {
            ["BackupMx:Smtp:TlsCertificatePath"] = pfx,
            ["BackupMx:Smtp:TlsCertificatePassword"] = TestCertificate.PfxPassword,
        });

        Assert.Equal(certificate.Thumbprint, await ServedThumbprintAsync(host));
    }

    [Fact]
    public async Task StartTls_Base64Pkcs12InAFileWithoutExtension_ServesTheCertificate()
    {
        // What Container Apps mounts for a Key Vault certificate: the secret's value, base64 PFX text.
        using var certificate = new TestCertificate();
        var secret = certificate.PathOf("tls-certificate");
        await File.WriteAllTextAsync(secret, certificate.Base64Pfx + "\n");
        await using var host = await ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:TlsCertificatePath"] = secret });

        Assert.Equal(certificate.Thumbprint, await ServedThumbprintAsync(host));
    }

    [Fact]
    public async Task Start_Pkcs12WithWrongPassword_FailsNamingTheFile()
    {
        using var certificate = new TestCertificate();
        var pfx = certificate.PathOf("mx.p12");
        await File.WriteAllBytesAsync(pfx, certificate.PfxWithPassword);

        var error = await Assert.ThrowsAsync<StartupException>(() => ReceiverHost.StartAsync(new()
        {
            ["BackupMx:Smtp:TlsCertificatePath"] = pfx,
            ["BackupMx:Smtp:TlsCertificatePassword"] = "wrong",
        }));
        Assert.StartsWith($"the STARTTLS certificate cannot be loaded from BackupMx:Smtp:TlsCertificatePath '{pfx}': ", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_FileNeitherPemNorPkcs12_FailsSayingWhichFormatsWork()
    {
        using var certificate = new TestCertificate();
        var junk = certificate.PathOf("junk");
        await File.WriteAllTextAsync(junk, "not a certificate at all");

        var error = await Assert.ThrowsAsync<StartupException>(() => ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:TlsCertificatePath"] = junk }));
        Assert.EndsWith("the file is neither PEM, PKCS#12 (.pfx, .p12) nor the base64 text of a PKCS#12 file.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reload_FileReplaced_NewSessionsGetTheNewCertificateAndAnOpenSessionKeepsItsOwn()
    {
        using var first = new TestCertificate();
        using var second = new TestCertificate();
        var secret = first.PathOf("tls-certificate");
        await File.WriteAllTextAsync(secret, first.Base64Pfx);
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var logs = new CollectingLoggerProvider();
        await using var host = await StartAsync(secret, time, logs);

        using var open = new TlsClient();
        await open.ConnectAsync(host);
        Assert.Equal(first.Thumbprint, open.Thumbprint);

        // Replaced the way a mounted secret is: a new file renamed over the old one.
        var next = secret + ".new";
        await File.WriteAllTextAsync(next, second.Base64Pfx);
        File.Move(next, secret, overwrite: true);
        time.Advance(CheckInterval - TimeSpan.FromSeconds(1));
        Assert.Equal(first.Thumbprint, await ServedThumbprintAsync(host));
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(second.Thumbprint, await ServedThumbprintAsync(host));
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Information && e.Message.Contains("reloaded from " + secret, StringComparison.Ordinal) && e.Message.Contains(second.Thumbprint, StringComparison.Ordinal));

        // The session set up before the renewal goes on over its own TLS session.
        await open.SendAsync();
        Assert.Equal(first.Thumbprint, open.Thumbprint);
        Assert.Single(await host.RecordsAsync());
    }

    [Fact]
    public async Task Reload_MountedSecretSwappedBehindSymlinks_ServesTheNewCertificate()
    {
        // A Kubernetes-style secret volume, as Container Apps mounts it: the file is a link through
        // "..data", a link to a timestamped folder; an update writes a new folder and swaps "..data".
        using var first = new TestCertificate();
        using var second = new TestCertificate();
        var mount = Directory.CreateDirectory(first.PathOf("mount")).FullName;
        Directory.CreateDirectory(Path.Combine(mount, "..v1"));
        await File.WriteAllTextAsync(Path.Combine(mount, "..v1", "tls-certificate"), first.Base64Pfx);
        File.CreateSymbolicLink(Path.Combine(mount, "..data"), "..v1");
        File.CreateSymbolicLink(Path.Combine(mount, "tls-certificate"), Path.Combine("..data", "tls-certificate"));
        var secret = Path.Combine(mount, "tls-certificate");
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await StartAsync(secret, time, new CollectingLoggerProvider());
        Assert.Equal(first.Thumbprint, await ServedThumbprintAsync(host));

        Directory.CreateDirectory(Path.Combine(mount, "..v2"));
        await File.WriteAllTextAsync(Path.Combine(mount, "..v2", "tls-certificate"), second.Base64Pfx);
        File.CreateSymbolicLink(Path.Combine(mount, "..data_tmp"), "..v2");
        // rename(2) over the old link, as the kubelet does; File.Move would follow the links.
        using (var rename = System.Diagnostics.Process.Start("mv", ["-T", Path.Combine(mount, "..data_tmp"), Path.Combine(mount, "..data")]))
        {
            await rename.WaitForExitAsync();
            Assert.Equal(0, rename.ExitCode);
        }

        Directory.Delete(Path.Combine(mount, "..v1"), recursive: true);
        time.Advance(CheckInterval);

        Assert.Equal(second.Thumbprint, await ServedThumbprintAsync(host));
    }

    [Theory]
    [InlineData("00:00:00")]
    [InlineData("02:00:00")]
    public async Task Start_CheckIntervalOutOfRange_FailsNamingTheKey(string interval)
    {
        using var certificate = new TestCertificate();
        var settings = certificate.Settings();
        settings["BackupMx:Smtp:TlsCertificateCheckInterval"] = interval;

        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => ReceiverHost.StartAsync(settings));
        Assert.Contains("BackupMx:Smtp:TlsCertificateCheckInterval", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reload_BrokenFile_KeepsTheCertificateAndLogsOneErrorNamingTheFile()
    {
        using var first = new TestCertificate();
        using var third = new TestCertificate();
        var pfx = first.PathOf("mx.pfx");
        await File.WriteAllBytesAsync(pfx, first.Pfx);
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var logs = new CollectingLoggerProvider();
        await using var host = await StartAsync(pfx, time, logs);

        await File.WriteAllBytesAsync(pfx, first.Pfx.AsSpan(0, first.Pfx.Length / 2).ToArray());
        time.Advance(CheckInterval);
        time.Advance(CheckInterval);
        time.Advance(CheckInterval);

        Assert.Equal(first.Thumbprint, await ServedThumbprintAsync(host));
        var error = Assert.Single(logs.Entries, e => e.Level >= LogLevel.Error);
        Assert.Contains(pfx, error.Message, StringComparison.Ordinal);
        Assert.Contains(first.Thumbprint, error.Message, StringComparison.Ordinal);

        // A good file after the broken one is taken up as usual.
        await File.WriteAllBytesAsync(pfx, third.Pfx);
        time.Advance(CheckInterval);
        Assert.Equal(third.Thumbprint, await ServedThumbprintAsync(host));
        Assert.Single(logs.Entries, e => e.Level >= LogLevel.Error);
    }

    [Fact]
    public async Task Reload_PemPairReplaced_ServesTheNewPair()
    {
        using var first = new TestCertificate();
        using var second = new TestCertificate();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await ReceiverHost.StartAsync(first.Settings(), configureServices: s => s.AddSingleton<TimeProvider>(time));

        await File.WriteAllTextAsync(first.KeyPath, second.KeyPem);
        await File.WriteAllTextAsync(first.CertificatePath, second.CertificatePem);
        time.Advance(CheckInterval);

        Assert.Equal(second.Thumbprint, await ServedThumbprintAsync(host));
    }

    [Fact]
    public async Task Start_CertificateExpiringWithinFourteenDays_WarnsDailyAndExportsTimeLeft()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var certificate = new TestCertificate(notAfter: time.GetUtcNow().AddDays(10));
        var secret = certificate.PathOf("tls-certificate");
        await File.WriteAllTextAsync(secret, certificate.Base64Pfx);
        var logs = new CollectingLoggerProvider();
        await using var host = await StartAsync(secret, time, logs, s => s.AddMetrics());
        using var meters = new MeterCapture(host.Get<IMeterFactory>(), TlsCertificateMetrics.ExpiryName);

        static bool Expiring((LogLevel Level, string Message) e) => e.Level == LogLevel.Warning && e.Message.Contains("expires at", StringComparison.Ordinal);
        var warning = Assert.Single(logs.Entries, Expiring);
        Assert.Contains(secret, warning.Message, StringComparison.Ordinal);
        Assert.Contains("in 10 day(s)", warning.Message, StringComparison.Ordinal);

        time.Advance(TimeSpan.FromHours(12));
        Assert.Single(logs.Entries, Expiring);
        time.Advance(TimeSpan.FromHours(12));
        Assert.Equal(2, logs.Entries.Count(Expiring));

        var left = meters.Observe();
        Assert.Equal((certificate.NotAfter - time.GetUtcNow()).TotalSeconds, left, precision: 0);
    }

    [Fact]
    public async Task Start_CertificateValidForLonger_NoExpiryWarning()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var certificate = new TestCertificate(notAfter: time.GetUtcNow().AddDays(15));
        var logs = new CollectingLoggerProvider();
        await using var host = await ReceiverHost.StartAsync(certificate.Settings(), configureServices: s =>
        {
            s.AddSingleton<TimeProvider>(time);
            s.AddLogging(b => b.AddProvider(logs));
        });

        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
        Assert.Contains(logs.Entries, e => e.Message.Contains("(mx.backup.test)", StringComparison.Ordinal) && e.Message.Contains(certificate.Thumbprint, StringComparison.Ordinal));
    }

    private static Task<ReceiverHost> StartAsync(string certificatePath, FakeTimeProvider time, CollectingLoggerProvider logs, Action<IServiceCollection>? more = null) =>
        ReceiverHost.StartAsync(new() { ["BackupMx:Smtp:TlsCertificatePath"] = certificatePath }, configureServices: s =>
        {
            s.AddSingleton<TimeProvider>(time);
            s.AddLogging(b => b.AddProvider(logs));
            more?.Invoke(s);
        });

    /// <summary>Connects a new session, does STARTTLS and returns the thumbprint of the certificate shown.</summary>
    private static async Task<string?> ServedThumbprintAsync(ReceiverHost host)
    {
        using var client = new TlsClient();
        await client.ConnectAsync(host);
        await client.Smtp.DisconnectAsync(true);
        return client.Thumbprint;
    }

    /// <summary>MailKit over STARTTLS, keeping the server certificate it was shown.</summary>
    private sealed class TlsClient : IDisposable
    {
        public SmtpClient Smtp { get; } = new() { LocalDomain = "client.test" };

        public string? Thumbprint { get; private set; }

        public async Task ConnectAsync(ReceiverHost host)
        {
            Smtp.ServerCertificateValidationCallback = (_, certificate, _, _) =>
            {
                Thumbprint = certificate?.GetCertHashString();
                return true;
            };
            await Smtp.ConnectAsync("127.0.0.1", host.Port, SecureSocketOptions.StartTls);
            Assert.True(Smtp.IsSecure);
        }

        public async Task SendAsync()
        {
            var message = new MimeMessage();
            message.From.Add(MailboxAddress.Parse("sender@remote.test"));
            message.To.Add(MailboxAddress.Parse("user@example.test"));
            message.Subject = "over tls";
            message.Body = new TextPart("plain") { Text = "hello\r\n" };
            await Smtp.SendAsync(message);
            await Smtp.DisconnectAsync(true);
        }

        public void Dispose() => Smtp.Dispose();
    }

    /// <summary>Reads one observable gauge of the relay's meter on demand.</summary>
    private sealed class MeterCapture : IDisposable
    {
        private readonly MeterListener _listener = new();
        private double? _last;

        // Only this host's meter: receivers of other tests publish the same instrument meanwhile.
        public MeterCapture(IMeterFactory factory, string instrument)
        {
            _listener.InstrumentPublished = (i, l) =>
            {
                if (i.Name == instrument && ReferenceEquals(i.Meter.Scope, factory))
                {
                    l.EnableMeasurementEvents(i);
                }
            };
            _listener.SetMeasurementEventCallback<double>((_, value, _, _) => _last = value);
            _listener.Start();
        }

        public double Observe()
        {
            _last = null;
            _listener.RecordObservableInstruments();
            Assert.True(_last.HasValue, "The gauge reported nothing.");
            return _last.Value;
        }

        public void Dispose() => _listener.Dispose();
    }
}
