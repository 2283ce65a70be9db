using BackupMx.Core.Configuration;
using BackupMx.Core.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupMx.Core.Tests;

/// <summary>The reloadable options: a new configuration is used only once it is valid; removed domains stay routable.</summary>
public sealed class ReloadableOptionsTests : IDisposable
{
    private readonly SettingsProvider _settings = new();
    private readonly IConfigurationRoot _configuration;
    private readonly ServiceProvider _provider;
    private readonly ListLoggerProvider _logs = new();

    public ReloadableOptionsTests()
    {
        Write("""{ "Name": "example.test", "Primary": "primary.example.test:2525", "OutboundTls": "Required" }""");
        _configuration = new ConfigurationBuilder().Add(_settings).Build();
        var services = new ServiceCollection().AddLogging(b => b.AddProvider(_logs));
        _provider = services.AddBackupMxCore(_configuration).AddBackupMxConfigurationReload(_configuration).BuildServiceProvider();
    }

    private BackupMxOptions Current => _provider.GetRequiredService<IOptions<BackupMxOptions>>().Value;

    public void Dispose() => _provider.Dispose();

    [Fact]
    public void Reload_DomainAdded_IsConfiguredInTheSameOptionsInstanceConsumersHold()
    {
        var held = _provider.GetRequiredService<IOptions<BackupMxOptions>>();
        Assert.Null(held.Value.FindDomain("added.test"));

        Write("""{ "Name": "example.test" }, { "Name": "added.test" }""");
        _configuration.Reload();

        Assert.NotNull(held.Value.FindDomain("added.test"));
        Assert.Contains(_logs.Lines, l => l.Contains("Configuration reloaded: 2 domain(s)", StringComparison.Ordinal));
    }

    [Fact]
    public void Reload_DomainRemoved_NotConfiguredButItsSettingsStayForDelivery()
    {
        _ = Current;
        Write("""{ "Name": "other.test" }""");
        _configuration.Reload();
        Write("""{ "Name": "third.test" }""");
        _configuration.Reload();

        Assert.Null(Current.FindDomain("example.test"));
        var kept = Current.FindDomainForDelivery("EXAMPLE.test");
        Assert.Equal(("primary.example.test:2525", OutboundTlsMode.Required), (kept?.Primary, kept?.OutboundTls));
        Assert.NotNull(Current.FindDomainForDelivery("other.test"));
        Assert.Null(Current.FindDomainForDelivery("never.test"));
    }

    [Fact]
    public void Reload_DomainReadded_UsesItsNewSettings()
    {
        _ = Current;
        Write("""{ "Name": "other.test" }""");
        _configuration.Reload();
        Write("""{ "Name": "example.test", "Primary": "new.example.test" }""");
        _configuration.Reload();

        Assert.Equal("new.example.test", Current.FindDomainForDelivery("example.test")?.Primary);
    }

    [Theory]
    [InlineData("""{ "Name": "example.test", "OutboundTls": "Requird" }""", "BackupMx:Domains:0:OutboundTls: 'Requird' is not a valid value")]
    [InlineData("""{ "Name": "example.test", "Recipients": [ "bob@elsewhere.test" ] }""", "BackupMx:Domains:0:Recipients:0 'bob@elsewhere.test' is not an address at example.test")]
    public void Reload_InvalidValue_KeepsThePreviousConfigurationAndLogsTheKey(string domains, string expected)
    {
        var before = Current;

        Write(domains);
        var applied = _provider.GetRequiredService<ConfigurationReload>().Reload();

        Assert.False(applied);
        Assert.Same(before, Current);
        Assert.Equal(OutboundTlsMode.Required, Current.FindDomain("example.test")?.OutboundTls);
        Assert.Contains(_logs.Lines, l => l.Contains("Configuration reload refused", StringComparison.Ordinal) && l.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Reload_AnotherPartInvalid_NeitherIsApplied()
    {
        var before = Current;
        var other = OtherPart();
        Assert.Equal(5, other.Value.Limit);

        Write("""{ "Name": "example.test" }, { "Name": "added.test" }""", limit: 0);
        var applied = _provider.GetRequiredService<ConfigurationReload>().Reload();

        Assert.False(applied);
        Assert.Same(before, Current);
        Assert.Equal(5, other.Value.Limit);
        Assert.Contains(_logs.Lines, l => l.Contains("Configuration reload refused", StringComparison.Ordinal) && l.Contains("BackupMx:Other:Limit", StringComparison.Ordinal));
        Assert.DoesNotContain(_logs.Lines, l => l.Contains("Configuration reloaded", StringComparison.Ordinal));
    }

    [Fact]
    public void Reload_AllPartsValid_AppliesThemTogether()
    {
        var other = OtherPart();

        Write("""{ "Name": "example.test" }, { "Name": "added.test" }""", limit: 7);
        _configuration.Reload();

        Assert.NotNull(Current.FindDomain("added.test"));
        Assert.Equal(7, other.Value.Limit);
    }

    // A second part of the configuration, reloaded with the domains.
    private ReloadableOptions<OtherOptions> OtherPart()
    {
        var factory = new OptionsFactory<OtherOptions>(
            [new ConfigureNamedOptions<OtherOptions>(Options.DefaultName, o => _configuration.GetSection("BackupMx:Other").Bind(o))],
            [],
            [new ValidateOptions<OtherOptions>(Options.DefaultName, o => o.Limit > 0, "BackupMx:Other:Limit must be positive.")]);
        return new ReloadableOptions<OtherOptions>(factory, _provider.GetRequiredService<ConfigurationReload>());
    }

    // What a rewritten appsettings.json gives: the new keys replace all the old ones.
    private void Write(string domains, int limit = 5) => _settings.Replace($$"""
        { "BackupMx": { "HostName": "backup.test", "Domains": [ {{domains}} ], "Other": { "Limit": {{limit}} } } }
        """);

    private sealed class OtherOptions
    {
        public int Limit { get; set; }
    }

    private sealed class SettingsProvider : ConfigurationProvider, IConfigurationSource
    {
        public IConfigurationProvider Build(IConfigurationBuilder builder) => this;

        public void Replace(string json)
        {
            var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            Flatten(System.Text.Json.JsonDocument.Parse(json).RootElement, null, data);
            Data = data;
        }

        private static void Flatten(System.Text.Json.JsonElement element, string? path, Dictionary<string, string?> data)
        {
            switch (element.ValueKind)
            {
                case System.Text.Json.JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        Flatten(property.Value, path is null ? property.Name : path + ":" + property.Name, data);
                    }

                    break;
                case System.Text.Json.JsonValueKind.Array:
                    var i = 0;
                    foreach (var item in element.EnumerateArray())
                    {
                        Flatten(item, path + ":" + i++, data);
                    }

                    break;
                default:
                    data[path!] = element.ToString();
                    break;
            }
        }
    }

    private sealed class ListLoggerProvider : ILoggerProvider
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _lines = new();

        public IReadOnlyCollection<string> Lines => _lines;

        public ILogger CreateLogger(string categoryName) => new ListLogger(_lines);

        public void Dispose()
        {
        }

        private sealed class ListLogger(System.Collections.Concurrent.ConcurrentQueue<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                lines.Enqueue(formatter(state, exception));
        }
    }
}
