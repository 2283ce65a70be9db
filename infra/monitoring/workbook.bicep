// The BackupMx workbook: per domain spool depth, primary state, throughput per 5 minutes,
// acceptance-to-delivery latency, the last errors and the oldest messages. Its queries
// (backupmx.workbook.json) run against the Application Insights component and read only names
// the code emits; tests/BackupMx.Functions.Tests/TelemetryNameTests.cs checks them.

@description('Azure region of the workbook.')
param location string

@description('Tags for the workbook (azd-env-name).')
param tags {*: string}

@description('Resource ID of the Application Insights component the queries run against.')
param applicationInsightsId string

@description('Name shown in the portal.')
param displayName string = 'BackupMx operations'

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name is a GUID; this one is stable per resource group, so a redeploy updates it.
  name: guid(resourceGroup().id, 'backupmx-operations-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsightsId
    version: 'Notebook/1.0'
    serializedData: loadTextContent('backupmx.workbook.json')
  }
}

output id string = workbook.id
output name string = workbook.name
