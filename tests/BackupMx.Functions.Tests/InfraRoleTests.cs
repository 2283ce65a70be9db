using System.Text.RegularExpressions;

namespace BackupMx.Functions.Tests;

/// <summary>
/// The role assignments of infra/modules/role-assignments.bicep, read from the template text
/// (no Bicep CLI here): the internet-facing receiver runs as its own identity with only what
/// accepting mail takes, each role on the narrowest scope.
/// </summary>
public sealed partial class InfraRoleTests
{
    private static readonly string RepoRoot = AzureYamlTests.RepoRoot;

    [Fact]
    public void ReceiverIdentity_HoldsOnlyTheRolesIntakeNeeds_OnNarrowScopes()
    {
        var receiver = Assignments().Where(a => a.Identity == "receiver").Select(a => (a.Role, a.Scope)).Order().ToList();

        Assert.Equal(
            [
                ("acrPull", "registry"),
                ("monitoringMetricsPublisher", "applicationInsights"),
                ("serviceBusDataSender", "queue"),
                ("storageBlobDataContributor", "bodies"),
                ("storageTableDataContributor", "spool"),
                ("storageTableDataContributor", "verifications"),
                ("storageTableDataReader", "primaries"),
            ],
            receiver);
    }

    [Fact]
    public void FunctionsIdentity_KeepsHostStorageAndQueueRoles_ButPullsNoImage()
    {
        var functions = Assignments().Where(a => a.Identity == "functions").Select(a => (a.Role, a.Scope)).Order().ToList();

        Assert.Equal(
            [
                ("monitoringMetricsPublisher", "applicationInsights"),
                ("serviceBusDataReceiver", "queue"),
                ("serviceBusDataSender", "queue"),
                ("storageBlobDataOwner", "storage"),
                ("storageTableDataContributor", "storage"),
            ],
            functions);
    }

    [Fact]
    public void MainBicep_EachAppRunsAsItsOwnIdentity()
    {
        var main = File.ReadAllText(Path.Combine(RepoRoot, "infra", "main.bicep"));
        var receiver = ModuleBlock(main, "receiver");
        var functions = ModuleBlock(main, "functions");

        Assert.Contains("identityId: receiverIdentity.outputs.id", receiver, StringComparison.Ordinal);
        Assert.Contains("receiverIdentitySettings", receiver, StringComparison.Ordinal);
        Assert.Contains("identityId: functionsIdentity.outputs.id", functions, StringComparison.Ordinal);
        Assert.Contains("identityClientId: functionsIdentity.outputs.clientId", functions, StringComparison.Ordinal);
        Assert.Contains("functionsIdentitySettings", functions, StringComparison.Ordinal);

        // The client ID the SDKs, DefaultAzureCredential and the telemetry exporter sign in with.
        foreach (var (settings, identity) in new[] { ("receiverIdentitySettings", "receiverIdentity"), ("functionsIdentitySettings", "functionsIdentity") })
        {
            var block = VariableBlock(main, settings);
            Assert.Contains($"AZURE_CLIENT_ID: {identity}.outputs.clientId", block, StringComparison.Ordinal);
            Assert.Contains($"BackupMx__Azure__ManagedIdentityClientId: {identity}.outputs.clientId", block, StringComparison.Ordinal);
            Assert.Contains($"'ClientId=${{{identity}.outputs.clientId}};Authorization=AAD'", block, StringComparison.Ordinal);
        }
    }

    private sealed record Assignment(string Name, string Identity, string Role, string Scope);

    private static List<Assignment> Assignments()
    {
        var text = File.ReadAllText(Path.Combine(RepoRoot, "infra", "modules", "role-assignments.bicep"));
        var assignments = new List<Assignment>();
        foreach (Match match in RoleAssignment().Matches(text))
        {
            var body = match.Groups["body"].Value;
            var identity = Regex.Match(body, @"principalId: (?<who>[a-z]+)Identity\.properties\.principalId").Groups["who"].Value;
            var role = Regex.Match(body, @"roleDefinitionId: .*roles\.(?<role>\w+)\)").Groups["role"].Value;
            var scope = Regex.Match(body, @"^\s*scope: (?<scope>\w+)\s*$", RegexOptions.Multiline).Groups["scope"].Value;
            Assert.False(string.IsNullOrEmpty(identity) || string.IsNullOrEmpty(role) || string.IsNullOrEmpty(scope), $"Could not read role assignment '{match.Groups["name"].Value}'.");
            assignments.Add(new Assignment(match.Groups["name"].Value, identity, role, scope));
        }

        Assert.NotEmpty(assignments);
        return assignments;
    }

    private static string ModuleBlock(string bicep, string name) => Block(bicep, $@"^module {name} '[^']+' = \{{");

    private static string VariableBlock(string bicep, string name) => Block(bicep, $@"^var {name} = \{{");

    /// <summary>A top-level declaration from its opening line to the closing brace at the start of a line.</summary>
    private static string Block(string bicep, string opening)
    {
        var match = Regex.Match(bicep, opening + @"(?<body>.*?)^\}", RegexOptions.Multiline | RegexOptions.Singleline);
        Assert.True(match.Success, $"infra/main.bicep has no block matching {opening}.");
        return match.Groups["body"].Value;
    }

    [GeneratedRegex(@"^resource (?<name>\w+) 'Microsoft\.Authorization/roleAssignments@[^']+' = (?:if \([^)]*\) )?\{(?<body>.*?)^\}", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex RoleAssignment();
}
