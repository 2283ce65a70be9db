using System.Text.Json;
using BackupMx.Core.Configuration;

namespace BackupMx.Functions.Tests;

/// <summary>
/// The functions.metadata the worker SDK generates at build is what the Functions host indexes
/// in Azure; there is no host here, so the test reads the file itself.
/// </summary>
public sealed class FunctionsMetadataTests
{
    [Fact]
    public void Metadata_ListsEveryFunctionWithItsTrigger()
    {
        using var metadata = JsonDocument.Parse(File.ReadAllText(FindMetadata()));
        var functions = metadata.RootElement.EnumerateArray().ToDictionary(f => f.GetProperty("name").GetString()!);

        Assert.Equal(
            ["Dashboard", "Expire", "Forward", "MessageDelete", "MessageHold", "MessageRelease", "MessageShow", "ProbePrimaries", "QueueFlush", "QueueHold", "QueueList", "QueueRelease", "QueueSummary", "VerifyRecipient"],
            functions.Keys.Order(StringComparer.Ordinal));

        AssertTimer(functions[ForwardFunction.Name], "*/10 * * * * *");
        AssertTimer(functions[ProbePrimariesFunction.Name], "*/10 * * * * *");
        AssertTimer(functions[ExpireFunction.Name], "0 * * * * *");
        AssertHttp(functions[QueueAdminFunctions.SummaryName], "get", "queue");
        AssertHttp(functions[QueueAdminFunctions.ListName], "get", "queue/{domain}");
        AssertHttp(functions[QueueAdminFunctions.FlushName], "post", "queue/{domain}/flush");
        AssertHttp(functions[MessageAdminFunctions.ShowName], "get", "messages/{queueId}");
        AssertHttp(functions[MessageAdminFunctions.HoldName], "post", "messages/{queueId}/hold");
        AssertHttp(functions[MessageAdminFunctions.ReleaseName], "post", "messages/{queueId}/release");
        AssertHttp(functions[MessageAdminFunctions.DeleteName], "delete", "messages/{queueId}");
        AssertHttp(functions[MessageAdminFunctions.DomainHoldName], "post", "queue/{domain}/hold");
        AssertHttp(functions[MessageAdminFunctions.DomainReleaseName], "post", "queue/{domain}/release");
        AssertHttp(functions[VerifyRecipientFunction.Name], "post", "verify-recipient");
        AssertHttp(functions[DashboardFunction.Name], "get,post", "dashboard/{*path}");

        Assert.All(functions.Values, f =>
        {
            Assert.Equal("BackupMx.Functions.dll", f.GetProperty("scriptFile").GetString());
            Assert.Equal("dotnet-isolated", f.GetProperty("language").GetString());
        });
    }

    [Fact]
    public void Schedules_MatchTheConstantsInTheCode()
    {
        Assert.Equal("*/10 * * * * *", ForwardFunction.Schedule);
        Assert.Equal("*/10 * * * * *", ProbePrimariesFunction.Schedule);
        Assert.Equal("0 * * * * *", ExpireFunction.Schedule);
    }

    [Fact]
    public void HostJson_FunctionTimeoutIsTheOneTheOptionsAreValidatedAgainst()
    {
        var hostJson = Path.Combine(Path.GetDirectoryName(FindMetadata())!, "host.json");
        using var host = JsonDocument.Parse(File.ReadAllText(hostJson));

        Assert.Equal("2.0", host.RootElement.GetProperty("version").GetString());
        var timeout = TimeSpan.Parse(host.RootElement.GetProperty("functionTimeout").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(FunctionsOptions.FunctionTimeout, timeout);
        Assert.True(timeout >= new FunctionsOptions().ForwardTimeBudget + new BackupMxOptions().Delivery.AttemptTimeout + FunctionsOptions.SettleMargin, "a run must have room to finish the deliveries it started");
    }

    private static void AssertTimer(JsonElement function, string schedule)
    {
        var trigger = Assert.Single(function.GetProperty("bindings").EnumerateArray());
        Assert.Equal("timerTrigger", trigger.GetProperty("type").GetString());
        Assert.Equal("In", trigger.GetProperty("direction").GetString());
        Assert.Equal(schedule, trigger.GetProperty("schedule").GetString());
    }

    private static void AssertHttp(JsonElement function, string method, string route)
    {
        var bindings = function.GetProperty("bindings").EnumerateArray().ToList();
        var trigger = Assert.Single(bindings, b => b.GetProperty("type").GetString() == "httpTrigger");
        Assert.Equal("Function", trigger.GetProperty("authLevel").GetString());
        Assert.Equal(route, trigger.GetProperty("route").GetString());
        Assert.Equal(method.Split(','), trigger.GetProperty("methods").EnumerateArray().Select(m => m.GetString()));
        var output = Assert.Single(bindings, b => b.GetProperty("type").GetString() == "http");
        Assert.Equal("Out", output.GetProperty("direction").GetString());
    }

    /// <summary>The Functions project's own build output, in the configuration and framework this test was built with.</summary>
    private static string FindMetadata()
    {
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var framework = testOutput.Name;
        var configuration = testOutput.Parent!.Name;
        for (var dir = testOutput; dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "BackupMx.Functions.sln")))
            {
                var path = Path.Combine(dir.FullName, "src", "BackupMx.Functions", "bin", configuration, framework, "functions.metadata");
                Assert.True(File.Exists(path), $"functions.metadata not found at {path}; build src/BackupMx.Functions first");
                return path;
            }
        }

        throw new InvalidOperationException("Repository root (BackupMx.Functions.sln) not found above " + AppContext.BaseDirectory);
    }
}
