// Virtual network for the Container Apps environment. A custom network gives the
// environment a stable public IP for the MX host's A record and lets the
// receiver expose raw TCP ingress.

@description('Name of the virtual network.')
param name string
@description('Azure region of the virtual network.')
param location string
@description('Tags for the virtual network (azd-env-name).')
param tags {*: string}

@description('Address space of the virtual network.')
param addressPrefix string

@description('Infrastructure subnet of the Container Apps environment (a /23 or larger leaves room to scale; workload-profile environments accept down to /27).')
param infrastructureSubnetPrefix string

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
        }
      }
    ]
  }
}

output id string = vnet.id
output name string = vnet.name
output infrastructureSubnetId string = vnet.properties.subnets[0].id
