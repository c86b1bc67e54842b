// Role assignments, all by well-known built-in role definition ids. Names are guid(scope, principal,
// role) so redeployments are idempotent.
//
// The app's user-assigned identity gets:
//   Storage Blob Data Owner         host storage account   host storage (AzureWebJobsStorage__*, identity-based)
//                                                          and the Flex deployment package container
//   Storage Blob Data Reader        config storage account the gateway's CONFIG_PATH blob (hot reload); read
//                                                          only: the app can never rewrite its caller keys or routing
//   Key Vault Secrets User          Key Vault              Key Vault references (app settings and config)
//   openAiAppRole                   OpenAI account         `auth: entra` upstream calls (when deployed): main.bicep's
//                                                          openAiAppRole, Cognitive Services OpenAI User by default
//                                                          (inference and the Assistants API, no control-plane
//                                                          writes); Contributor only when the deployer opts in
//   Monitoring Metrics Publisher    App Insights           Entra ID telemetry ingestion (DisableLocalAuth): the
//                                                          host's and the gateway's GenAI metrics and traces
//   Storage Table Data Contributor  the usage table only   caller keys' usage counts shared by every instance
//                                                          (USAGE_TABLE_ENDPOINT); no other table, no queue
//
// The deployer (deployerPrincipalId, optional) gets:
//   Key Vault Secrets Officer       Key Vault              `az keyvault secret set`
//   Storage Blob Data Contributor   config storage account `az storage blob upload --auth-mode login`

@description('Principal (object) id of the app\'s user-assigned managed identity.')
param identityPrincipalId string

@description('Name of the storage account of the Functions host and the deployment package.')
param hostStorageAccountName string

@description('Name of the storage account holding the gateway configuration (read-only for the app).')
param configStorageAccountName string

@description('Name of the Key Vault.')
param keyVaultName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Name of the usage table in the host storage account.')
param usageTableName string

@description('Whether an Azure OpenAI account was deployed (grant openAiAppRole on it).')
param grantOpenAi bool

// No default here: main.bicep's openAiAppRole is the one place the app's OpenAI role is chosen.
@description('The app\'s role on the Azure OpenAI account (a key of roleIds), as main.bicep chooses it.')
@allowed([
  'cognitiveServicesOpenAiUser'
  'cognitiveServicesOpenAiContributor'
])
param openAiAppRole string

@description('Name of the Azure OpenAI account (ignored when grantOpenAi is false).')
param openAiAccountName string = ''

@description('Object id of the deploying user or service principal; empty: no deployer roles.')
param deployerPrincipalId string = ''

@description('Principal type of deployerPrincipalId.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

var roleIds = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  cognitiveServicesOpenAiUser: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'
  cognitiveServicesOpenAiContributor: 'a001fd3d-188f-4b5d-821b-7da978bf7442'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
}

var grantDeployer = !empty(deployerPrincipalId)

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

resource usageTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  name: '${hostStorageAccountName}/default/${usageTableName}'
}

resource configStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: configStorageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = if (grantOpenAi) {
  name: grantOpenAi ? openAiAccountName : 'unused'
}

// ---- the app's identity ----

resource appStorageBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, identityPrincipalId, roleIds.storageBlobDataOwner)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageBlobDataOwner)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Functions host storage (AzureWebJobsStorage) and the Flex Consumption deployment package.'
  }
}

resource appConfigBlobReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(configStorage.id, identityPrincipalId, roleIds.storageBlobDataReader)
  scope: configStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageBlobDataReader)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'The gateway reads its configuration blob (CONFIG_PATH) and reloads it by ETag.'
  }
}

resource appKeyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, roleIds.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Key Vault references in app settings and in the gateway configuration.'
  }
}

resource appOpenAiRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantOpenAi) {
  name: guid(openAi.id, identityPrincipalId, roleIds[openAiAppRole])
  scope: openAi
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds[openAiAppRole])
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'The gateway calls Azure OpenAI with Entra ID (auth: entra).'
  }
}

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identityPrincipalId, roleIds.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.monitoringMetricsPublisher)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Entra ID ingestion into Application Insights (local auth is disabled).'
  }
}

resource appUsageTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(usageTable.id, identityPrincipalId, roleIds.storageTableDataContributor)
  scope: usageTable
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageTableDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Caller keys\' usage counts, shared by every instance (gateway.apiKeys[].limits).'
  }
}

// ---- the deployer (optional) ----

resource deployerKeyVaultSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantDeployer) {
  name: guid(vault.id, deployerPrincipalId, roleIds.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.keyVaultSecretsOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    description: 'The deployer sets the gateway keys (az keyvault secret set).'
  }
}

resource deployerStorageBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantDeployer) {
  name: guid(configStorage.id, deployerPrincipalId, roleIds.storageBlobDataContributor)
  scope: configStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageBlobDataContributor)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    description: 'The deployer uploads the configuration blob (az storage blob upload --auth-mode login).'
  }
}
