using System.Text.Json.Nodes;

namespace BackupMx.Functions.Tests;

/// <summary>
/// The receiver's STARTTLS certificate from Key Vault, on the compiled template: the Key Vault
/// reference read with the receiver's identity, the secret volume and its mount, the setting that
/// points the receiver at the file, and the one role assignment that lets it read the secret.
/// </summary>
public sealed class InfraTlsCertificateTests
{
    private const string SecretUri = "https://vault-mx.vault.azure.net/secrets/mx-tls";
    private const string VaultId = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-certificates/providers/Microsoft.KeyVault/vaults/vault-mx";
    private const string ReceiverIdentityId = "/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-receiver-x";
    private const string KeyVaultSecretsUser = "4633458b-17de-408a-b874-0445c86b69e6";

    [Fact]
    public void Receiver_WithCertificateSecret_ReadsItWithItsIdentityMountsItAndPointsTheSettingAtTheFile()
    {
        var app = ReceiverApp(SecretUri);
        var configuration = app["properties"]!["configuration"]!;
        var template = app["properties"]!["template"]!;
        var container = template["containers"]![0]!;

        var secret = Assert.Single(configuration["secrets"]!.AsArray(), s => (string?)s!["name"] == "tls-certificate")!;
        Assert.Equal(SecretUri, (string?)secret["keyVaultUrl"]);
        Assert.Equal(ReceiverIdentityId, (string?)secret["identity"]);
        Assert.Null(secret["value"]);
        Assert.Equal(ReceiverIdentityId, Assert.Single(app["identity"]!["userAssignedIdentities"]!.AsObject()).Key);

        var volume = Assert.Single(template["volumes"]!.AsArray())!;
        Assert.Equal("Secret", (string?)volume["storageType"]);
        var file = Assert.Single(volume["secrets"]!.AsArray())!;
        Assert.Equal((string?)secret["name"], (string?)file["secretRef"]);

        var mount = Assert.Single(container["volumeMounts"]!.AsArray())!;
        Assert.Equal((string?)volume["name"], (string?)mount["volumeName"]);

        var path = $"{mount["mountPath"]}/{file["path"]}";
        Assert.Equal("/mnt/tls/tls-certificate", path);
        Assert.Equal(path, Env(container)["BackupMx__Smtp__TlsCertificatePath"]);
    }

    [Fact]
    public void Receiver_WithoutCertificateSecret_HasNoSecretVolumeOrTlsSetting()
    {
        var app = ReceiverApp("");
        var container = app["properties"]!["template"]!["containers"]![0]!;

        Assert.DoesNotContain(app["properties"]!["configuration"]!["secrets"]!.AsArray(), s => s!["keyVaultUrl"] is not null);
        Assert.Empty(app["properties"]!["template"]!["volumes"]!.AsArray());
        Assert.Empty(container["volumeMounts"]!.AsArray());
        Assert.DoesNotContain(Env(container).Keys, k => k.StartsWith("BackupMx__Smtp__Tls", StringComparison.Ordinal));
    }

    [Fact]
    public void MainTemplate_PassesTheSecretUriAndTheReceiverIdentity_AndCreatesTheRoleFirst()
    {
        var receiver = CompiledMainTemplate.Resource("receiver");
        var parameters = receiver["properties"]!["parameters"]!;

        Assert.Equal("[parameters('tlsCertificateSecretUri')]", (string?)parameters["tlsCertificateSecretUri"]!["value"]);
        Assert.Equal("[reference('receiverIdentity').outputs.id.value]", (string?)parameters["identityId"]!["value"]);
        Assert.Contains("receiverKeyVaultAccess", receiver["dependsOn"]!.AsArray().Select(d => (string?)d));
    }

