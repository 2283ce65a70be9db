using System.Globalization;
using BackupMx.Core.Configuration;

namespace BackupMx.Core.Tests;

public sealed class OptionsValidationTests
{
    private static BackupMxOptions Valid() => new()
    {
        HostName = "backup.test",
        Smtp = new SmtpOptions { Endpoints = ["127.0.0.1:2525"] },
        Domains = [new DomainOptions { Name = "example.test", Primary = "127.0.0.1:2526" }],
    };

    private static IReadOnlyList<string> Errors(BackupMxOptions options) =>
        new BackupMxOptionsValidator().Validate(null, options).Failures?.ToList() ?? [];

    [Fact]
    public void Validate_ExampleConfiguration_Succeeds()
    {
        Assert.Empty(Errors(Valid()));
    }

    [Fact]
    public void Validate_MissingHostName_NamesTheKey()
    {
        var options = Valid();
        options.HostName = "";
        Assert.Contains(Errors(options), e => e.StartsWith("BackupMx:HostName", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_BadEndpoint_NamesTheKeyAndIndex()
    {
        var options = Valid();
        options.Smtp.Endpoints.Add("localhost");
        Assert.Contains(Errors(options), e => e.StartsWith("BackupMx:Smtp:Endpoints:1 ", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_BadPrimary_NamesTheKey()
    {
        var options = Valid();
        options.Domains[0].Primary = "host:99999";
        Assert.Contains(Errors(options), e => e.StartsWith("BackupMx:Domains:0:Primary", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(0)]
    [InlineData(65536)]
    public void Validate_DeliveryPortOutOfRange_NamesTheKey(int port)
    {
        var options = Valid();
        options.Delivery.Port = port;
        Assert.Contains(Errors(options), e => e.StartsWith("BackupMx:Delivery:Port ", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    public void Validate_MxSessionLimitOutOfRange_NamesTheKey(int limit)
    {
        var options = Valid();
        options.Delivery.MxSessionLimit = limit;
        Assert.Contains(Errors(options), e => e.StartsWith("BackupMx:Delivery:MxSessionLimit", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_BadPublicAddress_NamesTheKeyAndIndex()
    {
        var options = Valid();
        options.PublicAddresses = ["192.0.2.1", "mx.example.net"];
        Assert.Equal(["BackupMx:PublicAddresses:1 'mx.example.net' is not an IP address."], Errors(options));
    }

    [Fact]
    public void Validate_BadDnsServer_NamesTheKeyAndIndex()
    {
        var options = Valid();
        options.Dns.Servers = ["192.0.2.53", "[2001:db8::53]:53", "resolver.example.net:5353", "192.0.2.1:99999", "a b"];
        Assert.Equal(
            [
                "BackupMx:Dns:Servers:3 '192.0.2.1:99999' is not a host[:port] (for example 192.0.2.53, [2001:db8::53]:53 or resolver.example.net:5353).",
                "BackupMx:Dns:Servers:4 'a b' is not a host[:port] (for example 192.0.2.53, [2001:db8::53]:53 or resolver.example.net:5353).",
            ],
            Errors(options));
    }

    [Fact]
    public void Validate_NoDomains_IsAnError()
    {
        var options = Valid();
        options.Domains.Clear();
        Assert.Contains(Errors(options), e => e.StartsWith("BackupMx:Domains", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_DuplicateDomain_IsAnError()
    {
        var options = Valid();
        options.Domains.Add(new DomainOptions { Name = "EXAMPLE.test" });
        Assert.Contains(Errors(options), e => e.StartsWith("BackupMx:Domains:1:Name", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_NonPositiveTimes_NameTheirKeys()
    {
        var options = Valid();
        options.Delivery.Retention = TimeSpan.Zero;
        options.Delivery.ProbeInterval = TimeSpan.FromSeconds(-1);
        options.Delivery.RetryIntervals = [TimeSpan.FromMinutes(5), TimeSpan.Zero];
        var errors = Errors(options);
        Assert.Contains(errors, e => e.StartsWith("BackupMx:Delivery:Retention", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("BackupMx:Delivery:ProbeInterval", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("BackupMx:Delivery:RetryIntervals:1", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("00:00:00")]
    [InlineData("-00:00:01")]
    public void Validate_NonPositiveProbeTimeout_NamesTheKey(string value)
    {
        var options = Valid();
        options.Delivery.ProbeTimeout = TimeSpan.Parse(value, CultureInfo.InvariantCulture);
        Assert.Contains(Errors(options), e => e.StartsWith("BackupMx:Delivery:ProbeTimeout must be a positive TimeSpan", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_ProbeTimeoutLongerThanDeliveryTimeout_NamesBothKeys()
    {
        var options = Valid();
        options.Delivery.Timeout = TimeSpan.FromSeconds(20);
        options.Delivery.ProbeTimeout = TimeSpan.FromSeconds(21);
        Assert.Equal(
            ["BackupMx:Delivery:ProbeTimeout 00:00:21 must not be longer than BackupMx:Delivery:Timeout (00:00:20)."],
            Errors(options));
    }

    [Theory]
    [InlineData("00:05:00", "00:05:00")]
    [InlineData("00:05:00", "00:05:14")]
    [InlineData("00:05:00", "00:01:00")]
    [InlineData("00:00:00.5", "00:00:01")]
    public void Validate_LeaseNotLongerThanAnAttemptAndItsMargin_NamesLeaseDuration(string attempt, string lease)
    {
        // A lease that runs out while its attempt still talks to the primary lets a second worker
        // deliver the same message at the same time.
        var options = Valid();
        options.Delivery.Timeout = TimeSpan.FromMilliseconds(500);
        options.Delivery.AttemptTimeout = TimeSpan.Parse(attempt, CultureInfo.InvariantCulture);
        options.Delivery.LeaseDuration = TimeSpan.Parse(lease, CultureInfo.InvariantCulture);

        var error = Assert.Single(Errors(options));
        Assert.StartsWith("BackupMx:Delivery:LeaseDuration", error, StringComparison.Ordinal);
        Assert.Contains("BackupMx:Delivery:AttemptTimeout", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_LeaseCoversTheAttemptAndItsMargin_Succeeds()
    {
        var options = Valid();
        options.Delivery.AttemptTimeout = TimeSpan.FromMinutes(5);
        options.Delivery.LeaseDuration = TimeSpan.FromMinutes(5) + DeliveryOptions.LeaseMargin;
        Assert.Empty(Errors(options));
        Assert.True(new DeliveryOptions().LeaseDuration >= new DeliveryOptions().AttemptTimeout + DeliveryOptions.LeaseMargin);
    }

    [Theory]
    [InlineData("00:00:00", "must be a positive TimeSpan")]
    [InlineData("00:00:30", "must not be shorter than BackupMx:Delivery:Timeout")]
    public void Validate_AttemptTimeoutNotPositiveOrShorterThanOneCommand_NamesTheKey(string value, string reason)
    {
        var options = Valid();
        options.Delivery.Timeout = TimeSpan.FromMinutes(1);
        options.Delivery.AttemptTimeout = TimeSpan.Parse(value, CultureInfo.InvariantCulture);
        var error = Assert.Single(Errors(options));
        Assert.StartsWith("BackupMx:Delivery:AttemptTimeout", error, StringComparison.Ordinal);
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ProbeTimeoutEqualToDeliveryTimeout_Succeeds()
    {
        var options = Valid();
        options.Delivery.Timeout = TimeSpan.FromSeconds(20);
        options.Delivery.ProbeTimeout = TimeSpan.FromSeconds(20);
        Assert.Empty(Errors(options));
        Assert.Equal(TimeSpan.FromSeconds(20), options.Delivery.EffectiveProbeTimeout);
    }

    [Fact]
    public void EffectiveProbeTimeout_Unset_TenSecondsButNeverLongerThanDeliveryTimeout()
    {
        var options = Valid();
        Assert.Equal(TimeSpan.FromSeconds(10), options.Delivery.EffectiveProbeTimeout);

        // A short Delivery:Timeout set before ProbeTimeout existed stays valid: the default follows it down.
        options.Delivery.Timeout = TimeSpan.FromSeconds(5);
        Assert.Empty(Errors(options));
        Assert.Equal(TimeSpan.FromSeconds(5), options.Delivery.EffectiveProbeTimeout);
    }

    [Fact]
    public void Validate_TooFewRecipients_RefersToTheRfc()
    {
        var options = Valid();
        options.Smtp.MaxRecipients = 50;
        Assert.Contains(Errors(options), e => e.StartsWith("BackupMx:Smtp:MaxRecipients", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_BadSmartHost_NamesTheKey()
    {
        var options = Valid();
        options.Bounce.SmartHost = "a b";
        Assert.Contains(Errors(options), e => e.StartsWith("BackupMx:Bounce:SmartHost", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("alice@example.test", true)]
    [InlineData("*@EXAMPLE.TEST", true)]
    [InlineData("alice@other.test", false)]
    [InlineData("alice", false)]
    [InlineData("@example.test", false)]
    public void Validate_Recipients_MustBeAtTheDomain(string entry, bool valid)
    {
        var options = Valid();
        options.Domains[0].Recipients.Add(entry);
        Assert.Equal(valid, !Errors(options).Any(e => e.StartsWith("BackupMx:Domains:0:Recipients:0 ", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("192.0.2.10", true)]
    [InlineData("2001:db8::/32", true)]
    [InlineData("192.0.2.0/24", true)]
    [InlineData("primary.example.test", false)]
    [InlineData("192.0.2.0/33", false)]
    public void Validate_EtrnClients_MustBeIpOrCidr(string entry, bool valid)
    {
        var options = Valid();
        options.Domains[0].EtrnClients.Add(entry);
        Assert.Equal(valid, !Errors(options).Any(e => e.StartsWith("BackupMx:Domains:0:EtrnClients:0 ", StringComparison.Ordinal)));
    }

    [Fact]
    public void Validate_RecipientVerificationDurations_MustBePositive()
    {
        var options = Valid();
        options.RecipientVerification.PositiveCacheDuration = TimeSpan.Zero;
        options.RecipientVerification.NegativeCacheDuration = TimeSpan.FromSeconds(-1);
        options.RecipientVerification.MaxCacheEntries = 0;
        var errors = Errors(options);
        Assert.Contains(errors, e => e.StartsWith("BackupMx:RecipientVerification:PositiveCacheDuration", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("BackupMx:RecipientVerification:NegativeCacheDuration", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("BackupMx:RecipientVerification:MaxCacheEntries", StringComparison.Ordinal));
    }
}
