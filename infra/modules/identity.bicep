// A user-assigned identity that one app runs as (the receiver and the functions
// have one each). A user-assigned identity, unlike a system-assigned one, exists
// before its app does, so its role assignments are in place before the first start.

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
