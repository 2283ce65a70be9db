// BackupMx on Azure: the SMTP receiver as a container app with TCP ingress on
// port 25, the forwarder / primary monitor / expiry sweep as a Flex Consumption
// function app, message bodies in Blob Storage, spool state in Tables, wake-ups
// in Service Bus, telemetry in Application Insights. Each app authenticates with
// its own user-assigned managed identity, holding only the roles that app needs;
// no resource accepts a shared key.
//
// `azd up` provisions this file with infra/main.parameters.json, which maps the
// parameters below to azd environment values (AZURE_*, BACKUPMX_*).

targetScope = 'subscription'

// ---------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment. Names the resource group (rg-<name>) and seeds the unique suffix of every resource name.')
param environmentName string

@minLength(1)
@description('Azure region for all resources. Must offer Container Apps workload profiles and the Functions Flex Consumption plan.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('A domain BackupMx is backup MX for.')
type domainType = {
  @description('The domain, e.g. example.com.')
  name: string

  @description('Explicit primary as host[:port]. Empty or absent: the domain\'s MX hosts with a lower preference number than ours.')
  primary: string?

  @description('Addresses (in other domains) that get the outage notices of this domain by e-mail, through the bounce route. Absent: none.')
  notifyAddresses: string[]?
}

@minLength(1)
@description('Domains to accept mail for, each {"name": "example.com", "primary": "mail.example.com"}; RCPT for any other domain is refused.')
param domains domainType[]

@description('Host name of this MX: used in the SMTP greeting, Received headers, EHLO and DSNs, and the name the MX record points at. Empty: mx2.<first domain>.')
param hostName string = ''

@minValue(1)
@maxValue(65535)
@description('Port the primaries are delivered to (for MX hosts, and for a primary given without a port); callouts use it too. DSNs to senders\' MX hosts always go to 25. Azure blocks outbound TCP 25 outside Enterprise Agreement and MCA-E subscriptions; there, use a port the primary also accepts, such as 2525 or 587.')
param primaryPort int = 25

@description('Optional host[:port] that DSNs (bounces) are sent through instead of each sender domain\'s MX; without a port, 25. Needed where outbound TCP 25 is blocked, since sender domains\' MX hosts listen on 25 only: give a relay on 587 or 2525.')
param bounceSmartHost string = ''

@description('How long a message is kept before undelivered recipients are bounced, as a .NET TimeSpan (d.hh:mm:ss).')
param retention string = '5.00:00:00'

@description('Waits between delivery attempts as .NET TimeSpans (hh:mm:ss); the last one repeats. Empty: the built-in schedule, 5, 10, 20 and 40 minutes, then every hour.')
param retryIntervals string[] = []

@description('How often each primary is probed, as a .NET TimeSpan (hh:mm:ss). A recovered primary gets every spooled message of its domain at once.')
param probeInterval string = '00:00:30'

@minValue(0)
@maxValue(99)
@description('MX preference of this host, used only in the MX_RECORD output. Must be a larger number than the primary\'s.')
param mxPreference int = 20

@minValue(1)
@maxValue(1000)
@description('Most instances the Flex Consumption function app scales out to.')
param functionMaximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Memory per function app instance in MB.')
param functionInstanceMemoryMB int = 2048

@description('Receiver image for a first provision, before azd has built and deployed the real one. The default placeholder is an ASP.NET Core sample that is told to listen on the receiver\'s port so the TCP health probes pass; it does not speak SMTP.')
param receiverImage string = 'mcr.microsoft.com/dotnet/samples:aspnetapp'

@description('Whether the receiver container app exists already; azd sets SERVICE_RECEIVER_RESOURCE_EXISTS. When true, the image it runs now is kept.')
param receiverExists bool = false

@minValue(1)
@maxValue(10)
@description('Receiver replicas that always run. An MX must answer at any time, so at least one.')
param receiverMinReplicas int = 1

@minValue(1)
@maxValue(30)
@description('Most receiver replicas under load.')
param receiverMaxReplicas int = 3

@description('Address space of the virtual network of the Container Apps environment.')
param vnetAddressPrefix string = '10.40.0.0/16'

@description('Infrastructure subnet of the Container Apps environment, inside the address space; /23 or larger.')
param containerAppsSubnetPrefix string = '10.40.0.0/23'

@description('Subnet the function app is integrated into (delegated to Microsoft.App/environments), inside the address space and apart from the Container Apps subnet.')
param functionsSubnetPrefix string = '10.40.2.0/24'

@description('Whether the function app and the receiver send through a NAT gateway with one static Standard public IP (OUTBOUND_IP), so forwarding, probes, callouts and bounces leave from one known address. It is billed by the hour and per GB processed, see docs/deploy-azure.md. Off: outbound traffic uses Azure\'s shared addresses, which change.')
param natGatewayEnabled bool = true

@description('Optional host name for the PTR record of OUTBOUND_IP, e.g. mx2-out.example.com. Azure accepts it only once the name\'s A record points at OUTBOUND_IP: provision once, create the A record, then set this and provision again. Needs the NAT gateway.')
param outboundReverseDnsName string = ''

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
@description('Redundancy of the storage account that holds spooled mail.')
param storageSku string = 'Standard_LRS'

@description('When true, Application Insights accepts only Entra ID-authenticated telemetry; each app sends with its own managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).')
param applicationInsightsDisableLocalAuth bool = true

@minValue(30)
@maxValue(730)
@description('Days Log Analytics keeps logs and telemetry.')
param logRetentionInDays int = 30

@description('Versionless URI of the Key Vault secret holding the STARTTLS certificate for the MX host name, https://<vault>.vault.azure.net/secrets/<name>; a Key Vault certificate\'s secret has the certificate\'s name. Empty: the receiver offers no STARTTLS. See docs/deploy-azure.md.')
param tlsCertificateSecretUri string = ''

@description('Resource ID of the key vault in tlsCertificateSecretUri (Azure RBAC permission model, same subscription or another). The receiver\'s identity gets Key Vault Secrets User on it.')
param tlsKeyVaultId string = ''

@description('Address that the alert rules mail (infra/monitoring/alerts.bicep). Empty: the rules exist but notify nobody.')
param alertEmail string = ''

@secure()
@description('URL that every outage notice is POSTed to as JSON with a text field (chat webhooks show it). Empty: none. Secure: such URLs usually carry a secret.')
param notificationWebhook string = ''

@description('Application (client) ID of an Entra ID app registration for the admin API. Set: App Service authentication requires a token for it (infra/modules/function-auth.bicep). Empty: function keys alone.')
param adminApiClientId string = ''

@description('Object ID of the Entra ID group whose members may call the admin API (with adminApiClientId). Empty: any account of the tenant.')
param adminApiAllowedGroupId string = ''

@description('Value of an Entra ID app role that callers of the admin API must hold (with adminApiClientId). App Service authentication cannot check app roles, so the functions check the roles claim of the principal it forwards (BackupMx:Functions:AdminRole). Empty: no role check.')
param adminApiAllowedRole string = ''

// ---------------------------------------------------------------------------
// Names and shared values
// ---------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

var names = {
  resourceGroup: 'rg-${environmentName}'
  // The function app's identity keeps the name from when both apps shared it, so an existing
  // environment keeps its identity and role assignments.
  functionsIdentity: 'id-${resourceToken}'
  receiverIdentity: 'id-receiver-${resourceToken}'
  logAnalytics: 'log-${resourceToken}'
  applicationInsights: 'appi-${resourceToken}'
  storage: 'st${resourceToken}'
  serviceBus: 'sb-${resourceToken}'
  registry: 'cr${resourceToken}'
  vnet: 'vnet-${resourceToken}'
  containerAppsEnvironment: 'cae-${resourceToken}'
  receiver: 'ca-receiver-${resourceToken}'
  functionPlan: 'plan-${resourceToken}'
  functionApp: 'func-${resourceToken}'
  natGateway: 'ng-${resourceToken}'
  outboundIp: 'pip-out-${resourceToken}'
  deploymentContainer: 'app-package-${resourceToken}'
}

var wakeupQueueName = 'wakeups'
var bodiesContainerName = 'bodies'
var spoolTableName = 'spool'
var primariesTableName = 'primaries'
var verificationsTableName = 'verifications'

// The receiver listens here inside the container; ingress maps port 25 to it.
var receiverContainerPort = 2525

// Container Apps TCP ingress does not pass the client's address on (it has no PROXY protocol:
// microsoft/azure-container-apps issue 899), so every connection reaches the receiver from an
// internal address of the environment, never the sender's. Per-client limits would then count
// all senders as one client, and one abusive sender could make the MX answer 421 or 450 to
// everyone. So the per-client connection limit is the total limit, and the per-client message
// rate is off (0).
var receiverMaxConnections = 500
var receiverClientLimitSettings = {
  BackupMx__Smtp__MaxConnections: string(receiverMaxConnections)
  BackupMx__Smtp__MaxConnectionsPerIp: string(receiverMaxConnections)
  BackupMx__Smtp__MaxMessagesPerMinutePerIp: '0'
}

var placeholderImage = 'mcr.microsoft.com/dotnet/samples:aspnetapp'

var mxHostName = toLower(empty(hostName) ? 'mx2.${domains[0].name}' : hostName)

// ---------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2025-04-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module functionsIdentity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.functionsIdentity
    location: location
    tags: tags
  }
}

