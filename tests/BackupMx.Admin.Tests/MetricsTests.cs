using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;

namespace BackupMx.Admin.Tests;

public sealed partial class MetricsTests
{
    [Fact]
    public async Task Metrics_KnownSpool_PrometheusTextCarriesSpoolPrimarySessionsTlsAndCounters()
    {
        using var tls = new TempFolder();
        var (certificatePath, keyPath, notAfter) = WriteCertificate(tls.Path);
        const string domain = "metrics.test";
        await using var rig = await AdminRig.StartAsync(
            domain,
            primaryUp: false,
            $"--BackupMx:Smtp:TlsCertificatePath={certificatePath}",
            $"--BackupMx:Smtp:TlsKeyPath={keyPath}");
        await rig.SpoolWithPrimaryDownAsync(3);
        rig.Time.Advance(TimeSpan.FromMinutes(10));

        // One session held open, greeted, so the gauge has something to count.
        using var idle = new TcpClient();
        await idle.ConnectAsync("127.0.0.1", rig.SmtpPort);
        var greeting = new byte[64];
        Assert.True(await idle.GetStream().ReadAsync(greeting) > 0);

        using var response = await rig.GetAsync("/metrics");
        response.ShouldBeOk();
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        var samples = PromSample.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(3, samples.Single("backupmx_spool_depth", domain));
        var oldest = samples.Single("backupmx_spool_oldest_age_seconds", domain);
        Assert.InRange(oldest, 600, 601);
        Assert.Equal(0, samples.Single("backupmx_primary_reachable", domain));
        Assert.Equal(3, samples.Single("backupmx_messages_accepted_total", domain));
        Assert.Equal(1, samples.Single("backupmx_smtp_sessions_active"));
        var expiry = samples.Single("backupmx_tls_certificate_expiry_seconds");
        Assert.InRange(expiry, (notAfter - rig.Time.GetUtcNow()).TotalSeconds - 1, (notAfter - rig.Time.GetUtcNow()).TotalSeconds + 1);

        // The primary comes back and the operator flushes: the counters and the latency follow.
        await rig.Primary.StartAsync();
        AdminRig.OperatorActsLater(rig);
        var token = await FormTokenAsync(rig);
        using (var flush = await rig.Http.PostAsync($"/domains/{domain}/flush", new FormUrlEncodedContent([new("csrf", token)])))
        {
            Assert.Equal(System.Net.HttpStatusCode.SeeOther, flush.StatusCode);
        }

        await rig.Primary.WaitForMessagesAsync(3, TimeSpan.FromSeconds(30));
        await AdminRig.WaitUntilAsync(async () => (await rig.Inspector.ListAsync(domain, CancellationToken.None)).Count == 0);

        // Past the refresher's minimum interval, so the gauges are read again.
        rig.Time.Advance(TimeSpan.FromSeconds(6));
        samples = PromSample.Parse(await (await rig.GetAsync("/metrics")).Content.ReadAsStringAsync());
        Assert.Equal(0, samples.Single("backupmx_spool_depth", domain));
        Assert.Equal(1, samples.Single("backupmx_primary_reachable", domain));
        Assert.Equal(3, samples.Single("backupmx_recipients_delivered_total", domain));
        Assert.Equal(3, samples.Single("backupmx_delivery_latency_seconds_count", domain));
        Assert.InRange(samples.Single("backupmx_delivery_latency_seconds_sum", domain), 3 * 600, (3 * 600) + 3);
    }

    internal static async Task<string> FormTokenAsync(AdminRig rig)
    {
        var page = await (await rig.GetAsync("/")).Content.ReadAsStringAsync();
        return FormToken().Match(page).Groups[1].Value;
    }

    private static (string Certificate, string Key, DateTimeOffset NotAfter) WriteCertificate(string folder)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=backup.test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("backup.test");
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var certificatePath = Path.Combine(folder, "tls.crt");
        var keyPath = Path.Combine(folder, "tls.key");
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certificatePath, keyPath, new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero));
    }

    [GeneratedRegex("name=\"csrf\" value=\"([^\"]+)\"")]
    private static partial Regex FormToken();
}
