using BackupMx.Core.Model;
using BackupMx.Core.Ports;
using BackupMx.Telemetry;
using BackupMx.Testing.Fakes;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace BackupMx.Functions.Tests;

public sealed class ProbeAndExpireFunctionTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task ProbePrimaries_PrimaryComesBack_FlushesItsDomainAndForwardDelivers()
    {
        using var h = new FunctionsHarness();
        h.Core.Transport.Reachable = false;
        h.Core.Prober.IsUp = _ => false;
        var id = await h.AcceptAsync();
        await h.Forward.ForwardDueAsync(None);
        await h.Probe.Run(new TimerInfo(), None);
        Assert.Equal(PrimaryState.Down, (await h.Core.Get<IPrimaryStatusStore>().GetAsync("example.test", None))!.Status.State);

        // Well before the first retry (5 minutes), the primary answers a probe again.
        h.Core.Time.Advance(TimeSpan.FromSeconds(30));
        h.Core.Transport.Reachable = true;
        h.Core.Prober.IsUp = _ => true;
        await h.Probe.Run(new TimerInfo(), None);
        var report = await h.Forward.ForwardDueAsync(None);

        Assert.Equal(1, report.Completed);
        Assert.Equal(2, h.Core.Transport.Attempts.Count);
        Assert.Equal(id, h.Core.Transport.Attempts.Last().Request.QueueId);
        Assert.Empty(await h.AllRecordsAsync());
    }

    [Fact]
    public async Task ProbePrimaries_TimerEveryTenSeconds_ProbesOnlyOncePerProbeInterval()
    {
        using var h = new FunctionsHarness();

        Assert.True(await h.Probe.ProbeIfDueAsync(None));
        var afterFirst = h.Core.Prober.Probes;

        h.Core.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(await h.Probe.ProbeIfDueAsync(None));
        h.Core.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(await h.Probe.ProbeIfDueAsync(None));
        Assert.Equal(afterFirst, h.Core.Prober.Probes);

        // ProbeInterval (30 s by default) has passed.
        h.Core.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(await h.Probe.ProbeIfDueAsync(None));
        Assert.True(h.Core.Prober.Probes > afterFirst);
    }

    [Fact]
    public async Task ProbePrimaries_ReportsReachabilityPerDomain()
    {
        using var h = new FunctionsHarness();
        using var reachable = new MetricCollector<double>(h.MeterFactory, Core.Telemetry.Name, SpoolGauges.PrimaryReachableName);
        h.Core.Prober.IsUp = domain => domain == "example.test";

        await h.Probe.Run(new TimerInfo(), None);
        reachable.RecordObservableInstruments();

        var byDomain = reachable.GetMeasurementSnapshot().ToDictionary(m => (string)m.Tags[SpoolGauges.DomainTag]!, m => m.Value);
        Assert.Equal(1, byDomain["example.test"]);
        Assert.Equal(0, byDomain["other.test"]);
    }

    [Fact]
    public async Task Expire_PastRetention_BouncesWithADsnThatForwardSends()
    {
        using var h = new FunctionsHarness();
        h.Core.Transport.Reachable = false;
        var id = await h.AcceptAsync();
        await h.Forward.ForwardDueAsync(None);

        h.Core.Time.Advance(h.Core.Options.Delivery.Retention + TimeSpan.FromMinutes(1));
        var report = await h.Expire.SweepAsync(None);

        Assert.Equal(1, report.Expired);
        Assert.Null(await h.Core.Spool.GetAsync("example.test", id, None));
        var dsn = Assert.Single(await h.AllRecordsAsync());
        Assert.Equal(MessageKind.Dsn, dsn.Kind);
        Assert.Equal("sender.test", dsn.Domain);
        Assert.Contains("4.4.7", System.Text.Encoding.ASCII.GetString(((InMemoryBodyStore)h.Core.Bodies).Get(dsn.QueueId)));

        h.Core.Transport.Reachable = true;
        await h.Forward.ForwardDueAsync(None);
        var sent = h.Core.Transport.Attempts.Last();
        Assert.Equal(MessageKind.Dsn, sent.Request.Kind);
        Assert.Equal(string.Empty, sent.Request.Sender);
        Assert.Equal("alice@sender.test", Assert.Single(sent.Recipients));
        Assert.Empty(await h.AllRecordsAsync());
    }

    [Fact]
    public async Task Expire_LostWakeUp_IsRescheduled()
    {
        using var h = new FunctionsHarness();
        await h.AcceptAsync();
        foreach (var lost in await h.Core.WakeUps.ReceiveDueAsync(10, TimeSpan.Zero, None))
        {
            await h.Core.WakeUps.CompleteAsync(lost, None);
        }

        h.Core.Time.Advance(TimeSpan.FromMinutes(3));
        await h.Expire.Run(new TimerInfo(), None);
        await h.Forward.ForwardDueAsync(None);

        Assert.Single(h.Core.Transport.Attempts);
        Assert.Empty(await h.AllRecordsAsync());
    }

    [Fact]
    public async Task Expire_RefreshesSpoolDepthAndOldestAgeGauges()
    {
        using var h = new FunctionsHarness();
        using var depth = new MetricCollector<double>(h.MeterFactory, Core.Telemetry.Name, SpoolGauges.SpoolDepthName);
        using var age = new MetricCollector<double>(h.MeterFactory, Core.Telemetry.Name, SpoolGauges.OldestAgeName);
        h.Core.Transport.Reachable = false;
        await h.AcceptAsync();
        await h.AcceptAsync();
        await h.Forward.ForwardDueAsync(None);
        h.Core.Time.Advance(TimeSpan.FromSeconds(90));

        await h.Expire.Run(new TimerInfo(), None);
        depth.RecordObservableInstruments();
        age.RecordObservableInstruments();

        var depths = depth.GetMeasurementSnapshot().ToDictionary(m => (string)m.Tags[SpoolGauges.DomainTag]!, m => m.Value);
        Assert.Equal(2, depths["example.test"]);
        Assert.Equal(0, depths["other.test"]);
        var ages = age.GetMeasurementSnapshot().ToDictionary(m => (string)m.Tags[SpoolGauges.DomainTag]!, m => m.Value);
        Assert.Equal(90, ages["example.test"]);
    }

    [Fact]
    public async Task Expire_ReadsTheSpoolOnce_AndGaugesMatchAFreshSummary()
    {
        var spool = new CountingSpoolStore(new InMemorySpoolStore());
        using var h = new FunctionsHarness(spool: spool);
        using var depth = new MetricCollector<double>(h.MeterFactory, Core.Telemetry.Name, SpoolGauges.SpoolDepthName);
        using var age = new MetricCollector<double>(h.MeterFactory, Core.Telemetry.Name, SpoolGauges.OldestAgeName);
        h.Core.Transport.Reachable = false;

        // A bounce (null sender, so no DSN of its own) that expires during the run, and two
        // messages that stay: the gauges must not count the one the sweep removes.
        var expiring = await h.AcceptAsync(recipient: "carol@other.test", sender: "");
        await h.Forward.ForwardDueAsync(None);
        h.Core.Time.Advance(h.Core.Options.Delivery.Retention - TimeSpan.FromMinutes(1));
        await h.AcceptAsync();
        await h.AcceptAsync();
        await h.Forward.ForwardDueAsync(None);
        h.Core.Time.Advance(TimeSpan.FromMinutes(2));

        spool.ListAllCalls = 0;
        await h.Expire.Run(new TimerInfo(), None);

        Assert.Equal(1, spool.ListAllCalls);
        Assert.Null(await h.Core.Spool.GetAsync("other.test", expiring, None));
        depth.RecordObservableInstruments();
        age.RecordObservableInstruments();
        var depths = depth.GetMeasurementSnapshot().ToDictionary(m => (string)m.Tags[SpoolGauges.DomainTag]!, m => m.Value);
        var ages = age.GetMeasurementSnapshot().ToDictionary(m => (string)m.Tags[SpoolGauges.DomainTag]!, m => m.Value);
        var summary = await h.Core.Inspector.SummarizeAsync(None);
        Assert.Equal(summary.ToDictionary(s => s.Domain, s => (double)s.Messages), depths);
        Assert.Equal(summary.ToDictionary(s => s.Domain, s => s.OldestAge?.TotalSeconds ?? 0), ages);
        Assert.Equal(2, depths["example.test"]);
        Assert.Equal(0, depths["other.test"]);
        Assert.Equal(120, ages["example.test"]);
    }

    [Fact]
    public async Task Gauges_NotRefreshedForLong_StopReporting()
    {
        using var h = new FunctionsHarness();
        using var depth = new MetricCollector<double>(h.MeterFactory, Core.Telemetry.Name, SpoolGauges.SpoolDepthName);
        await h.Expire.Run(new TimerInfo(), None);

        h.Core.Time.Advance(h.Gauges.StaleAfter + TimeSpan.FromSeconds(1));
        depth.RecordObservableInstruments();

        Assert.Empty(depth.GetMeasurementSnapshot());
    }

    private sealed class CountingSpoolStore(ISpoolStore inner) : DelegatingSpoolStore(inner)
    {
        public int ListAllCalls { get; set; }

        public override IAsyncEnumerable<SpoolRecord> ListAllAsync(CancellationToken cancellationToken)
        {
            ListAllCalls++;
            return base.ListAllAsync(cancellationToken);
        }
    }
}
