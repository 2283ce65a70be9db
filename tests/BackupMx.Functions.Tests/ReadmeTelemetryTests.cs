using System.Diagnostics.Metrics;
using System.Reflection;
using System.Text.RegularExpressions;
using BackupMx.Telemetry;

namespace BackupMx.Functions.Tests;

/// <summary>
/// The README's metric table and KQL queries are only useful with the names the code emits;
/// a renamed instrument or tag must fail here rather than leave a query that finds nothing.
/// </summary>
public sealed partial class ReadmeTelemetryTests
{
    private static readonly string Readme = File.ReadAllText(Path.Combine(AzureYamlTests.RepoRoot, "README.md"));

    [Fact]
    public void Readme_MetricTable_NamesEveryInstrument()
    {
        var names = typeof(Core.Telemetry)
            .GetFields(BindingFlags.Public | BindingFlags.Static)
            .Select(f => f.GetValue(null))
            .OfType<Instrument>()
            .Select(i => i.Name)
            .Concat([SpoolGauges.SpoolDepthName, SpoolGauges.OldestAgeName, SpoolGauges.PrimaryReachableName])
            .ToList();

        Assert.Equal(9, names.Count);
        Assert.All(names, name => Assert.Contains($"| `{name}` |", Readme, StringComparison.Ordinal));
    }

    [Fact]
    public void Readme_QueriesUseTheTagNamesTheCodeEmits()
    {
        Assert.Contains($"customDimensions.{Core.Telemetry.DomainMetricTag}", Readme, StringComparison.Ordinal);
        Assert.Contains($"`{Core.Telemetry.QueueIdTag}`", Readme, StringComparison.Ordinal);
        Assert.Contains($"`{Core.Telemetry.DomainTag}`", Readme, StringComparison.Ordinal);
    }

    [Fact]
    public void Readme_LogLines_AreTheTemplatesTheCodeLogs()
    {
        var templates = Directory.EnumerateFiles(Path.Combine(AzureYamlTests.RepoRoot, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .SelectMany(f => LogTemplate().Matches(File.ReadAllText(f)).Select(m => m.Groups["text"].Value))
            .ToList();
        var quoted = ReadmeLogLine().Matches(Readme).Select(m => m.Groups["text"].Value.TrimEnd('.', ' ')).Distinct().ToList();

        Assert.True(quoted.Count >= 10, $"only {quoted.Count} log lines quoted in the README");
        Assert.All(quoted, line => Assert.Contains(templates, t => t.StartsWith(line, StringComparison.Ordinal)));

        // The properties the KQL queries read are placeholders of those templates.
        foreach (var property in new[] { "QueueId", "Domain", "Sender", "Recipient", "RemoteHost", "Reply" })
        {
            Assert.Contains(quoted, line => line.Contains("{" + property + "}", StringComparison.Ordinal));
            Assert.True(
                Readme.Contains($"customDimensions.{property}", StringComparison.Ordinal) || Readme.Contains($"customDimensions, \"{property}\"", StringComparison.Ordinal),
                $"no KQL query reads {property}");
        }
    }

    [GeneratedRegex(@"Message = ""(?<text>[^""]*)""")]
    private static partial Regex LogTemplate();

    [GeneratedRegex(@"`(?<text>(?:Accepted|Attempt|Delivered|Deferred|Bounced|Expired|Dropped|DSN|Relayed DSN|Finished|Primary of|Refused RCPT) \{[^`]*)`")]
    private static partial Regex ReadmeLogLine();
}
