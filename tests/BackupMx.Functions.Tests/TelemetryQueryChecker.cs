using System.Text.RegularExpressions;

namespace BackupMx.Functions.Tests;

/// <summary>
/// Finds the names a KQL query relies on (tables, metric names, customDimensions keys, message
/// prefixes, function and role names) and reports each one that <see cref="EmittedTelemetry"/>
/// does not hold. A misspelt name in an alert rule or a workbook matches nothing in Azure and
/// fails silently there; here it fails the build.
/// </summary>
internal static partial class TelemetryQueryChecker
{
    /// <summary>One line per unknown name, naming what kind of name it is.</summary>
    public static IReadOnlyList<string> UnknownNames(string query)
    {
        var problems = new List<string>();
        var text = WorkbookParameter().Replace(query, "x");

        var letNames = LetName().Matches(text).Select(m => m.Groups["name"].Value).ToHashSet(StringComparer.Ordinal);
        foreach (Match source in PipelineSource().Matches(text))
        {
            var table = source.Groups["table"].Value;
            if (!letNames.Contains(table) && !EmittedTelemetry.Tables.Contains(table))
            {
                problems.Add($"table '{table}'");
            }
        }

        foreach (Match metric in MetricName().Matches(text))
        {
            if (!EmittedTelemetry.Metrics.Contains(metric.Groups["name"].Value))
            {
                problems.Add($"metric '{metric.Groups["name"].Value}'");
            }
        }

        foreach (var key in DimensionKey().Matches(text).Select(m => m.Groups["key"].Value)
                     .Concat(PropCall().Matches(text).Select(m => m.Groups["key"].Value)))
        {
            var bare = key.StartsWith("prop__", StringComparison.Ordinal) ? key["prop__".Length..] : key;
            if (!EmittedTelemetry.Tags.Contains(bare) && !EmittedTelemetry.LogProperties.Contains(bare))
            {
                problems.Add($"customDimensions key '{key}'");
            }
        }

        foreach (var prefix in MessagePrefix().Matches(text).Select(m => m.Groups["text"].Value))
        {
            if (!EmittedTelemetry.MessageTemplates.Any(t => t.StartsWith(prefix, StringComparison.Ordinal)))
            {
                problems.Add($"log message starting '{prefix}'");
            }
        }

        foreach (var role in RoleName().Matches(text).SelectMany(m => Literals(m.Groups["values"].Value)))
        {
            if (!EmittedTelemetry.Roles.Contains(role))
            {
                problems.Add($"cloud_RoleName '{role}'");
            }
        }

        // requests.name is the function's name; customMetrics.name is a metric name, checked above.
        foreach (var name in RequestName().Matches(text).SelectMany(m => Literals(m.Groups["values"].Value)))
        {
            if (!name.StartsWith("backupmx.", StringComparison.Ordinal) && !EmittedTelemetry.Functions.Contains(name))
            {
                problems.Add($"function '{name}'");
            }
        }

        return problems;
    }

    private static IEnumerable<string> Literals(string list) => StringLiteral().Matches(list).Select(m => m.Groups["s"].Value);

    // Workbook parameters such as {TimeRange} and {Domain} are filled in before the query runs.
    [GeneratedRegex(@"\{(TimeRange|Domain)(:[a-z]+)?\}")]
    private static partial Regex WorkbookParameter();

    [GeneratedRegex(@"\blet\s+(?<name>[A-Za-z_]\w*)\s*=")]
    private static partial Regex LetName();

    // A tabular source: an identifier that starts a line, a let body or a union leg and is piped on.
    [GeneratedRegex(@"(?:^|\blet\s+\w+\s*=|\(|\bunion\b)\s*(?<table>[A-Za-z_]\w*)\s*\|", RegexOptions.Multiline)]
    private static partial Regex PipelineSource();

    [GeneratedRegex(@"""(?<name>backupmx\.[a-z0-9_.]+)""")]
    private static partial Regex MetricName();

    [GeneratedRegex(@"customDimensions(?:\.(?<key>[A-Za-z_]\w*)|\[\s*[""'](?<key>[^""']+)[""']\s*\])")]
    private static partial Regex DimensionKey();

    [GeneratedRegex(@"\bprop\(\s*customDimensions\s*,\s*""(?<key>[^""]+)""\s*\)")]
    private static partial Regex PropCall();

    [GeneratedRegex(@"\bmessage\s+(?:startswith|startswith_cs|==)\s+""(?<text>[^""]*)""")]
    private static partial Regex MessagePrefix();

    [GeneratedRegex(@"\bcloud_RoleName\s*(?:==|!=|=~|!~)\s*(?<values>""[^""]*"")|\bcloud_RoleName\s+!?in\s*\((?<values>[^)]*)\)")]
    private static partial Regex RoleName();

    [GeneratedRegex(@"(?<![\w.])name\s*(?:==|!=)\s*(?<values>""[^""]*"")|(?<![\w.])name\s+!?in\s*\((?<values>[^)]*)\)")]
    private static partial Regex RequestName();

    [GeneratedRegex(@"""(?<s>[^""]*)""")]
    private static partial Regex StringLiteral();
}
