using System.Text.Json.Nodes;
using static BackupMx.Functions.Tests.CompiledMainTemplate;

namespace BackupMx.Functions.Tests;

/// <summary>
/// Outbound networking as compiled from infra/main.bicep: the function app sends from its own
/// subnet through the virtual network, and one NAT gateway with one static public IP serves both
/// that subnet and the Container Apps one, so all outbound SMTP leaves from OUTBOUND_IP.
/// </summary>
public sealed class InfraNetworkTests
{
    private const string FlexConsumptionDelegation = "Microsoft.App/environments";

    [Fact]
    public void FunctionApp_IsIntegratedIntoItsOwnSubnet_DelegatedAsFlexConsumptionRequires()
    {
        Assert.Equal("[reference('network').outputs.functionsSubnetId.value]", ModuleParameter("functions", "subnetId"));

        var subnet = Subnet(OutputSubnetIndex("functionsSubnetId"));
        Assert.Equal("functions", (string?)subnet["name"]);
        Assert.Equal([FlexConsumptionDelegation], Delegations(subnet));

        var site = ModuleResource("functions", "functionApp");
        Assert.Equal("Microsoft.Web/sites", (string?)site["type"]);
        Assert.Equal("[parameters('subnetId')]", (string?)site["properties"]?["virtualNetworkSubnetId"]);
        // All outbound traffic through the virtual network, not only traffic to private addresses.
        Assert.True((bool?)site["properties"]?["outboundVnetRouting"]?["applicationTraffic"]);

        var plan = ModuleResource("functions", "plan");
        Assert.Equal("FC1", (string?)plan["sku"]?["name"]);
        Assert.Equal("FlexConsumption", (string?)plan["sku"]?["tier"]);
    }

    [Fact]
    public void Subnets_FunctionsAndContainerAppsAreSeparate_EachDelegatedToItsOwnService()
    {
        var containerApps = Subnet(OutputSubnetIndex("infrastructureSubnetId"));
        var functions = Subnet(OutputSubnetIndex("functionsSubnetId"));

        Assert.NotSame(containerApps, functions);
        Assert.Equal("[parameters('infrastructureSubnetPrefix')]", (string?)containerApps["properties"]?["addressPrefix"]);
        Assert.Equal("[parameters('functionsSubnetPrefix')]", (string?)functions["properties"]?["addressPrefix"]);
        Assert.Equal([FlexConsumptionDelegation], Delegations(containerApps));
        Assert.Equal("[reference('network').outputs.infrastructureSubnetId.value]", ModuleParameter("containerAppsEnvironment", "infrastructureSubnetId"));
        Assert.Equal("[parameters('functionsSubnetPrefix')]", ModuleParameter("network", "functionsSubnetPrefix"));

        // Main's defaults: both subnets inside the address space, not overlapping.
        var parameters = Root["parameters"]!;
        Assert.Equal("10.40.0.0/16", (string?)parameters["vnetAddressPrefix"]?["defaultValue"]);
        Assert.Equal("10.40.0.0/23", (string?)parameters["containerAppsSubnetPrefix"]?["defaultValue"]);
        Assert.Equal("10.40.2.0/24", (string?)parameters["functionsSubnetPrefix"]?["defaultValue"]);
    }

    [Fact]
    public void NatGateway_OnBothSubnets_WithOneStaticStandardPublicIp()
    {
        var natReference = (string?)ModuleTemplate("network")["variables"]?["natGatewayReference"];
        Assert.Equal("[if(parameters('natGatewayEnabled'), createObject('id', resourceId('Microsoft.Network/natGateways', parameters('natGatewayName'))), null())]", natReference);
        foreach (var output in new[] { "infrastructureSubnetId", "functionsSubnetId" })
        {
            Assert.Equal("[variables('natGatewayReference')]", (string?)Subnet(OutputSubnetIndex(output))["properties"]?["natGateway"]);
        }

        var nat = ModuleResource("network", "natGateway");
        Assert.Equal("Microsoft.Network/natGateways", (string?)nat["type"]);
        Assert.Equal("[parameters('natGatewayEnabled')]", (string?)nat["condition"]);
        Assert.Equal("Standard", (string?)nat["sku"]?["name"]);
        var ips = nat["properties"]!["publicIpAddresses"]!.AsArray();
        Assert.Equal("[resourceId('Microsoft.Network/publicIPAddresses', parameters('publicIpName'))]", (string?)Assert.Single(ips)!["id"]);

        var ip = ModuleResource("network", "publicIp");
        Assert.Equal("Microsoft.Network/publicIPAddresses", (string?)ip["type"]);
        Assert.Equal("[parameters('natGatewayEnabled')]", (string?)ip["condition"]);
        Assert.Equal("Standard", (string?)ip["sku"]?["name"]);
        Assert.Equal("Static", (string?)ip["properties"]?["publicIPAllocationMethod"]);
        Assert.Equal("IPv4", (string?)ip["properties"]?["publicIPAddressVersion"]);

        // On unless the operator turns it off.
        Assert.True((bool?)Root["parameters"]?["natGatewayEnabled"]?["defaultValue"]);
        Assert.Equal("[parameters('natGatewayEnabled')]", ModuleParameter("network", "natGatewayEnabled"));
    }

