// Azure OpenAI account (kind OpenAI) with key (local) auth disabled: the gateway calls it with the
// app's managed identity (main.bicep's openAiAppRole, roles.bicep; `auth: entra` in the config).
// The model deployments live in their own module (openai-deployments.bicep), so that a deployment Azure
// refuses (quota, a model the region or subscription cannot have) does not hold back the role assignments
// and the Function App, which need only this account.

@description('Name of the Azure OpenAI account; also its custom subdomain (https://<name>.openai.azure.com).')
@minLength(2)
@maxLength(64)
param name string

@description('Azure region of the account (the models must be available there with the chosen SKU).')
param location string

@description('Tags applied to the account.')
param tags object = {}

// Reachable over its public endpoint (no VNet in this template), but keys are disabled: only Entra
// ID principals with an OpenAI data role can call it.
resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  // checkov:skip=CKV_AZURE_134: no VNet/private endpoint in this template, so the Flex Consumption app reaches Azure OpenAI over its public endpoint; local (key) auth is disabled, so only Entra ID principals with an OpenAI role can call it.
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  identity: {
    type: 'SystemAssigned'
  }
  sku: {
    name: 'S0'
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}

output id string = account.id
output name string = account.name
output endpoint string = account.properties.endpoint
