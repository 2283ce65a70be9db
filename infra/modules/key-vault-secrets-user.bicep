// Lets the receiver read its STARTTLS certificate from a Key Vault the user already has. The
// receiver's identity, and no other, gets Key Vault Secrets User ("read secret contents,
// including the secret portion of a certificate with private key") on that one vault: the
// vault must use the Azure RBAC permission model. Deployed into the vault's resource group,
// which need not be the relay's.

@description('Name of the key vault that holds the certificate (Azure RBAC permission model).')
param keyVaultName string

@description('Principal ID of the receiver\'s user-assigned identity.')
param principalId string

@description('Resource ID of the receiver\'s user-assigned identity; names the assignment before the principal is known.')
param identityId string

// Built-in role definition IDs are fixed across tenants.
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2025-05-01' existing = {
  name: keyVaultName
}

resource receiverSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vault
  name: guid(vault.id, identityId, keyVaultSecretsUser)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
  }
}

output vaultId string = vault.id
