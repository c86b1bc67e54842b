// Model deployments on the Azure OpenAI account (openai.bicep), created one at a time: the service rejects
// parallel deployment writes on one account. Nothing else in main.bicep waits for this module: if Azure
// refuses a deployment, the account, the roles and the Function App are still there, and redeploying with
// another model in openAiDeployments finishes the job.

@description('Name of the existing Azure OpenAI account.')
param accountName string

@description('Model deployments: [{ name, model, version, sku? (default GlobalStandard), capacity? (default 10, in thousands of tokens per minute) }].')
param deployments array

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: accountName
}

@batchSize(1)
resource modelDeployments 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = [for d in deployments: {
  parent: account
  name: d.name
  sku: {
    name: contains(d, 'sku') ? d.sku : 'GlobalStandard'
    capacity: contains(d, 'capacity') ? d.capacity : 10
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: d.model
      version: d.version
    }
  }
}]
