// Reads the image a container app runs now, so that `azd provision` after an
// `azd deploy` keeps the deployed image instead of going back to the placeholder.

@description('Whether the container app already exists (azd sets SERVICE_<NAME>_RESOURCE_EXISTS).')
param exists bool

@description('Name of the container app.')
param name string

resource existingApp 'Microsoft.App/containerApps@2025-01-01' existing = if (exists) {
  name: name
}

output image string = exists ? existingApp!.properties.template.containers[0].image : ''
