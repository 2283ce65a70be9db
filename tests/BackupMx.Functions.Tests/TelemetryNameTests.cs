using System.Text.Json;
using System.Text.Json.Nodes;

namespace BackupMx.Functions.Tests;

/// <summary>
/// The alert rules and the workbook of infra/monitoring, as compiled into main.bicep's template,
/// name only metrics, tags, log messages, log properties, functions, roles and tables that the
/// code emits (<see cref="EmittedTelemetry"/>), and the metric alerts only platform metrics that
/// Azure Monitor documents for their resource types.
/// </summary>
public sealed class TelemetryNameTests
{
    /// <summary>
    /// Platform metrics and their dimensions, from Microsoft's "Supported metrics" reference pages
    /// for Microsoft.App/containerApps and Microsoft.ServiceBus/namespaces.
    /// </summary>
    private static readonly Dictionary<string, (string[] Metrics, string[] Dimensions)> PlatformMetrics = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Microsoft.App/containerApps"] = (["Replicas", "RestartCount"], ["revisionName", "deploymentName", "podName"]),
        ["Microsoft.ServiceBus/namespaces"] = (["DeadletteredMessages", "ActiveMessages"], ["EntityName"]),
    };

    [Fact]
    public void EmittedTelemetry_IsReadFromTheCode()
    {
        // Guards the collection itself: an empty list would let every query pass.
        Assert.Contains("backupmx.spool.depth", EmittedTelemetry.Metrics);
        Assert.Contains("backupmx.tls.certificate.expiry", EmittedTelemetry.Metrics);
        Assert.Contains("backupmx.delivery.latency", EmittedTelemetry.Metrics);
        Assert.Contains("domain", EmittedTelemetry.Tags);
        Assert.Contains("QueueId", EmittedTelemetry.LogProperties);
        Assert.Contains(EmittedTelemetry.MessageTemplates, t => t.StartsWith("Expired {QueueId}", StringComparison.Ordinal));
        Assert.Subset(EmittedTelemetry.Functions.ToHashSet(), new HashSet<string> { "Expire", "Forward", "ProbePrimaries", "QueueFlush" });
        Assert.Equal(["backupmx-functions", "backupmx-receiver"], EmittedTelemetry.Roles.Order());
    }

    [Fact]
    public void AlertRulesAndWorkbook_NameOnlyWhatTheCodeEmits()
    {
        var queries = Queries().ToList();

        // Five log rules and the workbook's queries (its domain picker and eight panels).
        Assert.True(queries.Count(q => q.Source == "alerts") >= 5, $"found {queries.Count(q => q.Source == "alerts")} alert queries");
        Assert.True(queries.Count(q => q.Source == "workbook") >= 8, $"found {queries.Count(q => q.Source == "workbook")} workbook queries");

        var problems = queries
            .SelectMany(q => TelemetryQueryChecker.UnknownNames(q.Text).Select(p => $"{q.Source}: {p}"))
            .ToList();
        Assert.True(problems.Count == 0, "Names the code does not emit:\n" + string.Join("\n", problems));
    }

    [Fact]
    public void MetricAlerts_UseDocumentedPlatformMetrics()
    {
        var rules = CompiledMainTemplate.ModuleTemplate("alerts")["variables"]!["metricRules"]!.AsArray();
        Assert.NotEmpty(rules);
        foreach (var rule in rules.Select(r => r!.AsObject()))
        {
            var ns = rule["metricNamespace"]!.GetValue<string>();
            Assert.True(PlatformMetrics.TryGetValue(ns, out var known), $"unknown metric namespace {ns}");
            Assert.Contains(rule["metricName"]!.GetValue<string>(), known.Metrics);
            foreach (var dimension in rule["dimensions"]!.AsArray())
            {
                Assert.Contains(dimension!["name"]!.GetValue<string>(), known.Dimensions);
            }
        }
    }

    [Theory]
    [InlineData("\"backupmx.spool.depth\"", "\"backupmx.spool.dept\"", "metric 'backupmx.spool.dept'")]
    [InlineData("customDimensions.domain", "customDimensions.domian", "customDimensions key 'domian'")]
    [InlineData("prop(customDimensions, \"QueueId\")", "prop(customDimensions, \"QueueID\")", "customDimensions key 'QueueID'")]
    [InlineData("message startswith \"Expired \"", "message startswith \"Expird \"", "log message starting 'Expird '")]
    [InlineData("\ntraces\n", "\ntrace\n", "table 'trace'")]
    [InlineData("cloud_RoleName != \"backupmx-receiver\"", "cloud_RoleName != \"backupmx-reciever\"", "cloud_RoleName 'backupmx-reciever'")]
    [InlineData("\"ProbePrimaries\"", "\"ProbePrimary\"", "function 'ProbePrimary'")]
    public void UnknownNames_MisspeltNameInADeployedQuery_IsReported(string name, string misspelt, string expected)
    {
        var query = Queries().Select(q => q.Text).First(q => q.Contains(name, StringComparison.Ordinal));
        Assert.Empty(TelemetryQueryChecker.UnknownNames(query));

        var problems = TelemetryQueryChecker.UnknownNames(query.Replace(name, misspelt, StringComparison.Ordinal));

        Assert.Contains(expected, problems);
    }

    /// <summary>Every "query" string of the alerts and workbook modules, including those inside the workbook's serialized JSON.</summary>
    private static IEnumerable<(string Source, string Text)> Queries()
    {
        foreach (var module in new[] { "alerts", "workbook" })
        {
            foreach (var query in QueriesIn(CompiledMainTemplate.ModuleTemplate(module)))
            {
                yield return (module, query);
            }
        }
    }

    private static IEnumerable<string> QueriesIn(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, value) in obj)
                {
                    if (key == "query" && value is JsonValue v && v.TryGetValue<string>(out var query))
                    {
                        yield return query;
                    }
                    else
                    {
                        foreach (var inner in QueriesIn(value))
                        {
                            yield return inner;
                        }
                    }
                }

                break;
            case JsonArray array:
                foreach (var inner in array.SelectMany(QueriesIn))
                {
                    yield return inner;
                }

                break;
            case JsonValue value when value.TryGetValue<string>(out var text) && text.StartsWith('{') && Parse(text) is { } serialized:
                // The workbook's serializedData: JSON inside a string.
                foreach (var inner in QueriesIn(serialized))
                {
                    yield return inner;
                }

                break;
        }
    }

    private static JsonNode? Parse(string text)
    {
        try
        {
            return JsonNode.Parse(text);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
