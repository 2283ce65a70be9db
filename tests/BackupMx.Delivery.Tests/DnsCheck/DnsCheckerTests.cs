using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using BackupMx.Core.Configuration;
using BackupMx.Delivery.DnsCheck;
using BackupMx.Delivery.Routing;
using BackupMx.Testing;

namespace BackupMx.Delivery.Tests.DnsCheck;

/// <summary>
/// The checker against a DNS server on loopback serving crafted records, a fake primary and an
/// HTTPS policy server: each finding is reached from what a real resolver and server answer.
/// </summary>
public sealed class DnsCheckerTests : IAsyncLifetime
{
    private const string Our = "backup.example.net";
    private const string Domain = "example.com";

    private readonly TestDnsServer _dns = new();
    private readonly FakePrimary _primary = new();
    private TestPolicyServer _policy = null!;

    public async Task InitializeAsync()
    {
        await _primary.StartAsync();
        _policy = new TestPolicyServer("mta-sts." + Domain);
        _dns.Host(Our, IPAddress.Loopback).Host("mail." + Domain, IPAddress.Loopback);
    }

    public async Task DisposeAsync()
    {
        await _policy.DisposeAsync();
        await _primary.DisposeAsync();
        _dns.Dispose();
    }

    [Fact]
    public async Task CheckAsync_WellConfiguredDomain_ReportsOnlyOk()
    {
        _dns.Mx(Domain, 10, "mail." + Domain).Mx(Domain, 20, Our);
        _dns.Txt("_mta-sts." + Domain, "v=STSv1; id=20260101");
        _policy.Body = $"version: STSv1\r\nmode: enforce\r\nmx: mail.{Domain}\r\nmx: *.example.net\r\nmax_age: 86400\r\n";
        using var own = TestCertificates.Create(Our);
        _dns.Tlsa("_25._tcp." + Our, 3, 1, 1, SHA256.HashData(own.PublicKey.ExportSubjectPublicKeyInfo()));
        _primary.OfferStartTls = true;

        var findings = await CheckAsync(new OwnTls(own, []), new DomainOptions { Name = Domain, OutboundTls = OutboundTlsMode.Disabled });

        Assert.Equal(["address.ok", "dane.ok", "mx.ok", "primary.ok", "mta-sts.ok"], findings.Select(f => f.Code));
        Assert.All(findings, f => Assert.Equal(FindingSeverity.OK, f.Severity));
        Assert.Equal(["/.well-known/mta-sts.txt"], _policy.Requests);
        Assert.Contains("after the primary mail.example.com at 10", findings[2].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckMxAsync_BackupAtSamePreference_IsErrorAndNoPrimary()
    {
        _dns.Mx(Domain, 10, "mail." + Domain).Mx(Domain, 10, Our);

        var findings = await MxAsync();

        Assert.Equal(["mx.preference", "mx.no-primary"], findings.Select(f => f.Code));
        Assert.All(findings, f => Assert.Equal(FindingSeverity.ERROR, f.Severity));
        Assert.Contains("shares preference 10 with mail.example.com", findings[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckMxAsync_BackupMostPreferred_IsNoPrimaryError()
    {
        _dns.Mx(Domain, 5, Our).Mx(Domain, 10, "mail." + Domain);

        var findings = await MxAsync();

        var finding = Assert.Single(findings);
        Assert.Equal(("mx.no-primary", FindingSeverity.ERROR), (finding.Code, finding.Severity));
    }

    [Fact]
    public async Task CheckMxAsync_BackupNotListed_IsMissingBackupError()
    {
        _dns.Mx(Domain, 10, "mail." + Domain);

        var findings = await MxAsync();

        var finding = Assert.Single(findings);
        Assert.Equal(("mx.missing-backup", FindingSeverity.ERROR), (finding.Code, finding.Severity));
        Assert.Contains("10 mail.example.com", finding.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckMxAsync_NullMx_IsError()
    {
        _dns.NullMx(Domain);

        var finding = Assert.Single(await MxAsync());

        Assert.Equal(("mx.null", FindingSeverity.ERROR), (finding.Code, finding.Severity));
    }

    [Theory]
    [InlineData(false, "does not exist (NXDOMAIN)")]
    [InlineData(true, "failed")]
    public async Task CheckMxAsync_LookupFails_IsError(bool servFail, string expected)
    {
        if (servFail)
        {
            _dns.Fail(Domain);
        }

        var finding = Assert.Single(await MxAsync());

        Assert.Equal(("mx.lookup-failed", FindingSeverity.ERROR), (finding.Code, finding.Severity));
        Assert.Contains(expected, finding.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckAddressAsync_ResolvesElsewhere_IsMismatchError()
    {
        var finding = await Checker().CheckAddressAsync(Our, ["192.0.2.1"], default);

        Assert.Equal(("address.mismatch", FindingSeverity.ERROR), (finding.Code, finding.Severity));
        Assert.Contains("127.0.0.1", finding.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckAddressAsync_NoPublicAddresses_IsNotConfiguredWarning()
    {
        var finding = await Checker().CheckAddressAsync(Our, [], default);

        Assert.Equal(("address.not-configured", FindingSeverity.WARN), (finding.Code, finding.Severity));
    }

    [Fact]
    public async Task CheckAddressAsync_NoRecord_IsUnresolvedError()
    {
        var finding = await Checker().CheckAddressAsync("nothing." + Domain, ["127.0.0.1"], default);

        Assert.Equal(("address.unresolved", FindingSeverity.ERROR), (finding.Code, finding.Severity));
    }

    [Theory]
    [InlineData(OutboundTlsMode.Opportunistic, FindingSeverity.WARN)]
    [InlineData(OutboundTlsMode.Required, FindingSeverity.ERROR)]
    public async Task CheckPrimaryAsync_NoStartTls_SeverityFollowsOutboundTls(OutboundTlsMode mode, FindingSeverity expected)
    {
        var finding = await PrimaryAsync(new DomainOptions { Name = Domain, OutboundTls = mode });

        Assert.Equal(("primary.no-starttls", expected), (finding.Code, finding.Severity));
        Assert.Contains("greets in", finding.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(OutboundTlsMode.Opportunistic, FindingSeverity.WARN)]
    [InlineData(OutboundTlsMode.Required, FindingSeverity.ERROR)]
    public async Task CheckPrimaryAsync_SelfSignedCertificate_SeverityFollowsOutboundTls(OutboundTlsMode mode, FindingSeverity expected)
    {
        _primary.OfferStartTls = true;

        var finding = await PrimaryAsync(new DomainOptions { Name = Domain, OutboundTls = mode });

        Assert.Equal(("primary.certificate", expected), (finding.Code, finding.Severity));
        Assert.Contains("not valid for mail.example.com", finding.Message, StringComparison.Ordinal);
        Assert.Contains("STARTTLS", _primary.Commands);
    }

    [Fact]
    public async Task CheckPrimaryAsync_NothingListening_IsUnreachableError()
    {
        var finding = await Checker().CheckPrimaryAsync(Domain, new HostPort("mail." + Domain, FreePort.Next()), Our, new DomainOptions { Name = Domain }, TimeSpan.FromSeconds(5), default);

        Assert.Equal(("primary.unreachable", FindingSeverity.ERROR), (finding.Code, finding.Severity));
    }

    [Fact]
    public async Task CheckPrimaryAsync_SilentServer_IsUnreachableWithinProbeTimeout()
    {
        using var silent = new TcpListenerScope();
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();

        var finding = await Checker().CheckPrimaryAsync(Domain, new HostPort("mail." + Domain, silent.Port), Our, new DomainOptions { Name = Domain }, TimeSpan.FromMilliseconds(500), default);

        Assert.Equal(("primary.unreachable", FindingSeverity.ERROR), (finding.Code, finding.Severity));
        Assert.Contains("no greeting within", finding.Message, StringComparison.Ordinal);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(10), stopwatch.Elapsed.ToString());
    }

    [Fact]
    public async Task CheckPrimaryAsync_NoAddress_IsUnresolvedError()
    {
        var finding = await Checker().CheckPrimaryAsync(Domain, new HostPort("gone." + Domain, 25), Our, new DomainOptions { Name = Domain }, TimeSpan.FromSeconds(5), default);

        Assert.Equal(("primary.unresolved", FindingSeverity.ERROR), (finding.Code, finding.Severity));
    }

    [Fact]
    public async Task CheckAsync_ConfiguredPrimary_IsTheOneProbed()
    {
        _dns.Mx(Domain, 10, "elsewhere." + Domain).Mx(Domain, 20, Our);

        var findings = await CheckAsync(OwnTls.None, new DomainOptions { Name = Domain, Primary = _primary.HostPort });

        Assert.Contains(findings, f => f.Code == "primary.no-starttls" && f.Message.Contains(_primary.HostPort, StringComparison.Ordinal));
        Assert.Equal(1, _primary.ConnectionCount);
    }

    [Fact]
    public async Task CheckMtaStsAsync_NoTxtRecord_IsNone()
    {
        var finding = await Checker().CheckMtaStsAsync(Domain, Our, OwnTls.None, default);

        Assert.Equal(("mta-sts.none", FindingSeverity.OK), (finding.Code, finding.Severity));
        Assert.Empty(_policy.Requests);
    }

    [Theory]
    [InlineData("enforce", "refuse to deliver")]
    [InlineData("testing", "report")]
    public async Task CheckMtaStsAsync_OurHostNotInPolicy_IsError(string mode, string expected)
    {
        using var own = TestCertificates.Create(Our);
        Publish($"version: STSv1\nmode: {mode}\nmx: mail.example.com\nmx: *.other.example.net\nmax_age: 604800\n");

        var finding = await Checker().CheckMtaStsAsync(Domain, Our, new OwnTls(own, []), default);

        Assert.Equal(("mta-sts.not-listed", FindingSeverity.ERROR), (finding.Code, finding.Severity));
        Assert.Contains(expected, finding.Message, StringComparison.Ordinal);
        Assert.Contains($"mx: {Our}", finding.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckMtaStsAsync_ListedButWeOfferNoStartTls_IsError()
    {
        Publish($"version: STSv1\nmode: enforce\nmx: {Our}\nmax_age: 604800\n");

        var finding = await Checker().CheckMtaStsAsync(Domain, Our, OwnTls.None, default);

        Assert.Equal(("mta-sts.no-starttls", FindingSeverity.ERROR), (finding.Code, finding.Severity));
    }

    [Fact]
    public async Task CheckMtaStsAsync_ModeNone_IsOkWhateverTheMxLines()
    {
        Publish("version: STSv1\nmode: none\nmax_age: 86400\n");

        var finding = await Checker().CheckMtaStsAsync(Domain, Our, OwnTls.None, default);

        Assert.Equal(("mta-sts.ok", FindingSeverity.OK), (finding.Code, finding.Severity));
        Assert.Contains("mode none", finding.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(404, "text/plain", "version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 1\n", "answered 404")]
    [InlineData(200, "text/html", "version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 1\n", "not text/plain")]
    [InlineData(200, "text/plain", "version: STSv1\nmode: strict\nmx: *.example.net\nmax_age: 1\n", "mode 'strict'")]
    [InlineData(200, "text/plain", "mode: enforce\nmx: *.example.net\nmax_age: 1\n", "version is not STSv1")]
    public async Task CheckMtaStsAsync_PolicyUnusable_IsFetchFailedWarningWithReason(int status, string contentType, string body, string reason)
    {
        Publish(body);
        _policy.Status = status;
        _policy.ContentType = contentType;

        var finding = await Checker().CheckMtaStsAsync(Domain, Our, OwnTls.None, default);

        Assert.Equal(("mta-sts.fetch-failed", FindingSeverity.WARN), (finding.Code, finding.Severity));
        Assert.Contains(reason, finding.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckMtaStsAsync_Redirect_IsNotFollowed()
    {
        Publish("version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 1\n");
        _policy.Status = 301;
        _policy.Location = "https://elsewhere.example.com/mta-sts.txt";

        var finding = await Checker().CheckMtaStsAsync(Domain, Our, OwnTls.None, default);

        Assert.Equal(("mta-sts.fetch-failed", FindingSeverity.WARN), (finding.Code, finding.Severity));
        Assert.Contains("do not follow redirects", finding.Message, StringComparison.Ordinal);
        Assert.Single(_policy.Requests);
    }

    [Fact]
    public async Task CheckMtaStsAsync_CertificateForAnotherName_IsFetchFailedWarning()
    {
        await using var wrongName = new TestPolicyServer("www.example.com") { Body = "version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 1\n" };
        _dns.Txt("_mta-sts." + Domain, "v=STSv1; id=1");
        using var fetcher = wrongName.Fetcher();
        var checker = new DnsChecker(LookupClientFactory.Create(new DnsOptions { Servers = [_dns.Address] }, cache: false), fetcher);

        var finding = await checker.CheckMtaStsAsync(Domain, Our, OwnTls.None, default);

        Assert.Equal(("mta-sts.fetch-failed", FindingSeverity.WARN), (finding.Code, finding.Severity));
        Assert.Contains("SSL", finding.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task CheckDaneAsync_NoRecord_IsNone()
    {
        var finding = Assert.Single(await Checker().CheckDaneAsync(Our, OwnTls.None, default));

        Assert.Equal(("dane.none", FindingSeverity.OK), (finding.Code, finding.Severity));
    }

    [Fact]
    public async Task CheckDaneAsync_RecordOfAnotherCertificate_IsMismatchError()
    {
        using var published = TestCertificates.Create(Our);
        using var served = TestCertificates.Create(Our);
        _dns.Tlsa("_25._tcp." + Our, 3, 1, 1, SHA256.HashData(published.PublicKey.ExportSubjectPublicKeyInfo()));

        var finding = Assert.Single(await Checker().CheckDaneAsync(Our, new OwnTls(served, []), default));

        Assert.Equal(("dane.mismatch", FindingSeverity.ERROR), (finding.Code, finding.Severity));
        Assert.Contains(served.GetCertHashString(HashAlgorithmName.SHA256), finding.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckDaneAsync_TrustAnchorOfTheChain_Matches()
    {
        using var issuer = TestCertificates.Create("ca.example.net");
        using var served = TestCertificates.Create(Our);
        _dns.Tlsa("_25._tcp." + Our, 2, 0, 2, SHA512.HashData(issuer.RawData));

        var finding = Assert.Single(await Checker().CheckDaneAsync(Our, new OwnTls(served, [issuer]), default));

        Assert.Equal(("dane.ok", FindingSeverity.OK), (finding.Code, finding.Severity));
    }

    [Fact]
    public async Task CheckDaneAsync_WeOfferNoStartTls_IsError()
    {
        _dns.Tlsa("_25._tcp." + Our, 3, 1, 1, new byte[32]);

        var finding = Assert.Single(await Checker().CheckDaneAsync(Our, OwnTls.None, default));

        Assert.Equal(("dane.no-starttls", FindingSeverity.ERROR), (finding.Code, finding.Severity));
    }

    [Fact]
    public async Task CheckDaneAsync_OnlyPkixUsages_IsUnusableWarning()
    {
        using var served = TestCertificates.Create(Our);
        _dns.Tlsa("_25._tcp." + Our, 1, 0, 0, served.RawData);

        var finding = Assert.Single(await Checker().CheckDaneAsync(Our, new OwnTls(served, []), default));

        Assert.Equal(("dane.unusable", FindingSeverity.WARN), (finding.Code, finding.Severity));
    }

    private void Publish(string policy)
    {
        _dns.Txt("_mta-sts." + Domain, "v=STSv1; id=20260101T000000");
        _policy.Body = policy;
    }

    private DnsChecker Checker() =>
        new(LookupClientFactory.Create(new DnsOptions { Servers = [_dns.Address] }, cache: false), _policy.Fetcher());

    private async Task<List<DnsFinding>> MxAsync()
    {
        var findings = new List<DnsFinding>();
        await Checker().CheckMxAsync(Domain, Our, new DomainOptions { Name = Domain }, 25, findings, default);
        return findings;
    }

    private Task<DnsFinding> PrimaryAsync(DomainOptions domain) =>
        Checker().CheckPrimaryAsync(Domain, new HostPort("mail." + Domain, _primary.Port), Our, domain, TimeSpan.FromSeconds(10), default);

    private async Task<IReadOnlyList<DnsFinding>> CheckAsync(OwnTls tls, DomainOptions domain)
    {
        var config = new BackupMxOptions
        {
            HostName = Our,
            PublicAddresses = ["127.0.0.1"],
            Domains = [domain],
            Delivery = new DeliveryOptions { Port = _primary.Port, ProbeTimeout = TimeSpan.FromSeconds(10) },
        };
        return await Checker().CheckAsync(config, tls, [domain], default);
    }

    /// <summary>A listener that accepts connections and never says anything.</summary>
    private sealed class TcpListenerScope : IDisposable
    {
        private readonly System.Net.Sockets.TcpListener _listener = new(IPAddress.Loopback, FreePort.Next());

        public TcpListenerScope() => _listener.Start();

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public void Dispose() => _listener.Stop();
    }
}
