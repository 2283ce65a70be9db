using System.Diagnostics.Metrics;
using System.Reflection;
using System.Text.RegularExpressions;
using BackupMx.Telemetry;

namespace BackupMx.Functions.Tests;

/// <summary>
/// The metric table, log lines and KQL queries of docs/operations.md are only useful with the
/// names the code emits; a renamed instrument or tag must fail here rather than leave a query
/// that finds nothing.
/// </summary>
public sealed partial class OperationsDocTelemetryTests
{
    private static readonly string Doc = File.ReadAllText(Path.Combine(AzureYamlTests.RepoRoot, "docs", "operations.md"));

    [Fact]
    public void OperationsDoc_MetricTable_NamesEveryInstrument()
    {
        var names = typeof(Core.Telemetry)
            .GetFields(BindingFlags.Public | BindingFlags.Static)
            .Select(f => f.GetValue(null))
            .OfType<Instrument>()
            .Select(i => i.Name)
            .Concat([SpoolGauges.SpoolDepthName, SpoolGauges.OldestAgeName, SpoolGauges.PrimaryReachableName])
            .ToList();

        Assert.Equal(9, names.Count);
        Assert.All(names, name => Assert.Contains($"| `{name}` |", Doc, StringComparison.Ordinal));
    }

    [Fact]
    public void OperationsDoc_MetricTable_NamesNoMetricTheCodeDoesNotEmit()
    {
        // Every instrument name is a string constant somewhere under src/ (the TLS expiry gauge
        // lives in the receiver, which these tests cannot see into).
        var source = string.Join('\n', SourceFiles().Select(File.ReadAllText));
        var documented = DocMetricRow().Matches(Doc).Select(m => m.Groups["name"].Value).ToList();

        Assert.True(documented.Count >= 10, $"only {documented.Count} metric rows in docs/operations.md");
        Assert.All(documented, name => Assert.Contains($"\"{name}\"", source, StringComparison.Ordinal));
    }

    [Fact]
    public void OperationsDoc_QueriesUseTheTagNamesTheCodeEmits()
    {
        Assert.Contains($"customDimensions.{Core.Telemetry.DomainMetricTag}", Doc, StringComparison.Ordinal);
        Assert.Contains($"`{Core.Telemetry.QueueIdTag}`", Doc, StringComparison.Ordinal);
        Assert.Contains($"`{Core.Telemetry.DomainTag}`", Doc, StringComparison.Ordinal);
    }

    [Fact]
    public void OperationsDoc_LogLines_AreTheTemplatesTheCodeLogs()
    {
        var templates = SourceFiles()
            .SelectMany(f => LogTemplate().Matches(File.ReadAllText(f)).Select(m => m.Groups["text"].Value))
            .ToList();
        var quoted = DocLogLine().Matches(Doc).Select(m => m.Groups["text"].Value.TrimEnd('.', ' ')).Distinct().ToList();

        Assert.True(quoted.Count >= 10, $"only {quoted.Count} log lines quoted in docs/operations.md");
        Assert.All(quoted, line => Assert.Contains(templates, t => t.StartsWith(line, StringComparison.Ordinal)));

        // The properties the KQL queries read are placeholders of those templates.
        foreach (var property in new[] { "QueueId", "Domain", "Sender", "Recipient", "RemoteHost", "Reply" })
        {
            Assert.Contains(quoted, line => line.Contains("{" + property + "}", StringComparison.Ordinal));
            Assert.True(
                Doc.Contains($"customDimensions.{property}", StringComparison.Ordinal) || Doc.Contains($"customDimensions, \"{property}\"", StringComparison.Ordinal),
                $"no KQL query reads {property}");
        }
    }

    private static IEnumerable<string> SourceFiles() =>
        Directory.EnumerateFiles(Path.Combine(AzureYamlTests.RepoRoot, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal));

    [GeneratedRegex(@"^\| `(?<name>backupmx\.[a-z_.]+)` \|", RegexOptions.Multiline)]
    private static partial Regex DocMetricRow();

    [GeneratedRegex(@"Message = ""(?<text>[^""]*)""")]
    private static partial Regex LogTemplate();

    [GeneratedRegex(@"`(?<text>(?:Accepted|Attempt|Delivered|Deferred|Bounced|Expired|Dropped|DSN|Relayed DSN|Finished|Primary of|Refused RCPT) \{[^`]*)`")]
    private static partial Regex DocLogLine();
}
