// The SMTP receiver: a container app with raw TCP ingress. The internet connects
// to port 25 on the environment's static IP; the container listens on an
// unprivileged port (it runs as a non-root user), and ingress maps one to the other.

@description('Name of the container app.')
param name string
@description('Azure region of the container app.')
param location string
@description('Tags for the container app (azd-env-name).')
param tags {*: string}

@description('Resource ID of the Container Apps environment the app runs in.')
param containerAppsEnvironmentId string

@description('Resource ID of the user-assigned identity the app runs as and pulls its image with.')
param identityId string

@description('Login server of the registry azd pushes the receiver image to.')
param containerRegistryServer string

@description('Image to run.')
param image string

@description('True while the image is the public placeholder, which is told to listen on the container port so that the health probes pass before the first deploy.')
param placeholder bool

@description('Port the internet connects to.')
param exposedPort int = 25

@description('Port the receiver listens on inside the container.')
param containerPort int = 2525

@description('Environment variables for the container (name to value, all strings).')
param settings {*: string}

@minValue(1)
@description('Replicas that always run: an MX must answer at any time, so never zero.')
param minReplicas int = 1

@minValue(1)
@description('Most replicas under load; at least minReplicas.')
param maxReplicas int = 3

@description('Concurrent SMTP connections per replica before another replica is added.')
param concurrentConnectionsPerReplica int = 50

@description('vCPU per replica.')
param cpu string = '0.5'

@description('Memory per replica; Consumption needs 2 GiB per vCPU.')
param memory string = '1Gi'

@description('Name of the function app (same resource group) that performs the recipient callouts: the receiver posts to its VerifyRecipient endpoint with the app\'s default host key, kept as a secret of the container app.')
param calloutFunctionAppName string

@description('Versionless URI of the Key Vault secret that holds the STARTTLS certificate (a Key Vault certificate\'s secret: base64 PKCS#12). Empty: no STARTTLS.')
param tlsCertificateSecretUri string = ''

// The placeholder is an ASP.NET Core sample; ASPNETCORE_HTTP_PORTS moves it onto the
// receiver's port. The variable is left out once the real image runs.
var placeholderSettings = placeholder ? { ASPNETCORE_HTTP_PORTS: string(containerPort) } : {}
// The certificate becomes a secret of the app, read from Key Vault with the app's identity, and a
// file in a secret volume. Container Apps fetches a versionless reference's latest version within
// 30 minutes. Only environment-variable references are documented to restart the revision, so the
// receiver does not count on a restart: it re-reads the file on its own.
var tls = !empty(tlsCertificateSecretUri)
var tlsSecretName = 'tls-certificate'
var tlsMountPath = '/mnt/tls'
var tlsSettings = tls ? { BackupMx__Smtp__TlsCertificatePath: '${tlsMountPath}/${tlsSecretName}' } : {}
var tlsSecrets = tls
  ? [
      {
        name: tlsSecretName
        keyVaultUrl: tlsCertificateSecretUri
        identity: identityId
      }
    ]
  : []
var tlsVolumes = tls
  ? [
      {
        name: 'tls'
        storageType: 'Secret'
        secrets: [
          {
            secretRef: tlsSecretName
            path: tlsSecretName
          }
        ]
      }
    ]
  : []
var tlsVolumeMounts = tls
  ? [
      {
        volumeName: 'tls'
        mountPath: tlsMountPath
      }
    ]
  : []

// Recipient callouts go through the function app: Microsoft supports outbound port 25 from
// Functions with virtual network integration, not from Container Apps. The default host key
// (List Host Keys, host/default/listkeys) is read at deployment into a secret of the app and
// reaches the container as an environment variable that refers to it.
resource calloutFunctionApp 'Microsoft.Web/sites@2025-03-01' existing = {
  name: calloutFunctionAppName
}

var calloutKeySecretName = 'callout-function-key'
var calloutSettings = {
  BackupMx__Receiver__CalloutUrl: 'https://${calloutFunctionApp.properties.defaultHostName}/api/verify-recipient'
}
var calloutSecrets = [
  {
    name: calloutKeySecretName
    value: listKeys('${calloutFunctionApp.id}/host/default', '2025-03-01').functionKeys.default
  }
]
var calloutEnv = [
  {
    name: 'BackupMx__Receiver__CalloutKey'
    secretRef: calloutKeySecretName
  }
]

var env = concat(
  map(items(union(settings, placeholderSettings, tlsSettings, calloutSettings)), s => {
    name: s.key
    value: s.value
  }),
  calloutEnv
)

resource app 'Microsoft.App/containerApps@2025-01-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'receiver' })
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    managedEnvironmentId: containerAppsEnvironmentId
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        transport: 'tcp'
        exposedPort: exposedPort
        targetPort: containerPort
      }
      registries: [
        {
          server: containerRegistryServer
          identity: identityId
        }
      ]
      secrets: concat(tlsSecrets, calloutSecrets)
    }
    template: {
      containers: [
        {
          name: 'receiver'
          image: image
          env: env
          volumeMounts: tlsVolumeMounts
          resources: {
            cpu: json(cpu)
            memory: memory
          }
          probes: [
            {
              type: 'Startup'
              tcpSocket: {
                port: containerPort
              }
              initialDelaySeconds: 1
              periodSeconds: 2
              failureThreshold: 30
            }
            {
              type: 'Liveness'
              tcpSocket: {
                port: containerPort
              }
              periodSeconds: 10
              failureThreshold: 3
            }
            {
              type: 'Readiness'
              tcpSocket: {
                port: containerPort
              }
              periodSeconds: 5
              failureThreshold: 3
            }
          ]
        }
      ]
      volumes: tlsVolumes
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            name: 'smtp-connections'
            tcp: {
              metadata: {
                concurrentConnections: string(concurrentConnectionsPerReplica)
              }
            }
          }
        ]
      }
    }
  }
}

output id string = app.id
output name string = app.name
output fqdn string = app.properties.configuration.ingress.fqdn
