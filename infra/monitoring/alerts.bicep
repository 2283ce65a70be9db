// Alert rules that tell the operator before the senders do: a primary down while mail waits for
// it, mail waiting too long, mail bounced for expiry, no receiver running, failed function runs,
// dead-lettered wake-ups and a STARTTLS certificate about to expire.
//
// The log rules query the Application Insights component (tables customMetrics, traces,
// requests, exceptions) and read only names the code emits: the metric names and tags of
// BackupMx.Core.Telemetry, SpoolGauges and TlsCertificateMetrics, the message templates and
// properties of the LoggerMessage definitions, the [Function] names and the cloud role names.
// tests/BackupMx.Functions.Tests/TelemetryNameTests.cs checks every query against those names.
// The other rules are metric alerts on the platform metrics of the container app and the
// Service Bus namespace.

@description('Prefix of every rule name, e.g. alert-<token>.')
param namePrefix string

@description('Azure region of the log alert rules (the component\'s region).')
param location string

@description('Tags for the rules and the action group (azd-env-name).')
param tags {*: string}

@description('Resource ID of the Application Insights component both services report to.')
param applicationInsightsId string

@description('Resource ID of the receiver container app.')
param receiverAppId string

@description('Resource ID of the Service Bus namespace.')
param serviceBusNamespaceId string

@description('Name of the queue that carries the wake-ups.')
param wakeupQueueName string

@description('Address the action group mails. Empty: the rules exist (and show in the portal) but notify nobody.')
param alertEmail string = ''

@description('False creates the rules disabled.')
param enabled bool = true

@description('How long a domain\'s primary must stay unreachable, with mail spooled for it, before the alert fires (ISO 8601 duration, 5 to 60 minutes, a multiple of 5).')
param primaryDownWindow string = 'PT15M'

@description('Alert when a domain\'s oldest spooled message is older than this many seconds.')
@minValue(60)
param oldestAgeThresholdSeconds int = 3600

@description('Alert when the receiver restarted more than this many times within 15 minutes.')
@minValue(0)
param receiverRestartThreshold int = 0

@description('Alert when more than this many errors of the Forward, ProbePrimaries or Expire runs are logged within 15 minutes.')
@minValue(0)
param failedRunsThreshold int = 0

@description('Alert when more than this many wake-ups sit in the dead-letter queue.')
@minValue(0)
param deadLetterThreshold int = 0

@description('Alert when the receiver\'s STARTTLS certificate expires within this many days.')
@minValue(1)
param tlsExpiryWarningDays int = 14

var notify = !empty(alertEmail)

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (notify) {
  name: '${namePrefix}-operator'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'backupmx'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var logActions = {
  actionGroups: notify ? [actionGroup.id] : []
}
var metricActions = notify ? [{ actionGroupId: actionGroup.id }] : []

// Each log rule: name, severity, description, query, how its rows are judged, window and frequency.
var logRules = [
  {
    name: 'primary-down'
    displayName: 'BackupMx: primary unreachable while mail is spooled'
    severity: 1
    description: 'Every probe of a domain\'s primary within the window failed (backupmx.primary.reachable stayed 0) and mail is spooled for that domain (backupmx.spool.depth above 0). Senders are being served by the backup MX; check the primary.'
    query: '''
customMetrics
| where name in ("backupmx.primary.reachable", "backupmx.spool.depth")
| extend Domain = tostring(customDimensions.domain)
| summarize Probes = countif(name == "backupmx.primary.reachable"),
            Reachable = maxif(value, name == "backupmx.primary.reachable"),
            Spooled = maxif(value, name == "backupmx.spool.depth") by Domain
| where Probes > 0 and Reachable == 0 and Spooled > 0
'''
    timeAggregation: 'Count'
    metricMeasureColumn: ''
    operator: 'GreaterThan'
    threshold: 0
    dimensions: ['Domain']
    windowSize: primaryDownWindow
    evaluationFrequency: 'PT5M'
  }
  {
    name: 'oldest-spooled'
    displayName: 'BackupMx: oldest spooled message too old'
    severity: 2
    description: 'A domain\'s oldest spooled message (backupmx.spool.oldest_age) is older than the threshold: mail is waiting, usually because the primary is down or refusing it.'
    query: '''
customMetrics
| where name == "backupmx.spool.oldest_age"
| extend Domain = tostring(customDimensions.domain)
| summarize OldestAgeSeconds = max(value) by bin(timestamp, 5m), Domain
'''
    timeAggregation: 'Maximum'
    metricMeasureColumn: 'OldestAgeSeconds'
    operator: 'GreaterThan'
    threshold: oldestAgeThresholdSeconds
    dimensions: ['Domain']
    windowSize: 'PT15M'
    evaluationFrequency: 'PT5M'
  }
  {
    name: 'bounced-expired'
    displayName: 'BackupMx: recipient bounced for expiry'
    severity: 1
    description: 'A recipient reached the end of the retention period undelivered and was bounced (DSN 4.4.7 to the sender). The primary has been unreachable or refusing for days.'
    query: '''
let prop = (d: dynamic, key: string) { tostring(coalesce(d[key], d[strcat("prop__", key)])) };
traces
| where message startswith "Expired "
| extend Recipient = prop(customDimensions, "Recipient"), QueueId = prop(customDimensions, "QueueId")
| extend Domain = tolower(tostring(split(Recipient, "@")[1]))
| project timestamp, Domain, QueueId, message
'''
    timeAggregation: 'Count'
    metricMeasureColumn: ''
    operator: 'GreaterThan'
    threshold: 0
    dimensions: ['Domain']
    windowSize: 'PT5M'
    evaluationFrequency: 'PT5M'
  }
  {
    name: 'failed-runs'
    displayName: 'BackupMx: failed Forward, ProbePrimaries or Expire runs'
    severity: 2
    description: 'The function app failed runs of Forward, ProbePrimaries or Expire, logged errors or exceptions, or a Forward run gave up after too many failed wake-ups. Mail is safe in the spool, but it is not moving.'
    query: '''
union
    (requests
     | where name in ("Forward", "ProbePrimaries", "Expire") and success == false
     | project timestamp, What = strcat(name, " failed: ", resultCode)),
    (traces
     | where cloud_RoleName != "backupmx-receiver"
     | where severityLevel >= 3 or message startswith "Forward run stopped after "
     | project timestamp, What = message),
    (exceptions
     | where cloud_RoleName != "backupmx-receiver"
     | project timestamp, What = outerMessage)
'''
    timeAggregation: 'Count'
    metricMeasureColumn: ''
    operator: 'GreaterThan'
    threshold: failedRunsThreshold
    dimensions: []
    windowSize: 'PT15M'
    evaluationFrequency: 'PT5M'
  }
  {
    name: 'tls-expiry'
    displayName: 'BackupMx: STARTTLS certificate expires soon'
    severity: 2
    description: 'The certificate the receiver serves for STARTTLS (backupmx.tls.certificate.expiry, seconds left) expires within the warning period. Renew it in Key Vault; the receiver picks up the new version.'
    query: '''
customMetrics
| where name == "backupmx.tls.certificate.expiry" and cloud_RoleName == "backupmx-receiver"
| summarize SecondsLeft = min(value) by bin(timestamp, 15m)
'''
    timeAggregation: 'Minimum'
    metricMeasureColumn: 'SecondsLeft'
    operator: 'LessThan'
    threshold: tlsExpiryWarningDays * 86400
    dimensions: []
    windowSize: 'PT1H'
    evaluationFrequency: 'PT1H'
  }
]

resource logAlerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for rule in logRules: {
    name: '${namePrefix}-${rule.name}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: rule.displayName
      description: rule.description
      severity: rule.severity
      enabled: enabled
      scopes: [applicationInsightsId]
      evaluationFrequency: rule.evaluationFrequency
      windowSize: rule.windowSize
      autoMitigate: true
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: rule.timeAggregation
            metricMeasureColumn: empty(rule.metricMeasureColumn) ? null : rule.metricMeasureColumn
            operator: rule.operator
            threshold: rule.threshold
            dimensions: [
              for dimension in rule.dimensions: {
                name: dimension
                operator: 'Include'
                values: ['*']
              }
            ]
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      actions: logActions
    }
  }
]