module receiverIdentity 'modules/identity.bicep' = {
  name: 'receiver-identity'
  scope: rg
  params: {
    name: names.receiverIdentity
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    applicationInsightsName: names.applicationInsights
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
    disableLocalAuth: applicationInsightsDisableLocalAuth
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: tags
    skuName: storageSku
    bodiesContainerName: bodiesContainerName
    spoolTableName: spoolTableName
    primariesTableName: primariesTableName
    verificationsTableName: verificationsTableName
    deploymentContainerName: names.deploymentContainer
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    name: names.serviceBus
    location: location
    tags: tags
    queueName: wakeupQueueName
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  scope: rg
  params: {
    name: names.registry
    location: location
    tags: tags
  }
}

module roles 'modules/role-assignments.bicep' = {
  name: 'role-assignments'
  scope: rg
  // Names come from `names` (known before deployment) so what-if can predict the
  // assignments; the explicit dependencies order the deployment instead.
  dependsOn: [
    functionsIdentity
    receiverIdentity
    storage
    serviceBus
    monitoring
    registry
  ]
  params: {
    functionsIdentityName: names.functionsIdentity
    receiverIdentityName: names.receiverIdentity
    storageAccountName: names.storage
    bodiesContainerName: bodiesContainerName
    spoolTableName: spoolTableName
    primariesTableName: primariesTableName
    verificationsTableName: verificationsTableName
    serviceBusNamespaceName: names.serviceBus
    serviceBusQueueName: wakeupQueueName
    applicationInsightsName: names.applicationInsights
    containerRegistryName: names.registry
    applicationInsightsEntraIdOnly: applicationInsightsDisableLocalAuth
  }
}

module network 'modules/network.bicep' = {
  name: 'network'
  scope: rg
  params: {
    name: names.vnet
    location: location
    tags: tags
    addressPrefix: vnetAddressPrefix
    infrastructureSubnetPrefix: containerAppsSubnetPrefix
    functionsSubnetPrefix: functionsSubnetPrefix
    natGatewayEnabled: natGatewayEnabled
    natGatewayName: names.natGateway
    publicIpName: names.outboundIp
    publicIpDnsLabel: 'backupmx-out-${resourceToken}'
    // A reverse DNS name without the NAT gateway would name nothing: stop rather than ignore it.
    reverseDnsName: natGatewayEnabled || empty(outboundReverseDnsName)
      ? outboundReverseDnsName
      : fail('outboundReverseDnsName (BACKUPMX_OUTBOUND_REVERSE_DNS) needs natGatewayEnabled (BACKUPMX_NAT_GATEWAY=true): without the NAT gateway there is no outbound IP to name.')
  }
}

module containerAppsEnvironment 'modules/container-apps-environment.bicep' = {
  name: 'container-apps-environment'
  scope: rg
  dependsOn: [
    monitoring
  ]
  params: {
    name: names.containerAppsEnvironment
    location: location
    tags: tags
    infrastructureSubnetId: network.outputs.infrastructureSubnetId
    logAnalyticsName: names.logAnalytics
  }
}

// ---------------------------------------------------------------------------
// Settings shared by the receiver and the functions (the BackupMx section of
// .NET configuration, spelled as environment variables)
// ---------------------------------------------------------------------------

// Each app names its own identity: DefaultAzureCredential, the Azure SDKs and the Azure Monitor
// exporter pick the user-assigned identity from these.
var functionsIdentitySettings = {
  AZURE_CLIENT_ID: functionsIdentity.outputs.clientId
  BackupMx__Azure__ManagedIdentityClientId: functionsIdentity.outputs.clientId
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${functionsIdentity.outputs.clientId};Authorization=AAD'
}

var receiverIdentitySettings = {
  AZURE_CLIENT_ID: receiverIdentity.outputs.clientId
  BackupMx__Azure__ManagedIdentityClientId: receiverIdentity.outputs.clientId
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${receiverIdentity.outputs.clientId};Authorization=AAD'
}

var azureSettings = {
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.applicationInsightsConnectionString
  BackupMx__Azure__BlobServiceUri: storage.outputs.blobEndpoint
  BackupMx__Azure__TableServiceUri: storage.outputs.tableEndpoint
  BackupMx__Azure__BodiesContainer: storage.outputs.bodiesContainerName
  BackupMx__Azure__SpoolTable: storage.outputs.spoolTableName
  BackupMx__Azure__PrimariesTable: storage.outputs.primariesTableName
  BackupMx__Azure__VerificationsTable: storage.outputs.verificationsTableName
  BackupMx__Azure__ServiceBusNamespace: serviceBus.outputs.fullyQualifiedNamespace
  BackupMx__Azure__ServiceBusQueue: serviceBus.outputs.queueName
}

var domainNameSettings = toObject(
  range(0, length(domains)),
  i => 'BackupMx__Domains__${i}__Name',
  i => domains[i].name
)

var domainPrimarySettings = toObject(
  filter(range(0, length(domains)), i => !empty(domains[i].?primary ?? '')),
  i => 'BackupMx__Domains__${i}__Primary',
  i => domains[i].?primary ?? ''
)

var retrySettings = toObject(
  range(0, length(retryIntervals)),
  i => 'BackupMx__Delivery__RetryIntervals__${i}',
  i => retryIntervals[i]
)

var bounceSettings = empty(bounceSmartHost) ? {} : { BackupMx__Bounce__SmartHost: bounceSmartHost }

var relaySettings = union(
  {
    BackupMx__HostName: mxHostName
    BackupMx__Delivery__Port: string(primaryPort)
    BackupMx__Delivery__Retention: retention
    BackupMx__Delivery__ProbeInterval: probeInterval
  },
  bounceSettings,
  domainNameSettings,
  domainPrimarySettings,
  retrySettings
)

var sharedSettings = union(azureSettings, relaySettings)

// Only behind App Service authentication does a request carry the principal whose roles are checked.
var adminRoleSettings = empty(adminApiClientId) || empty(adminApiAllowedRole) ? {} : { BackupMx__Functions__AdminRole: adminApiAllowedRole }

// Outage notices come from the function app (ProbePrimaries), so only it gets these.
var notifyAddressSettings = toObject(
  flatten(map(range(0, length(domains)), i => map(range(0, length(domains[i].?notifyAddresses ?? [])), j => {
    name: 'BackupMx__Domains__${i}__NotifyAddresses__${j}'
    value: (domains[i].?notifyAddresses ?? [])[j]
  }))),
  e => e.name,
  e => e.value
)

var notificationSettings = union(
  notifyAddressSettings,
  empty(notificationWebhook) ? {} : { BackupMx__Notifications__Webhook: notificationWebhook }
)

// ---------------------------------------------------------------------------
// Apps
// ---------------------------------------------------------------------------

module receiverImageNow 'modules/fetch-container-image.bicep' = {
  name: 'receiver-image'
  scope: rg
  params: {
    exists: receiverExists
    name: names.receiver
  }
}

var effectiveReceiverImage = receiverExists ? receiverImageNow.outputs.image : receiverImage

// The receiver reads its certificate with its own identity, so that role exists before the app.
// The vault's ID gives the subscription, resource group and name; without TLS a stand-in keeps the
// (unused) scope expression valid.
var tlsEnabled = !empty(tlsCertificateSecretUri)
var tlsKeyVaultIdParts = split(tlsEnabled ? tlsKeyVaultId : '/subscriptions/${subscription().subscriptionId}/resourceGroups/${names.resourceGroup}/providers/Microsoft.KeyVault/vaults/none', '/')

module receiverKeyVaultAccess 'modules/key-vault-secrets-user.bicep' = if (tlsEnabled) {
  name: 'receiver-key-vault-access'
  scope: resourceGroup(tlsKeyVaultIdParts[2], tlsKeyVaultIdParts[4])
  params: {
    keyVaultName: last(tlsKeyVaultIdParts)
    principalId: receiverIdentity.outputs.principalId
    // Known before deployment (unlike the module's output), so what-if can predict the assignment.
    identityId: '${subscription().id}/resourceGroups/${names.resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${names.receiverIdentity}'
  }
}

module receiver 'modules/receiver.bicep' = {
  name: 'receiver'
  scope: rg
  dependsOn: [
    roles
    receiverKeyVaultAccess
    // The receiver reads the function app's host key for its recipient callouts.
    functions
  ]
  params: {
    name: names.receiver
    location: location
    tags: tags
    containerAppsEnvironmentId: containerAppsEnvironment.outputs.id
    identityId: receiverIdentity.outputs.id
    containerRegistryServer: registry.outputs.loginServer
    image: effectiveReceiverImage
    placeholder: effectiveReceiverImage == placeholderImage
    exposedPort: 25
    containerPort: receiverContainerPort
    minReplicas: receiverMinReplicas
    maxReplicas: max(receiverMinReplicas, receiverMaxReplicas)
    tlsCertificateSecretUri: tlsCertificateSecretUri
    // Known before deployment, so what-if can predict the app; dependsOn orders the key read.
    calloutFunctionAppName: names.functionApp
    settings: union(sharedSettings, receiverIdentitySettings, receiverClientLimitSettings, {
      BackupMx__Smtp__Endpoints__0: '0.0.0.0:${receiverContainerPort}'
    })
  }
}

module functions 'modules/function-app.bicep' = {
  name: 'functions'
  scope: rg
  dependsOn: [
    roles
  ]
  params: {
    name: names.functionApp
    planName: names.functionPlan
    location: location
    tags: tags
    identityId: functionsIdentity.outputs.id
    identityClientId: functionsIdentity.outputs.clientId
    subnetId: network.outputs.functionsSubnetId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    maximumInstanceCount: functionMaximumInstanceCount
    instanceMemoryMB: functionInstanceMemoryMB
    settings: union(sharedSettings, functionsIdentitySettings, adminRoleSettings, notificationSettings)
  }
}

module functionsAuth 'modules/function-auth.bicep' = if (!empty(adminApiClientId)) {
  name: 'functions-auth'
  scope: rg
  dependsOn: [
    functions
  ]
  params: {
    // Known before deployment (unlike the module's output), so what-if can predict the setting.
    functionAppName: names.functionApp
    clientId: adminApiClientId
    allowedGroupIds: empty(adminApiAllowedGroupId) ? [] : [adminApiAllowedGroupId]
  }
}

// ---------------------------------------------------------------------------
// Alerts and the operations workbook
// ---------------------------------------------------------------------------

module alerts 'monitoring/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    namePrefix: 'alert-${resourceToken}'
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    receiverAppId: receiver.outputs.id
    serviceBusNamespaceId: serviceBus.outputs.id
    wakeupQueueName: serviceBus.outputs.queueName
    alertEmail: alertEmail
  }
}

