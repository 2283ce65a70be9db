using BackupMx.Core.Configuration;
using BackupMx.Core.Model;
using BackupMx.Delivery.Routing;

namespace BackupMx.Delivery.Tests;

public sealed class RouteSelectorTests
{
    private static readonly string[] Ours = ["backup.example.net"];

    private static MxRecord[] Mx(params (int Preference, string Host)[] records) => records.Select(r => new MxRecord(r.Preference, r.Host)).ToArray();

    [Fact]
    public void SelectPrimaries_DropsOurselvesAndEverythingAtOrAboveOurPreference()
    {
        var records = Mx((10, "mx1.example.com"), (20, "backup.example.net."), (20, "peer.example.com"), (30, "last.example.com"), (5, "mx0.example.com"));

        var hosts = RouteSelector.SelectPrimaries(records, Ours, new Random(1));

        Assert.Equal(["mx0.example.com", "mx1.example.com"], hosts);
    }

    [Fact]
    public void SelectPrimaries_OurNameMatchesCaseInsensitively()
    {
        var records = Mx((10, "BACKUP.Example.NET"), (10, "peer.example.com"));

        Assert.Empty(RouteSelector.SelectPrimaries(records, Ours, new Random(1)));
    }

    [Fact]
    public void SelectPrimaries_NotListedOurselves_EveryMxIsACandidate()
    {
        var hosts = RouteSelector.SelectPrimaries(Mx((20, "b.example.com"), (10, "a.example.com")), Ours, new Random(1));

        Assert.Equal(["a.example.com", "b.example.com"], hosts);
    }

    [Fact]
    public void SelectPrimaries_EqualPreferences_ShuffledButNeverBeforeALowerOne()
    {
        var records = Mx((5, "first.example.com"), (10, "a.example.com"), (10, "b.example.com"), (10, "c.example.com"), (50, "backup.example.net"));
        var orders = new HashSet<string>();
        var random = new Random(42);
        for (var i = 0; i < 200; i++)
        {
            var hosts = RouteSelector.SelectPrimaries(records, Ours, random);
            Assert.Equal("first.example.com", hosts[0]);
            Assert.Equal(["a.example.com", "b.example.com", "c.example.com"], hosts.Skip(1).Order());
            orders.Add(string.Join(',', hosts));
        }

        Assert.Equal(6, orders.Count);
    }

    [Fact]
    public void SelectAll_OrdersByPreferenceAndDropsEmptyHosts()
    {
        var hosts = RouteSelector.SelectAll(Mx((20, "b.example.com."), (10, "a.example.com"), (30, ".")), new Random(1));

        Assert.Equal(["a.example.com", "b.example.com"], hosts);
    }

    [Fact]
    public void IsNullMx_OnlyASingleDotRecord()
    {
        Assert.True(new MxLookup(DnsLookupStatus.Ok, Mx((0, "."))).IsNullMx);
        Assert.True(new MxLookup(DnsLookupStatus.Ok, Mx((0, ""))).IsNullMx);
        Assert.False(new MxLookup(DnsLookupStatus.Ok, Mx((0, "."), (10, "mx.example.com"))).IsNullMx);
        Assert.False(new MxLookup(DnsLookupStatus.Ok, []).IsNullMx);
    }
}

public sealed class DeliveryRouterTests
{
    private static DeliveryRouter Router(ScriptedDns dns, string? primary = null, string? smartHost = null) =>
        TestDelivery.Router(TestDelivery.Config(primary, port: 2525, smartHost: smartHost), dns);

    [Fact]
    public async Task RouteAsync_ConfiguredPrimary_WinsOverDnsAndTakesTheDefaultPort()
    {
        var dns = new ScriptedDns().WithMx("example.com", (10, "mx.example.com"));

        var route = await Router(dns, primary: "inbound.example.com").RouteAsync(MessageKind.Relay, "example.com", CancellationToken.None);

        Assert.Equal([new HostPort("inbound.example.com", 2525)], route.Hosts);
    }

    [Fact]
    public async Task RouteAsync_PrimaryWithPort_KeepsItsPort()
    {
        var route = await Router(new ScriptedDns(), primary: "[::1]:587").RouteAsync(MessageKind.Relay, "EXAMPLE.com", CancellationToken.None);

        Assert.Equal([new HostPort("::1", 587)], route.Hosts);
    }

    [Fact]
    public async Task RouteAsync_RelayByMx_OnlyHostsBelowOurPreference()
    {
        var dns = new ScriptedDns().WithMx("example.com", (10, "mx.example.com"), (20, TestDelivery.OurHost), (30, "low.example.com"));

        var route = await Router(dns).RouteAsync(MessageKind.Relay, "example.com", CancellationToken.None);

        Assert.Equal([new HostPort("mx.example.com", 2525)], route.Hosts);
    }

    [Fact]
    public async Task RouteAsync_OurMxUnderAnotherNameWithOurPublicAddress_OnlyHostsBelowIt()
    {
        var dns = new ScriptedDns()
            .WithMx("example.com", (10, "mx.example.com"), (20, "mx2.example.com"), (30, "tertiary.example.org"))
            .WithAddress("mx.example.com", "192.0.2.1")
            .WithAddress("mx2.example.com", "198.51.100.7")
            .WithAddress("tertiary.example.org", "203.0.113.9");
        var options = TestDelivery.Config(port: 2525);
        options.PublicAddresses = ["198.51.100.7"];

        var route = await TestDelivery.Router(options, dns).RouteAsync(MessageKind.Relay, "example.com", CancellationToken.None);

        Assert.Equal([new HostPort("mx.example.com", 2525)], route.Hosts);
    }

