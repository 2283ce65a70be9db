namespace BackupMx.Functions.Tests;

/// <summary>
/// The compiled template deploys the alert rules (infra/monitoring/alerts.bicep), their action
/// group and the operations workbook (infra/monitoring/workbook.bicep).
/// </summary>
public sealed class InfraMonitoringTests
{
    [Fact]
    public void CompiledTemplate_HoldsEveryAlertRule()
    {
        var alerts = CompiledMainTemplate.ModuleTemplate("alerts");
        var names = alerts["variables"]!["logRules"]!.AsArray().Concat(alerts["variables"]!["metricRules"]!.AsArray())
            .Select(r => r!["name"]!.GetValue<string>())
            .Order()
            .ToList();

        Assert.Equal(
            ["bounced-expired", "dead-lettered-wakeups", "failed-runs", "oldest-spooled", "primary-down", "receiver-down", "receiver-restarts", "tls-expiry"],
            names);
        Assert.Equal("Microsoft.Insights/scheduledQueryRules", CompiledMainTemplate.ModuleResource("alerts", "logAlerts")["type"]!.GetValue<string>());
        Assert.Equal("Microsoft.Insights/metricAlerts", CompiledMainTemplate.ModuleResource("alerts", "metricAlerts")["type"]!.GetValue<string>());
    }

    [Fact]
    public void ActionGroup_MailsAlertEmail_AndExistsOnlyWhenOneIsGiven()
    {
        var group = CompiledMainTemplate.ModuleResource("alerts", "actionGroup");

        Assert.Equal("Microsoft.Insights/actionGroups", group["type"]!.GetValue<string>());
        Assert.Equal("[variables('notify')]", group["condition"]!.ToString());
        Assert.Equal("[not(empty(parameters('alertEmail')))]", CompiledMainTemplate.ModuleTemplate("alerts")["variables"]!["notify"]!.ToString());
        Assert.Contains("alertEmail", group["properties"]!["emailReceivers"]![0]!["emailAddress"]!.ToString(), StringComparison.Ordinal);
        Assert.Equal("[parameters('alertEmail')]", CompiledMainTemplate.ModuleParameter("alerts", "alertEmail"));

        var parameters = File.ReadAllText(Path.Combine(AzureYamlTests.RepoRoot, "infra", "main.parameters.json"));
        Assert.Contains("${BACKUPMX_ALERT_EMAIL=}", parameters, StringComparison.Ordinal);
    }

    [Fact]
    public void Workbook_IsDeployedAgainstApplicationInsights()
    {
        var workbook = CompiledMainTemplate.ModuleResource("workbook", "workbook");

        Assert.Equal("Microsoft.Insights/workbooks", workbook["type"]!.GetValue<string>());
        Assert.Equal("shared", workbook["kind"]!.GetValue<string>());
        // loadTextContent puts the file into a variable of the module's template.
        var reference = workbook["properties"]!["serializedData"]!.GetValue<string>();
        var variable = reference["[variables('".Length..^"')]".Length];
        var serialized = System.Text.Json.Nodes.JsonNode.Parse(CompiledMainTemplate.ModuleTemplate("workbook")["variables"]![variable]!.GetValue<string>())!;
        Assert.Equal("Notebook/1.0", serialized["version"]!.GetValue<string>());
        Assert.True(serialized["items"]!.AsArray().Count(i => i!["type"]!.GetValue<int>() == 3) >= 8);
        Assert.Contains("applicationInsightsId", CompiledMainTemplate.ModuleParameter("workbook", "applicationInsightsId"), StringComparison.Ordinal);
    }
}
