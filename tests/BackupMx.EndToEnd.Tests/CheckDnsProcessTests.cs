using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using BackupMx.Testing;

namespace BackupMx.EndToEnd.Tests;

/// <summary>
/// <c>check-dns</c> as an operator runs it: the built server as a process, its lookups going to a
/// DNS server on loopback through BackupMx:Dns:Servers, its probe to a fake primary.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class CheckDnsProcessTests : IAsyncLifetime
{
    private readonly TestDnsServer _dns = new();
    private readonly FakePrimary _primary = new();

    public async Task InitializeAsync()
    {
        await _primary.StartAsync();
        _dns.Host("backup.test", IPAddress.Loopback)
            .Mx("good.test", 10, "mail.good.test").Mx("good.test", 20, "backup.test").Host("mail.good.test", IPAddress.Loopback)
            .Mx("tied.test", 10, "mail.tied.test").Mx("tied.test", 10, "backup.test");
    }

    public async Task DisposeAsync()
    {
        await _primary.DisposeAsync();
        _dns.Dispose();
    }

    [Fact]
    public async Task CheckDns_ConfiguredDomainsFine_ExitsZeroWithOneLinePerFinding()
    {
        var run = await RunAsync(["check-dns", .. Settings()]);

        Assert.True(run.ExitCode == 0, run.Output + run.Error);
        var lines = run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(
            ["OK    - address.ok", "OK    - dane.none", "OK    good.test mx.ok", "WARN  good.test primary.no-starttls", "OK    good.test mta-sts.none"],
            lines[..^1].Select(Head));
        Assert.Equal("0 error(s), 1 warning(s)", lines[^1]);
        Assert.True(_dns.Queries >= 5, $"{_dns.Queries} queries");
    }

    [Fact]
    public async Task CheckDns_NamedDomainWithError_ExitsOneAndJsonFollowsTheSchema()
    {
        var run = await RunAsync(["check-dns", "tied.test", "--json", .. Settings()]);

        Assert.True(run.ExitCode == 1, run.Output + run.Error);
        using var json = JsonDocument.Parse(run.Output);
        var root = json.RootElement;
        Assert.Equal(1, root.GetProperty("schema").GetInt32());
        Assert.Equal("backup.test", root.GetProperty("hostName").GetString());
        Assert.Equal(2, root.GetProperty("errors").GetInt32());
        Assert.Equal(0, root.GetProperty("warnings").GetInt32());
        var findings = root.GetProperty("findings").EnumerateArray().ToList();
        Assert.Equal(
            ["-/address/address.ok/OK", "-/dane/dane.none/OK", "tied.test/mx/mx.preference/ERROR", "tied.test/mx/mx.no-primary/ERROR", "tied.test/mta-sts/mta-sts.none/OK"],
            findings.Select(f => $"{f.GetProperty("domain").GetString() ?? "-"}/{f.GetProperty("check").GetString()}/{f.GetProperty("code").GetString()}/{f.GetProperty("severity").GetString()}"));
        Assert.All(findings, f => Assert.False(string.IsNullOrWhiteSpace(f.GetProperty("message").GetString())));
        Assert.Equal(JsonValueKind.Null, findings[0].GetProperty("domain").ValueKind);
    }

    [Fact]
    public async Task CheckDns_BadDnsServerSetting_ExitsTwoNamingTheKey()
    {
        var run = await RunAsync(["check-dns", .. Settings(), "--BackupMx:Dns:Servers:0=127.0.0.1:0x35"]);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("BackupMx:Dns:Servers:0 '127.0.0.1:0x35' is not a host[:port]", run.Error, StringComparison.Ordinal);
        Assert.Equal(0, _dns.Queries);
    }

    [Fact]
    public async Task CheckDns_TlsaOfTheServedPemCertificate_IsDaneOk()
    {
        using var folder = new TempFolder();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=backup.test", key, HashAlgorithmName.SHA256);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var pem = Path.Combine(folder.Path, "tls.pem");
        await File.WriteAllTextAsync(pem, certificate.ExportCertificatePem() + "\n" + key.ExportPkcs8PrivateKeyPem() + "\n");
        _dns.Tlsa("_25._tcp.backup.test", 3, 1, 1, SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo()));

        var run = await RunAsync(["check-dns", .. Settings(), $"--BackupMx:Smtp:TlsCertificatePath={pem}"]);

        Assert.True(run.ExitCode == 0, run.Output + run.Error);
        Assert.Contains(run.Output.Split('\n'), l => Head(l) == "OK    - dane.ok");
    }

    [Fact]
    public async Task CheckDns_CertificateFileMissing_IsTlsUnreadableError()
    {
        var run = await RunAsync(["check-dns", .. Settings(), "--BackupMx:Smtp:TlsCertificatePath=/nonexistent/tls.pem"]);

        Assert.True(run.ExitCode == 1, run.Output + run.Error);
        Assert.Contains(run.Output.Split('\n'), l => Head(l) == "ERROR - tls.unreadable");
    }

    private string[] Settings() =>
    [
        "--BackupMx:HostName=backup.test",
        "--BackupMx:PublicAddresses:0=127.0.0.1",
        $"--BackupMx:Dns:Servers:0={_dns.Address}",
        "--BackupMx:Domains:0:Name=good.test",
        $"--BackupMx:Domains:0:Primary={_primary.HostPort}",
        "--BackupMx:Delivery:ProbeTimeout=00:00:10",
    ];

    /// <summary>Severity, domain and code of a text line, with the padding reduced to one space after the severity.</summary>
    private static string Head(string line)
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 3)
        {
            return line;
        }

        return $"{parts[0],-5} {parts[1]} {parts[2]}";
    }

    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(typeof(BackupMx.Server.EmbeddedHost).Assembly.Location);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await output, await error);
    }
}