    [Fact]
    public async Task RouteAsync_OurMxUnderAnotherNameWithoutPublicAddresses_EveryMxIsACandidate()
    {
        var dns = new ScriptedDns()
            .WithMx("example.com", (10, "mx.example.com"), (20, "mx2.example.com"))
            .WithAddress("mx2.example.com", "198.51.100.7");

        var route = await Router(dns).RouteAsync(MessageKind.Relay, "example.com", CancellationToken.None);

        Assert.Equal(2, route.Hosts.Count);
    }

    [Theory]
    [InlineData("null")]
    [InlineData("none")]
    [InlineData("nxdomain")]
    [InlineData("servfail")]
    public async Task RouteAsync_RelayWithoutUsablePrimary_TransientAndKept(string dnsCase)
    {
        var dns = new ScriptedDns();
        switch (dnsCase)
        {
            case "null": dns.WithMx("example.com", (0, ".")); break;
            case "none": dns.WithMx("example.com"); break;
            case "servfail": dns.Mx["example.com"] = new MxLookup(DnsLookupStatus.Failed, [], "SERVFAIL"); break;
        }

        var route = await Router(dns).RouteAsync(MessageKind.Relay, "example.com", CancellationToken.None);

        Assert.Empty(route.Hosts);
        Assert.False(route.Undeliverable);
        Assert.True(route.Failure!.IsTransient);
        Assert.False(route.Failure.FromRemote);
    }

    [Fact]
    public async Task RouteAsync_DsnByMx_AllHostsByPreferenceIncludingHigherOnes()
    {
        var dns = new ScriptedDns().WithMx("sender.org", (20, "b.sender.org"), (10, "a.sender.org"));

        var route = await Router(dns).RouteAsync(MessageKind.Dsn, "sender.org", CancellationToken.None);

        Assert.Equal(["a.sender.org", "b.sender.org"], route.Hosts.Select(h => h.Host));
    }

    [Fact]
    public async Task RouteAsync_DsnByMx_Port25WhateverThePrimariesPortIs()
    {
        // Delivery:Port is 2525 here: the primaries' port. A sender's MX listens on 25 only.
        var dns = new ScriptedDns().WithMx("sender.org", (20, "b.sender.org"), (10, "a.sender.org"));

        var route = await Router(dns).RouteAsync(MessageKind.Dsn, "sender.org", CancellationToken.None);

        Assert.Equal([new HostPort("a.sender.org", 25), new HostPort("b.sender.org", 25)], route.Hosts);
    }

    [Fact]
    public async Task RouteAsync_DsnNoMx_FallsBackToTheDomainItselfOnPort25()
    {
        var route = await Router(new ScriptedDns().WithMx("sender.org")).RouteAsync(MessageKind.Dsn, "sender.org", CancellationToken.None);

        Assert.Equal([new HostPort("sender.org", 25)], route.Hosts);
    }

    [Fact]
    public async Task RouteAsync_DsnWithSmartHostWithoutPort_Port25()
    {
        var route = await Router(new ScriptedDns(), smartHost: "relay.example.net").RouteAsync(MessageKind.Dsn, "sender.org", CancellationToken.None);

        Assert.Equal([new HostPort("relay.example.net", 25)], route.Hosts);
    }

    [Fact]
    public async Task RouteAsync_RelayWithSmartHost_PrimariesKeepTheirPort()
    {
        // The bounce smart host is for DSNs only: relayed mail still goes to the primary on Delivery:Port.
        var route = await Router(new ScriptedDns(), primary: "inbound.example.com", smartHost: "relay.example.net").RouteAsync(MessageKind.Relay, "example.com", CancellationToken.None);

        Assert.Equal([new HostPort("inbound.example.com", 2525)], route.Hosts);
    }

    [Fact]
    public async Task RouteAsync_DsnNullMx_Undeliverable556()
    {
        var route = await Router(new ScriptedDns().WithMx("sender.org", (0, "."))).RouteAsync(MessageKind.Dsn, "sender.org", CancellationToken.None);

        Assert.True(route.Undeliverable);
        Assert.Equal(556, route.Failure!.Code);
        Assert.Equal("5.1.10", route.Failure.EnhancedCode);
    }

    [Fact]
    public async Task RouteAsync_DsnNonexistentDomain_Permanent()
    {
        var route = await Router(new ScriptedDns()).RouteAsync(MessageKind.Dsn, "nowhere.invalid", CancellationToken.None);

        Assert.True(route.Failure!.IsPermanent);
    }

    [Fact]
    public async Task RouteAsync_DsnWithSmartHost_UsesItWithoutDns()
    {
        var route = await Router(new ScriptedDns(), smartHost: "relay.example.net:587").RouteAsync(MessageKind.Dsn, "sender.org", CancellationToken.None);

        Assert.Equal([new HostPort("relay.example.net", 587)], route.Hosts);
    }
}
