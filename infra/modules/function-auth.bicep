// Microsoft Entra ID in front of the function app's HTTP endpoints (the admin API), with App
// Service authentication (authsettingsV2): a request needs a token issued by the tenant for the
// given app registration, and, when a group is given, the caller must be in it. Requests without
// one get 401 before any function runs. Timer functions are not HTTP and are unaffected; the
// function key is still required on top, as the functions use AuthorizationLevel.Function.

@description('Name of the existing function app.')
param functionAppName string

@description('Application (client) ID of the app registration that represents the admin API; tokens must be issued for it.')
param clientId string

@description('Object IDs of the Entra ID groups allowed to call the admin API (the token must carry the group in its groups claim). Empty: any account of the tenant with a token for the app.')
param allowedGroupIds string[] = []

@description('Directory (tenant) ID that issues the tokens.')
param tenantId string = tenant().tenantId

resource functionApp 'Microsoft.Web/sites@2025-03-01' existing = {
  name: functionAppName
}

resource auth 'Microsoft.Web/sites/config@2025-03-01' = {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            clientId
            'api://${clientId}'
          ]
          defaultAuthorizationPolicy: {
            allowedPrincipals: empty(allowedGroupIds) ? null : {
              groups: allowedGroupIds
            }
          }
        }
      }
    }
  }
}
