// Virtual network of the relay. The Container Apps subnet gives the environment a
// stable public IP for the MX host's A record and lets the receiver expose raw TCP
// ingress. The function app joins the second subnet, so its outbound SMTP leaves
// through the virtual network (Microsoft allows port 25 from Functions only through
// virtual network integration). A NAT gateway with one static public IP on both
// subnets makes forwarding, probes, callouts and bounces all leave from one known
// address: the one to exempt at the primary and to give a PTR record.

@description('Name of the virtual network.')
param name string
@description('Azure region of the network resources.')
param location string
@description('Tags for the network resources (azd-env-name).')
param tags {*: string}

@description('Address space of the virtual network.')
param addressPrefix string

@description('Infrastructure subnet of the Container Apps environment (a /23 or larger leaves room to scale; workload-profile environments accept down to /27).')
param infrastructureSubnetPrefix string

@description('Subnet the function app is integrated into, inside the address space and apart from the Container Apps subnet.')
param functionsSubnetPrefix string

@description('Whether outbound traffic of both subnets leaves through a NAT gateway with one static public IP.')
param natGatewayEnabled bool

@description('Name of the NAT gateway.')
param natGatewayName string

@description('Name of the NAT gateway\'s public IP address.')
param publicIpName string

@description('DNS label of the public IP, unique in the region; used only with a reverse DNS name, which Azure accepts only on an IP that has a label.')
param publicIpDnsLabel string

@description('Optional host name for the PTR record of the public IP. Azure accepts it only when the name already resolves to that IP: create the A record first.')
param reverseDnsName string = ''

var reverseFqdn = empty(reverseDnsName) ? '' : (endsWith(reverseDnsName, '.') ? reverseDnsName : '${reverseDnsName}.')

resource publicIp 'Microsoft.Network/publicIPAddresses@2025-01-01' = if (natGatewayEnabled) {
  name: publicIpName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Regional'
  }
  properties: {
    publicIPAddressVersion: 'IPv4'
    publicIPAllocationMethod: 'Static'
    idleTimeoutInMinutes: 4
    dnsSettings: empty(reverseFqdn)
      ? null
      : {
          domainNameLabel: publicIpDnsLabel
          reverseFqdn: reverseFqdn
        }
  }
}

resource natGateway 'Microsoft.Network/natGateways@2025-01-01' = if (natGatewayEnabled) {
  name: natGatewayName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    idleTimeoutInMinutes: 4
    publicIpAddresses: [
      {
        id: publicIp.id
      }
    ]
  }
}

var natGatewayReference = natGatewayEnabled ? { id: natGateway.id } : null

resource vnet 'Microsoft.Network/virtualNetworks@2025-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'container-apps'
        properties: {
          addressPrefix: infrastructureSubnetPrefix
          // Workload-profile environments require the subnet to be delegated to them.
          delegations: [
            {
              name: 'container-apps'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
          natGateway: natGatewayReference
        }
      }
      {
        name: 'functions'
        properties: {
          addressPrefix: functionsSubnetPrefix
          // The delegation the Flex Consumption plan requires for virtual network integration.
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
          natGateway: natGatewayReference
        }
      }
    ]
  }
}

output id string = vnet.id
output name string = vnet.name
output infrastructureSubnetId string = vnet.properties.subnets[0].id
output functionsSubnetId string = vnet.properties.subnets[1].id
// Empty without the NAT gateway: outbound traffic then uses Azure's shared addresses, which change.
output outboundIp string = natGatewayEnabled ? publicIp!.properties.ipAddress : ''