// Platform metrics: Microsoft.App/containerApps (Replicas, RestartCount) and
// Microsoft.ServiceBus/namespaces (DeadletteredMessages by EntityName).
var metricRules = [
  {
    name: 'receiver-down'
    description: 'No receiver replica is running: the backup MX does not answer on port 25.'
    severity: 0
    scope: receiverAppId
    metricNamespace: 'Microsoft.App/containerApps'
    metricName: 'Replicas'
    timeAggregation: 'Maximum'
    operator: 'LessThan'
    threshold: 1
    dimensions: []
    windowSize: 'PT5M'
    evaluationFrequency: 'PT1M'
  }
  {
    name: 'receiver-restarts'
    description: 'Receiver replicas restarted (crash, failed health probe or out of memory). Check the console logs of the container app.'
    severity: 2
    scope: receiverAppId
    metricNamespace: 'Microsoft.App/containerApps'
    metricName: 'RestartCount'
    timeAggregation: 'Total'
    operator: 'GreaterThan'
    threshold: receiverRestartThreshold
    dimensions: []
    windowSize: 'PT15M'
    evaluationFrequency: 'PT5M'
  }
  {
    name: 'dead-lettered-wakeups'
    description: 'Wake-ups are in the dead-letter queue of the wake-up queue. The spool is still the truth and the sweep re-schedules due mail, but a growing count points at a bug.'
    severity: 2
    scope: serviceBusNamespaceId
    metricNamespace: 'Microsoft.ServiceBus/namespaces'
    metricName: 'DeadletteredMessages'
    timeAggregation: 'Maximum'
    operator: 'GreaterThan'
    threshold: deadLetterThreshold
    dimensions: [
      {
        name: 'EntityName'
        operator: 'Include'
        values: [wakeupQueueName]
      }
    ]
    windowSize: 'PT15M'
    evaluationFrequency: 'PT5M'
  }
]

resource metricAlerts 'Microsoft.Insights/metricAlerts@2018-03-01' = [
  for rule in metricRules: {
    name: '${namePrefix}-${rule.name}'
    location: 'global'
    tags: tags
    properties: {
      description: rule.description
      severity: rule.severity
      enabled: enabled
      scopes: [rule.scope]
      evaluationFrequency: rule.evaluationFrequency
      windowSize: rule.windowSize
      autoMitigate: true
      criteria: {
        'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
        allOf: [
          {
            criterionType: 'StaticThresholdCriterion'
            name: rule.metricName
            metricNamespace: rule.metricNamespace
            metricName: rule.metricName
            timeAggregation: rule.timeAggregation
            operator: rule.operator
            threshold: rule.threshold
            dimensions: rule.dimensions
          }
        ]
      }
      actions: metricActions
    }
  }
]

output actionGroupId string = notify ? actionGroup.id : ''
output logAlertNames string[] = [for (rule, i) in logRules: logAlerts[i].name]
output metricAlertNames string[] = [for (rule, i) in metricRules: metricAlerts[i].name]