module workbook 'monitoring/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
  }
}

// ---------------------------------------------------------------------------
// Outputs (written to the azd environment)
// ---------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name

output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_CONTAINER_REGISTRY_NAME string = registry.outputs.name
output AZURE_CONTAINER_APPS_ENVIRONMENT_ID string = containerAppsEnvironment.outputs.id
output AZURE_CONTAINER_APPS_ENVIRONMENT_NAME string = containerAppsEnvironment.outputs.name
output AZURE_CONTAINER_APPS_ENVIRONMENT_DEFAULT_DOMAIN string = containerAppsEnvironment.outputs.defaultDomain

output AZURE_FUNCTION_APP_NAME string = functions.outputs.name
output SERVICE_FUNCTIONS_NAME string = functions.outputs.name
output SERVICE_RECEIVER_NAME string = receiver.outputs.name

// The function app's identity (the name predates the receiver's own identity).
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = functionsIdentity.outputs.clientId
output AZURE_FUNCTIONS_IDENTITY_CLIENT_ID string = functionsIdentity.outputs.clientId
output AZURE_RECEIVER_IDENTITY_CLIENT_ID string = receiverIdentity.outputs.clientId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_SERVICEBUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace

output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.applicationInsightsConnectionString

// The MX host name in use (hostName, or the one derived from the first domain).
output MX_HOST_NAME string = mxHostName
output RECEIVER_FQDN string = receiver.outputs.fqdn
// Inbound SMTP arrives on this address, port 25: the A record of the MX host name.
output RECEIVER_IP string = containerAppsEnvironment.outputs.staticIp
// The MX record to publish in the first domain, and in every configured domain (azd keeps the
// array as JSON in the environment).
output MX_RECORD string = '${domains[0].name}. IN MX ${mxPreference} ${mxHostName}.'
output MX_RECORDS string[] = map(domains, d => '${d.name}. IN MX ${mxPreference} ${mxHostName}.')
output A_RECORD string = '${mxHostName}. IN A ${containerAppsEnvironment.outputs.staticIp}'

// Outbound SMTP (forwarding, probes, callouts, bounces) leaves from this address when the NAT
// gateway is on; empty when it is off. Exempt it at the primary; its PTR is outboundReverseDnsName.
output OUTBOUND_IP string = network.outputs.outboundIp
