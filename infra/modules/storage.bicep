// Storage for the relay (message bodies in Blob, spool state and primary status
// in Tables) and for the Functions host (AzureWebJobsStorage and the Flex
// Consumption deployment package). Shared keys are off: every caller uses Entra ID.

@description('Name of the storage account (lowercase alphanumeric, globally unique).')
param name string
@description('Azure region of the storage account.')
param location string
@description('Tags for the storage account (azd-env-name).')
param tags {*: string}

@description('Blob container for message bodies.')
param bodiesContainerName string = 'bodies'

@description('Blob container that Flex Consumption deploys the function app package from.')
param deploymentContainerName string

@description('Table for per-message spool state.')
param spoolTableName string = 'spool'

@description('Table for the last known status of each primary.')
param primariesTableName string = 'primaries'

@description('Table in which the receiver replicas share recipient callout answers.')
param verificationsTableName string = 'verifications'

@description('Storage redundancy. ZRS keeps spooled mail through the loss of a zone where the region offers it.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_LRS'

resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    dnsEndpointType: 'Standard'
    minimumTlsVersion: 'TLS1_2'
    publicNetworkAccess: 'Enabled'
    supportsHttpsTrafficOnly: true
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' = {
  parent: storage
  name: 'default'
  properties: {
    // A body deleted by mistake (or by a bug) can be brought back while its message is still spooled.
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource bodies 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: bodiesContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deployment 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2025-01-01' = {
  parent: storage
  name: 'default'
}

resource spool 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-01-01' = {
  parent: tableService
  name: spoolTableName
}

resource primaries 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-01-01' = {
  parent: tableService
  name: primariesTableName
}

resource verifications 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-01-01' = {
  parent: tableService
  name: verificationsTableName
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output tableEndpoint string = storage.properties.primaryEndpoints.table
output bodiesContainerName string = bodies.name
output deploymentContainerName string = deployment.name
output spoolTableName string = spool.name
output primariesTableName string = primaries.name
output verificationsTableName string = verifications.name
