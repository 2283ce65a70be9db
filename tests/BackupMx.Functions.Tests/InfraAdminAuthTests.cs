namespace BackupMx.Functions.Tests;

/// <summary>
/// The admin API's production set-up: with adminApiClientId set, App Service authentication
/// (authsettingsV2) on the function app answers 401 to any request without an Entra ID token for
/// that app registration and, with adminApiAllowedGroupId, from outside that group. Without it,
/// nothing is deployed and function keys alone guard the API.
/// </summary>
public sealed class InfraAdminAuthTests
{
    [Fact]
    public void FunctionsAuth_IsDeployedOnlyWithAClientId()
    {
        var module = CompiledMainTemplate.Resource("functionsAuth");

        Assert.Equal("[not(empty(parameters('adminApiClientId')))]", module["condition"]!.ToString());
        Assert.Equal("[parameters('adminApiClientId')]", CompiledMainTemplate.ModuleParameter("functionsAuth", "clientId"));
        Assert.Contains("adminApiAllowedGroupId", CompiledMainTemplate.ModuleParameter("functionsAuth", "allowedGroupIds"), StringComparison.Ordinal);

        var parameters = File.ReadAllText(Path.Combine(AzureYamlTests.RepoRoot, "infra", "main.parameters.json"));
        Assert.Contains("${BACKUPMX_ADMIN_API_CLIENT_ID=}", parameters, StringComparison.Ordinal);
        Assert.Contains("${BACKUPMX_ADMIN_API_GROUP_ID=}", parameters, StringComparison.Ordinal);
    }

    [Fact]
    public void AuthSettings_RequireAnEntraTokenForTheApp_AndTheGroup()
    {
        var auth = CompiledMainTemplate.ModuleResource("functionsAuth", "auth");
        var properties = auth["properties"]!;

        Assert.Equal("Microsoft.Web/sites/config", auth["type"]!.GetValue<string>());
        Assert.EndsWith("'authsettingsV2')]", auth["name"]!.ToString(), StringComparison.Ordinal);
        Assert.True(properties["platform"]!["enabled"]!.GetValue<bool>());
        Assert.True(properties["globalValidation"]!["requireAuthentication"]!.GetValue<bool>());
        Assert.Equal("Return401", properties["globalValidation"]!["unauthenticatedClientAction"]!.GetValue<string>());

        var aad = properties["identityProviders"]!["azureActiveDirectory"]!;
        Assert.True(aad["enabled"]!.GetValue<bool>());
        Assert.Equal("[parameters('clientId')]", aad["registration"]!["clientId"]!.ToString());
        Assert.Contains("clientId", aad["validation"]!["allowedAudiences"]!.ToJsonString(), StringComparison.Ordinal);
        Assert.Contains("allowedGroupIds", aad["validation"]!["defaultAuthorizationPolicy"]!.ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AdminRole_ReachesTheFunctionsAsASettingOnlyWithAClientIdAndARole()
    {
        var parameter = CompiledMainTemplate.Root["parameters"]!["adminApiAllowedRole"]!;
        Assert.Equal("string", parameter["type"]!.GetValue<string>());
        Assert.Equal(string.Empty, parameter["defaultValue"]!.GetValue<string>());

        var settings = CompiledMainTemplate.Root["variables"]!["adminRoleSettings"]!.ToString();
        Assert.Contains("empty(parameters('adminApiClientId'))", settings, StringComparison.Ordinal);
        Assert.Contains("empty(parameters('adminApiAllowedRole'))", settings, StringComparison.Ordinal);
        Assert.Contains("'BackupMx__Functions__AdminRole', parameters('adminApiAllowedRole')", settings, StringComparison.Ordinal);
        Assert.Contains("variables('adminRoleSettings')", CompiledMainTemplate.ModuleParameter("functions", "settings"), StringComparison.Ordinal);

        // The setting binds to the option the functions check.
        Assert.Equal("AdminRole", nameof(FunctionsOptions.AdminRole));
        var parameters = File.ReadAllText(Path.Combine(AzureYamlTests.RepoRoot, "infra", "main.parameters.json"));
        Assert.Contains("${BACKUPMX_ADMIN_API_ROLE=}", parameters, StringComparison.Ordinal);
    }
}
