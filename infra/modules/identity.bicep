// The one user-assigned managed identity the gateway uses for everything: host storage, the Flex
// deployment container, the config blob, Key Vault references, Azure OpenAI (Entra ID) and
// Application Insights (Entra ID ingestion). Its roles are granted in roles.bicep.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags applied to the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
