// Container registry for the receiver image. azd builds into it (remote build) and
// the container app pulls with the managed identity, so the admin user stays off.

@description('Name of the container registry (alphanumeric, globally unique).')
param name string
@description('Azure region of the registry.')
param location string
@description('Tags for the registry (azd-env-name).')
param tags {*: string}

resource registry 'Microsoft.ContainerRegistry/registries@2025-04-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Basic'
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

output id string = registry.id
output name string = registry.name
output loginServer string = registry.properties.loginServer
