// Container Apps environment on our own virtual network, with the Consumption
// workload profile. Its static IP is the address the MX host name points at.

@description('Name of the Container Apps environment.')
param name string
@description('Azure region of the environment.')
param location string
@description('Tags for the environment (azd-env-name).')
param tags {*: string}

@description('Infrastructure subnet, delegated to Microsoft.App/environments.')
param infrastructureSubnetId string

@description('Log Analytics workspace that receives the container logs.')
param logAnalyticsName string

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2025-02-01' existing = {
  name: logAnalyticsName
}

resource environment 'Microsoft.App/managedEnvironments@2025-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logAnalytics.properties.customerId
        sharedKey: logAnalytics.listKeys().primarySharedKey
      }
    }
    vnetConfiguration: {
      // External: the receiver must be reachable from the internet on port 25.
      internal: false
      infrastructureSubnetId: infrastructureSubnetId
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
    zoneRedundant: false
  }
}

output id string = environment.id
output name string = environment.name
output defaultDomain string = environment.properties.defaultDomain
output staticIp string = environment.properties.staticIp