    [Fact]
    public void KeyVaultAccess_GivesSecretsUserToTheReceiverIdentity_ScopedToTheVaultInItsOwnResourceGroup()
    {
        var module = CompiledMainTemplate.Resource("receiverKeyVaultAccess");
        var main = new ArmTemplateEvaluator(CompiledMainTemplate.Root, new Dictionary<string, JsonNode?>
        {
            ["tlsCertificateSecretUri"] = SecretUri,
            ["tlsKeyVaultId"] = VaultId,
        });

        Assert.Equal("[variables('tlsEnabled')]", (string?)module["condition"]);
        Assert.True(main.Evaluate(module["condition"])!.GetValue<bool>());
        Assert.Equal("11111111-2222-3333-4444-555555555555", (string?)main.Evaluate(module["subscriptionId"]));
        Assert.Equal("rg-certificates", (string?)main.Evaluate(module["resourceGroup"]));

        var passed = module["properties"]!["parameters"]!;
        Assert.Equal("vault-mx", (string?)main.Evaluate(passed["keyVaultName"]!["value"]));
        Assert.Equal("[reference('receiverIdentity').outputs.principalId.value]", (string?)passed["principalId"]!["value"]);

        var nested = ArmTemplateEvaluator.ForModule(module, new Dictionary<string, JsonNode?>
        {
            ["keyVaultName"] = "vault-mx",
            ["principalId"] = "receiver-principal",
            ["identityId"] = ReceiverIdentityId,
        });
        var assignment = Assert.Single(nested.Resources(), r => (string?)r["type"] == "Microsoft.Authorization/roleAssignments");
        Assert.Equal("[resourceId('Microsoft.KeyVault/vaults', parameters('keyVaultName'))]", (string?)assignment["scope"]);
        var properties = nested.Evaluate(assignment["properties"])!;
        Assert.Equal("receiver-principal", (string?)properties["principalId"]);
        Assert.Equal("ServicePrincipal", (string?)properties["principalType"]);
        Assert.Equal($"[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '{KeyVaultSecretsUser}')]", (string?)properties["roleDefinitionId"]);
    }

    [Fact]
    public void KeyVaultAccess_WithoutCertificate_IsNotDeployed()
    {
        var main = new ArmTemplateEvaluator(CompiledMainTemplate.Root, new Dictionary<string, JsonNode?>
        {
            ["tlsCertificateSecretUri"] = "",
            ["tlsKeyVaultId"] = "",
        });

        Assert.False(main.Evaluate(CompiledMainTemplate.Resource("receiverKeyVaultAccess")["condition"])!.GetValue<bool>());
    }

    [Fact]
    public void KeyVaultSecretsUser_IsGrantedOnceInTheWholeTemplate_AndToNoOtherIdentity()
    {
        var json = CompiledMainTemplate.Root.ToJsonString();
        var grants = json.Split(KeyVaultSecretsUser).Length - 1;

        // Once as the role's ID in the module that assigns it to the receiver; no other module
        // (the function app's identity included) mentions the role at all.
        Assert.Equal(1, grants);
        var module = CompiledMainTemplate.Resource("receiverKeyVaultAccess").ToJsonString();
        Assert.Contains(KeyVaultSecretsUser, module, StringComparison.Ordinal);
        Assert.DoesNotContain("functionsIdentity", module, StringComparison.Ordinal);
    }

    /// <summary>The receiver's container app as the receiver module deploys it for the given secret URI.</summary>
    internal static JsonNode ReceiverApp(string secretUri)
    {
        var module = CompiledMainTemplate.Resource("receiver");
        var evaluator = ArmTemplateEvaluator.ForModule(module, new Dictionary<string, JsonNode?>
        {
            ["name"] = "ca-receiver-x",
            ["location"] = "westeurope",
            ["tags"] = new JsonObject(),
            ["containerAppsEnvironmentId"] = "/environments/cae-x",
            ["identityId"] = ReceiverIdentityId,
            ["containerRegistryServer"] = "crx.azurecr.io",
            ["image"] = "crx.azurecr.io/receiver:1",
            ["placeholder"] = false,
            ["settings"] = new JsonObject { ["BackupMx__HostName"] = "mx2.example.test" },
            ["tlsCertificateSecretUri"] = secretUri,
            ["calloutFunctionAppName"] = "func-x",
        });
        var app = Assert.Single(evaluator.Resources(), r => (string?)r["type"] == "Microsoft.App/containerApps");
        return evaluator.Evaluate(app)!;
    }

    internal static Dictionary<string, string?> Env(JsonNode container) =>
        container["env"]!.AsArray().ToDictionary(e => (string)e!["name"]!, e => (string?)e!["value"]);
}
