// An Azure Monitor workbook over the gateway's Application Insights: tokens per caller, per model and per
// backend (group) over time, the upstreams' 429s per backend, p50/p95 latency, and cost per caller and model. Every tile is one KQL query
// (the same text is in infra/README.md) over what the gateway exports: the GenAI metrics in customMetrics
// (a histogram's value is its sum over the export interval) and one `requests` row per request. The Functions
// host writes its own `requests` row for every invocation too; the latency tile keeps the gateway's spans only
// (they carry gateway.request_id), so each request counts once and its duration is the gateway's.

@description('Azure region.')
param location string

@description('Tags applied to the workbook.')
param tags object = {}

@description('Resource id of the Application Insights component the tiles query.')
param applicationInsightsId string

@description('Title shown in the portal.')
param displayName string = 'aoai-gateway usage'

var tokensPerCaller = 'customMetrics | where name == "gen_ai.client.token.usage" | summarize tokens = sum(value) by caller = tostring(customDimensions["gateway.caller"]), bin(timestamp, 5m) | render timechart'
var tokensPerModel = 'customMetrics | where name == "gen_ai.client.token.usage" | summarize tokens = sum(value) by model = tostring(customDimensions["gen_ai.request.model"]), bin(timestamp, 5m) | render timechart'
var tokensPerBackend = 'customMetrics | where name == "gen_ai.client.token.usage" | summarize tokens = sum(value) by backend = tostring(customDimensions["gateway.group"]), bin(timestamp, 5m) | render timechart'
var throttledPerBackend = 'customMetrics | where name == "gateway.upstream.rate_limited" | summarize upstream_429s = sum(value) by backend = tostring(customDimensions["gateway.group"]), bin(timestamp, 5m) | render timechart'
var costPerCallerAndModel = 'customMetrics | where name == "gen_ai.client.cost" | summarize cost = sum(value) by caller_model = strcat(tostring(customDimensions["gateway.caller"]), " / ", tostring(customDimensions["gen_ai.request.model"])), bin(timestamp, 1h) | render timechart'
var latency = 'requests | where isnotempty(customDimensions["gateway.request_id"]) | summarize p50_ms = percentile(duration, 50), p95_ms = percentile(duration, 95) by bin(timestamp, 5m) | render timechart'

var tiles = [
  { title: 'Tokens per caller', query: tokensPerCaller }
  { title: 'Tokens per model', query: tokensPerModel }
  { title: 'Tokens per backend (group)', query: tokensPerBackend }
  { title: 'Upstream 429s per backend (group)', query: throttledPerBackend }
  { title: 'Latency p50 / p95 (ms)', query: latency }
  { title: 'Cost per caller and model', query: costPerCallerAndModel }
]

var tileItems = [for tile in tiles: {
  type: 3
  name: tile.title
  content: {
    version: 'KqlItem/1.0'
    title: tile.title
    query: tile.query
    size: 0
    timeContext: {
      durationMs: 86400000
    }
    queryType: 0
    resourceType: 'microsoft.insights/components'
    visualization: 'timechart'
  }
}]

var content = {
  version: 'Notebook/1.0'
  items: concat([
    {
      type: 1
      name: 'intro'
      content: {
        json: '## aoai-gateway usage\nTokens are prompt + completion as Azure reported them (streams included); cost is at the prices the gateway is configured with, in their currency; the time range is the last 24 hours.'
      }
    }
  ], tileItems)
  fallbackResourceIds: [
    applicationInsightsId
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, applicationInsightsId, 'aoai-gateway-usage')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsightsId
    serializedData: string(content)
  }
}

output id string = workbook.id
