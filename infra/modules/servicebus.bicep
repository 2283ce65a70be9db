// Service Bus carries wake-ups: scheduled messages that say "look at message X
// at time T". They are hints, not state (the spool record decides), so the queue
// deduplicates repeats and dead-letters what could not be handled, and nothing
// breaks if one is lost: the periodic sweep re-schedules due messages.

@description('Name of the Service Bus namespace (globally unique).')
param name string
@description('Azure region of the namespace.')
param location string
@description('Tags for the namespace (azd-env-name).')
param tags {*: string}

@description('Queue that carries the wake-ups.')
param queueName string = 'wakeups'

@description('How long a receiver holds a wake-up before it is offered again. Covers one delivery attempt (connect, send, state write).')
param lockDuration string = 'PT5M'

@description('Deliveries of one wake-up before it is dead-lettered.')
@minValue(1)
param maxDeliveryCount int = 10

@description('How long a wake-up lives once it is due. Longer than any retry interval; an expired one is dead-lettered and the sweep covers for it.')
param defaultMessageTimeToLive string = 'P14D'

@description('Window in which a wake-up with the same MessageId is dropped as a duplicate.')
param duplicateDetectionHistoryTimeWindow string = 'PT10M'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    // Standard is the lowest tier with scheduled messages, duplicate detection and dead-lettering on expiry together.
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: queueName
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionHistoryTimeWindow
    deadLetteringOnMessageExpiration: true
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    defaultMessageTimeToLive: defaultMessageTimeToLive
    requiresSession: false
    enablePartitioning: false
  }
}

output id string = namespace.id
output name string = namespace.name
output queueId string = queue.id
output queueName string = queue.name
// The host name the SDK connects to (ServiceBusClient(fullyQualifiedNamespace, credential)),
// taken from the endpoint so that sovereign clouds get their own suffix.
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '//')[1], ':')[0]
