using System.Text.Json.Nodes;

namespace BackupMx.Functions.Tests;

/// <summary>
/// The receiver's recipient callouts go through the function app, on the compiled template: the
/// VerifyRecipient URL from the function app's host name, and its default host key read at
/// deployment into a secret of the container app that the key setting refers to.
/// </summary>
public sealed class InfraCalloutTests
{
    [Fact]
    public void Receiver_GetsTheVerifyRecipientUrlOfTheFunctionApp()
    {
        var app = InfraTlsCertificateTests.ReceiverApp("");
        var env = InfraTlsCertificateTests.Env(app["properties"]!["template"]!["containers"]![0]!);

        Assert.Equal("https://[reference('calloutFunctionApp').defaultHostName]/api/verify-recipient", env["BackupMx__Receiver__CalloutUrl"]);
    }

    [Fact]
    public void Receiver_KeySettingRefersToASecretHoldingTheFunctionAppsDefaultHostKey()
    {
        var app = InfraTlsCertificateTests.ReceiverApp("");
        var container = app["properties"]!["template"]!["containers"]![0]!;

        var setting = Assert.Single(container["env"]!.AsArray(), e => (string?)e!["name"] == "BackupMx__Receiver__CalloutKey")!;
        Assert.Null(setting["value"]);
        var secretName = (string?)setting["secretRef"];
        Assert.Equal("callout-function-key", secretName);

        var secret = Assert.Single(app["properties"]!["configuration"]!["secrets"]!.AsArray(), s => (string?)s!["name"] == secretName)!;
        // The evaluator shows deployment functions as text, quoting the nested one's quotes.
        Assert.Equal(
            "[listKeys('[resourceId(''Microsoft.Web/sites'', ''func-x'')]/host/default', '2025-03-01').functionKeys.default]",
            (string?)secret["value"]);
        Assert.Null(secret["keyVaultUrl"]);
    }

    [Fact]
    public void Receiver_TheFunctionAppItReadsIsTheNamedOne_AndOnlyReferenced()
    {
        var module = CompiledMainTemplate.Resource("receiver");
        var evaluator = ArmTemplateEvaluator.ForModule(module, new Dictionary<string, JsonNode?> { ["calloutFunctionAppName"] = "func-x" });

        var site = Assert.Single(evaluator.Resources(), r => (string?)r["type"] == "Microsoft.Web/sites");
        Assert.True((bool?)site["existing"]);
        Assert.Equal("func-x", (string?)evaluator.Evaluate(site["name"]));
    }

    [Fact]
    public void MainTemplate_NamesTheFunctionAppToTheReceiver_AndDeploysTheReceiverAfterIt()
    {
        var receiver = CompiledMainTemplate.Resource("receiver");

        Assert.Equal("[variables('names').functionApp]", (string?)receiver["properties"]!["parameters"]!["calloutFunctionAppName"]!["value"]);
        Assert.Contains("functions", receiver["dependsOn"]!.AsArray().Select(d => (string?)d));
        Assert.Equal("[variables('names').functionApp]", (string?)CompiledMainTemplate.Resource("functions")["properties"]!["parameters"]!["name"]!["value"]);
    }

    [Fact]
    public void CalloutUrl_MatchesTheRouteOfTheVerifyRecipientFunction()
    {
        var route = typeof(VerifyRecipientFunction).GetMethod(nameof(VerifyRecipientFunction.Run))!
            .GetParameters()[0]
            .GetCustomAttributes(typeof(Microsoft.Azure.Functions.Worker.HttpTriggerAttribute), false)
            .Cast<Microsoft.Azure.Functions.Worker.HttpTriggerAttribute>()
            .Single()
            .Route;
        var app = InfraTlsCertificateTests.ReceiverApp("");
        var env = InfraTlsCertificateTests.Env(app["properties"]!["template"]!["containers"]![0]!);

        Assert.EndsWith("/api/" + route, env["BackupMx__Receiver__CalloutUrl"], StringComparison.Ordinal);
    }
}
