using BackupMx.Core.Configuration;
using BackupMx.Core.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Tests;

/// <summary>Values the configuration binder cannot convert stop start-up with the key, the value and what was expected.</summary>
public sealed class CheckedBindingTests
{
    private static readonly Dictionary<string, string?> Base = new()
    {
        ["BackupMx:HostName"] = "backup.test",
        ["BackupMx:Smtp:Endpoints:0"] = "127.0.0.1:2525",
        ["BackupMx:Domains:0:Name"] = "example.test",
    };

    private static BackupMxOptions Bind(params (string Key, string Value)[] settings)
    {
        var values = new Dictionary<string, string?>(Base);
        foreach (var (key, value) in settings)
        {
            values[key] = value;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        using var provider = new ServiceCollection().AddBackupMxCore(configuration).BuildServiceProvider();
        return provider.GetRequiredService<IOptions<BackupMxOptions>>().Value;
    }

    private static IReadOnlyList<string> Failures(params (string Key, string Value)[] settings) =>
        [.. Assert.Throws<OptionsValidationException>(() => Bind(settings)).Failures];

    [Fact]
    public void Bind_BadEnumInSecondDomain_NamesKeyValueAndTheRealNames()
    {
        var failures = Failures(
            ("BackupMx:Domains:1:Name", "other.test"),
            ("BackupMx:Domains:1:Primary", "127.0.0.1:2626"),
            ("BackupMx:Domains:1:OutboundTls", "Requried"));

        Assert.Equal(["BackupMx:Domains:1:OutboundTls: 'Requried' is not a valid value (Opportunistic, Required, Disabled)."], failures);
    }

    [Fact]
    public void Bind_BadBoolInOnlyDomain_NamesThatKeyNotAMissingDomain()
    {
        var failures = Failures(("BackupMx:Domains:0:VerifyRecipients", "maybe"));

        Assert.Equal(["BackupMx:Domains:0:VerifyRecipients: 'maybe' is not a valid value (true, false)."], failures);
    }

    [Fact]
    public void Bind_EnumNumberWithoutAName_IsRefused()
    {
        var failures = Failures(("BackupMx:Domains:0:OutboundTls", "7"));

        Assert.Equal(["BackupMx:Domains:0:OutboundTls: '7' is not a valid value (Opportunistic, Required, Disabled)."], failures);
    }

    [Fact]
    public void Bind_BadValueInNestedList_NamesTheElement()
    {
        var failures = Failures(("BackupMx:Delivery:RetryIntervals:0", "00:05:00"), ("BackupMx:Delivery:RetryIntervals:1", "ten minutes"));

        Assert.Equal(["BackupMx:Delivery:RetryIntervals:1: 'ten minutes' is not a valid TimeSpan (for example 00:05:00, or 5.00:00:00 for five days)."], failures);
    }

    [Fact]
    public void Bind_BadScalarOutsideLists_AllReportedAsValidationFailures()
    {
        var failures = Failures(("BackupMx:Delivery:Retention", "abc"), ("BackupMx:Smtp:MaxRecipients", "lots"));

        Assert.Equal(
            [
                "BackupMx:Delivery:Retention: 'abc' is not a valid TimeSpan (for example 00:05:00, or 5.00:00:00 for five days).",
                "BackupMx:Smtp:MaxRecipients: 'lots' is not a valid whole number.",
            ],
            failures.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Bind_ProbeTimeout_BoundWhenGivenAndCheckedLikeTheOthers()
    {
        Assert.Null(Bind().Delivery.ProbeTimeout);
        Assert.Equal(TimeSpan.FromSeconds(3), Bind(("BackupMx:Delivery:ProbeTimeout", "00:00:03")).Delivery.EffectiveProbeTimeout);
        Assert.Equal(
            ["BackupMx:Delivery:ProbeTimeout: 'ten seconds' is not a valid TimeSpan (for example 00:05:00, or 5.00:00:00 for five days)."],
            Failures(("BackupMx:Delivery:ProbeTimeout", "ten seconds")));
        Assert.Equal(
            ["BackupMx:Delivery:ProbeTimeout 00:02:00 must not be longer than BackupMx:Delivery:Timeout (00:01:00)."],
            Failures(("BackupMx:Delivery:ProbeTimeout", "00:02:00")));
    }

    [Fact]
    public void Bind_ListGivenAsOneValue_IsRefused()
    {
        var values = new Dictionary<string, string?>(Base);
        values.Remove("BackupMx:Smtp:Endpoints:0");
        values["BackupMx:Smtp:Endpoints"] = "0.0.0.0:2525";
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();

        var failures = CheckedBinding.Check(configuration.GetSection("BackupMx"), typeof(BackupMxOptions));

        Assert.Equal(["BackupMx:Smtp:Endpoints: '0.0.0.0:2525' is a single value; this setting is a list, given item by item (BackupMx:Smtp:Endpoints:0, BackupMx:Smtp:Endpoints:1, …)."], failures);
    }

    [Fact]
    public void Bind_GoodValues_BindEveryDomainAsBefore()
    {
        var options = Bind(
            ("BackupMx:Domains:0:OutboundTls", "required"),
            ("BackupMx:Domains:0:ValidateCertificate", ""),
            ("BackupMx:Domains:1:Name", "other.test"),
            ("BackupMx:Domains:1:VerifyRecipients", "True"),
            ("BackupMx:Domains:1:Recipients:0", "a@other.test"),
            ("BackupMx:Delivery:Retention", "2.00:00:00"),
            ("BackupMx:Unknown:Key", "ignored"));

        Assert.Equal(["example.test", "other.test"], options.Domains.Select(d => d.Name));
        Assert.Equal(OutboundTlsMode.Required, options.Domains[0].OutboundTls);
        Assert.Null(options.Domains[0].ValidateCertificate);
        Assert.True(options.Domains[1].VerifyRecipients);
        Assert.Equal(["a@other.test"], options.Domains[1].Recipients);
        Assert.Equal(TimeSpan.FromDays(2), options.Delivery.Retention);
    }

    [Fact]
    public async Task RunAsync_BadValue_ExitsWithCode2AndOneLinePerProblem()
    {
        var values = new Dictionary<string, string?>(Base) { ["BackupMx:Domains:0:OutboundTls"] = "sometimes" };
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection().AddBackupMxCore(configuration);
        services.AddSingleton<Microsoft.Extensions.Hosting.IHostedService, ReadsOptions>();
        using var host = new Microsoft.Extensions.Hosting.HostBuilder()
            .ConfigureServices((_, s) =>
            {
                foreach (var d in services)
                {
                    s.Add(d);
                }
            })
            .Build();
        using var error = new StringWriter();

        var exitCode = await HostRunner.RunAsync(host, "BackupMx", error);

        Assert.Equal(2, exitCode);
        Assert.Equal(
            "BackupMx cannot start: the configuration is invalid.\n  BackupMx:Domains:0:OutboundTls: 'sometimes' is not a valid value (Opportunistic, Required, Disabled).\n",
            error.ToString().ReplaceLineEndings("\n"));
    }

    private sealed class ReadsOptions(IOptions<BackupMxOptions> options) : Microsoft.Extensions.Hosting.IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.FromResult(options.Value);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
