// The one user-assigned identity that both the receiver and the functions run as.
// A user-assigned identity (rather than two system-assigned ones) exists before
// the apps do, so its role assignments can be granted before the first start.

@description('Name of the user-assigned identity.')
param name string
@description('Azure region of the identity.')
param location string
@description('Tags for the identity (azd-env-name).')
param tags {*: string}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
