// The Functions app on the Flex Consumption plan: forwarding, primary probes and
// the expiry sweep. It authenticates to storage (including AzureWebJobsStorage and
// its own deployment package), Service Bus and Application Insights with the
// user-assigned identity; no connection string holds a key. It is integrated into
// its own subnet and sends all its outbound traffic through the virtual network, so
// SMTP leaves through the network's NAT gateway.

@description('Name of the function app.')
param name string
@description('Name of its Flex Consumption plan.')
param planName string
@description('Azure region of the plan and the app.')
param location string
@description('Tags for the plan and the app (azd-env-name).')
param tags {*: string}

@description('Resource ID of the user-assigned identity.')
param identityId string

@description('Client ID of the user-assigned identity.')
param identityClientId string

@description('Storage account of the Functions host (AzureWebJobsStorage).')
param storageAccountName string

@description('Blob endpoint of the storage account, ending with a slash.')
param storageBlobEndpoint string

@description('Container that holds the deployment package.')
param deploymentContainerName string

@description('Most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Subnet the app is integrated into, delegated to Microsoft.App/environments as Flex Consumption requires.')
param subnetId string

@description('App settings beyond the Functions host ones (name to value, all strings).')
param settings {*: string}

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2025-03-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'functions' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    virtualNetworkSubnetId: subnetId
    // All of the app's outbound traffic, not only private addresses, goes through the virtual
    // network (the successor of vnetRouteAllEnabled): SMTP to the internet must meet the NAT gateway.
    outboundVnetRouting: {
      applicationTraffic: true
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'dotnet-isolated'
        version: '10.0'
      }
    }
  }
}

// Flex Consumption takes the runtime from functionAppConfig and rejects
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION as app settings.
var hostSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
}

resource appSettings 'Microsoft.Web/sites/config@2025-03-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: union(settings, hostSettings)
}

output id string = functionApp.id
output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
