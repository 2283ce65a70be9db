// Data-plane roles of the two apps, each on its own user-assigned identity and scoped as
// narrowly as the service allows. Built-in role definition IDs are fixed across tenants.
//
// The receiver faces the internet, so it gets only what accepting mail takes: write (and, on a
// failed intake, delete) bodies in the bodies container, write and read spool records (intake,
// ETRN), read primary status, schedule and cancel wake-ups, pull its image and send telemetry.
// The function app also runs the Functions host, whose identity-based AzureWebJobsStorage needs
// the account-wide storage roles.

@description('Name of the user-assigned identity the function app runs as.')
param functionsIdentityName string

@description('Name of the user-assigned identity the receiver container app runs as.')
param receiverIdentityName string

@description('Storage account of message bodies, spool state and the Functions host.')
param storageAccountName string

@description('Blob container of message bodies.')
param bodiesContainerName string

@description('Table of per-message spool state.')
param spoolTableName string

@description('Table of each primary\'s last known status.')
param primariesTableName string

@description('Table in which the receiver replicas share recipient callout answers.')
param verificationsTableName string

@description('Service Bus namespace of the wake-up queue.')
param serviceBusNamespaceName string

@description('Queue that carries the wake-ups.')
param serviceBusQueueName string

@description('Application Insights component the apps send telemetry to.')
param applicationInsightsName string

@description('Registry the receiver image is pulled from.')
param containerRegistryName string

@description('Whether Application Insights accepts only Entra ID-authenticated telemetry; only then do the identities need Monitoring Metrics Publisher.')
param applicationInsightsEntraIdOnly bool = true

var roles = {
  // Functions host (AzureWebJobsStorage, Flex Consumption deployment package) and message bodies.
  // Owner rather than Contributor because the Functions documentation names it for identity-based
  // host storage (the host creates its own containers and takes blob leases for timer singletons).
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // The receiver writes bodies.
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  // Spool state and primary status; the Functions host also keeps diagnostic events in tables.
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // The receiver reads primary status (intake and recipient policy); only the functions write it.
  storageTableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6'
  // Both apps schedule and cancel wake-ups.
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2552a89d'
  // The functions take due wake-ups.
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  // Telemetry when Application Insights accepts only Entra ID authentication.
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  // The container app pulls the receiver image.
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
}

resource functionsIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' existing = {
  name: functionsIdentityName
}

resource receiverIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' existing = {
  name: receiverIdentityName
}

resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' existing = {
  parent: storage
  name: 'default'
}

resource bodies 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' existing = {
  parent: blobService
  name: bodiesContainerName
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2025-01-01' existing = {
  parent: storage
  name: 'default'
}

resource spool 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-01-01' existing = {
  parent: tableService
  name: spoolTableName
}

resource primaries 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-01-01' existing = {
  parent: tableService
  name: primariesTableName
}

resource verifications 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-01-01' existing = {
  parent: tableService
  name: verificationsTableName
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = {
  parent: serviceBus
  name: serviceBusQueueName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource registry 'Microsoft.ContainerRegistry/registries@2025-04-01' existing = {
  name: containerRegistryName
}

// Assignment names derive from the identities' resource IDs, known before deployment, rather
// than their principal IDs, so what-if can predict them.

// ---------------------------------------------------------------------------
// Function app
// ---------------------------------------------------------------------------

resource functionsBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, functionsIdentity.id, roles.storageBlobDataOwner)
  properties: {
    principalId: functionsIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource functionsTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, functionsIdentity.id, roles.storageTableDataContributor)
  properties: {
    principalId: functionsIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

// Scoped to the queue, not the namespace: the apps use no other entity.
resource functionsQueueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: queue
  name: guid(queue.id, functionsIdentity.id, roles.serviceBusDataSender)
  properties: {
    principalId: functionsIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}

resource functionsQueueReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: queue
  name: guid(queue.id, functionsIdentity.id, roles.serviceBusDataReceiver)
  properties: {
    principalId: functionsIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
  }
}

resource functionsMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (applicationInsightsEntraIdOnly) {
  scope: applicationInsights
  name: guid(applicationInsights.id, functionsIdentity.id, roles.monitoringMetricsPublisher)
  properties: {
    principalId: functionsIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

// ---------------------------------------------------------------------------
// Receiver
// ---------------------------------------------------------------------------

resource receiverBodiesContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: bodies
  name: guid(bodies.id, receiverIdentity.id, roles.storageBlobDataContributor)
  properties: {
    principalId: receiverIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

resource receiverSpoolContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: spool
  name: guid(spool.id, receiverIdentity.id, roles.storageTableDataContributor)
  properties: {
    principalId: receiverIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

resource receiverPrimariesReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: primaries
  name: guid(primaries.id, receiverIdentity.id, roles.storageTableDataReader)
  properties: {
    principalId: receiverIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataReader)
  }
}

// Recipient callout answers, read and written by every receiver replica.
resource receiverVerificationsContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: verifications
  name: guid(verifications.id, receiverIdentity.id, roles.storageTableDataContributor)
  properties: {
    principalId: receiverIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

// Sender only: the receiver never takes wake-ups off the queue.
resource receiverQueueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: queue
  name: guid(queue.id, receiverIdentity.id, roles.serviceBusDataSender)
  properties: {
    principalId: receiverIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}

resource receiverMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (applicationInsightsEntraIdOnly) {
  scope: applicationInsights
  name: guid(applicationInsights.id, receiverIdentity.id, roles.monitoringMetricsPublisher)
  properties: {
    principalId: receiverIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

resource receiverAcrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: registry
  name: guid(registry.id, receiverIdentity.id, roles.acrPull)
  properties: {
    principalId: receiverIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
  }
}