    [Fact]
    public void ContainerAppsEnvironment_HasWorkloadProfiles_WhichNatGatewayEgressNeeds()
    {
        var environment = ModuleResource("containerAppsEnvironment", "environment");
        var profiles = environment["properties"]!["workloadProfiles"]!.AsArray();

        Assert.Contains(profiles, p => (string?)p!["workloadProfileType"] == "Consumption");
        Assert.Equal("[parameters('infrastructureSubnetId')]", (string?)environment["properties"]?["vnetConfiguration"]?["infrastructureSubnetId"]);
    }

    [Fact]
    public void OutboundIp_IsAnOutputOfMain_TheNatGatewaysAddressOrEmpty()
    {
        Assert.Equal("[reference('network').outputs.outboundIp.value]", (string?)Root["outputs"]?["OUTBOUND_IP"]?["value"]);
        Assert.Equal("[if(parameters('natGatewayEnabled'), reference('publicIp').ipAddress, '')]", (string?)ModuleTemplate("network")["outputs"]?["outboundIp"]?["value"]);
    }

    [Fact]
    public void ReverseDns_SetsTheLabelWithTheReverseName_OnlyWhenOneIsGiven()
    {
        var dnsSettings = (string?)ModuleResource("network", "publicIp")["properties"]?["dnsSettings"];
        Assert.Equal("[if(empty(variables('reverseFqdn')), null(), createObject('domainNameLabel', parameters('publicIpDnsLabel'), 'reverseFqdn', variables('reverseFqdn')))]", dnsSettings);

        // Azure expects the reverse FQDN with its final dot; the parameter may be given without it.
        Assert.Equal(
            "[if(empty(parameters('reverseDnsName')), '', if(endsWith(parameters('reverseDnsName'), '.'), parameters('reverseDnsName'), format('{0}.', parameters('reverseDnsName'))))]",
            (string?)ModuleTemplate("network")["variables"]?["reverseFqdn"]);
        Assert.Equal(string.Empty, (string?)Root["parameters"]?["outboundReverseDnsName"]?["defaultValue"]);
    }

    [Fact]
    public void ReverseDns_WithoutNatGateway_FailsTheDeploymentNamingTheSetting()
    {
        var expression = ModuleParameter("network", "reverseDnsName");

        Assert.StartsWith("[if(or(parameters('natGatewayEnabled'), empty(parameters('outboundReverseDnsName'))), createObject('value', parameters('outboundReverseDnsName')), createObject('value', fail('", expression, StringComparison.Ordinal);
        Assert.Contains("BACKUPMX_OUTBOUND_REVERSE_DNS", expression, StringComparison.Ordinal);
        Assert.Contains("BACKUPMX_NAT_GATEWAY=true", expression, StringComparison.Ordinal);
    }

    private static JsonObject Subnet(int index) =>
        ModuleResource("network", "vnet")["properties"]!["subnets"]!.AsArray()[index]!.AsObject();

    /// <summary>Which entry of the subnets array a network output names, from its expression.</summary>
    private static int OutputSubnetIndex(string output)
    {
        var value = (string?)ModuleTemplate("network")["outputs"]?[output]?["value"];
        var match = System.Text.RegularExpressions.Regex.Match(value ?? "", @"^\[reference\('vnet'\)\.subnets\[(?<i>\d+)\]\.id\]$");
        Assert.True(match.Success, $"network output {output} is '{value}'.");
        return int.Parse(match.Groups["i"].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static List<string?> Delegations(JsonObject subnet) =>
        subnet["properties"]!["delegations"]!.AsArray().Select(d => (string?)d!["properties"]?["serviceName"]).ToList();
}
