// aoai-gateway: the whole gateway in one resource-group deployment.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p environmentName=<env> \
//     deployerPrincipalId=$(az ad signed-in-user show --query id -o tsv)
//
// Provisions a user-assigned identity, storage (host + Flex deployment package + config blob), Log
// Analytics + Application Insights, Key Vault (gateway keys), optionally Azure OpenAI with model
// deployments, the Flex Consumption plan and the Python Function App, and the identity's roles.
// Output `configYaml` is the gateway configuration to upload as the config blob (see infra/README.md).

targetScope = 'resourceGroup'

@description('Azure region for every resource (must offer Flex Consumption; see `az functionapp list-flexconsumption-locations`).')
param location string = resourceGroup().location

@description('Environment name (e.g. dev, prod): tagged on every resource and hashed into the unique resource names.')
@minLength(1)
@maxLength(64)
param environmentName string

@description('Python version of the Functions runtime.')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('Maximum number of Flex Consumption instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per Flex Consumption instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Seconds between the gateway\'s conditional (ETag) re-reads of the configuration blob.')
@minValue(5)
param configRefreshSeconds int = 60

@description('Create an Azure OpenAI account with the deployments in openAiDeployments. false: bring your own resource and edit the configYaml skeleton.')
param deployOpenAI bool = true

@description('Region of the Azure OpenAI account (model availability differs by region).')
param openAiLocation string = location

@description('Azure OpenAI model deployments, created one at a time: [{ name, model, version, sku? (default GlobalStandard), capacity? (default 10 = 10K tokens per minute) }]. Each becomes a model of the same name in the gateway.')
param openAiDeployments array = [
  {
    name: 'gpt-4o'
    model: 'gpt-4o'
    version: '2024-11-20'
    sku: 'GlobalStandard'
    capacity: 10
  }
]

@description('Azure OpenAI data-plane api-version the gateway sends upstream (the group\'s `version`).')
param openAiApiVersion string = '2024-10-21'

@description('Object id of the deploying user (azd passes the signed-in user); grants Key Vault Secrets Officer and Storage Blob Data Contributor so the README\'s secret and blob upload steps work. Empty: no deployer roles.')
param deployerPrincipalId string = ''

@description('Principal type of deployerPrincipalId (ServicePrincipal when a pipeline deploys).')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  app: 'aoai-gateway'
}

var identityName = 'id-aoaigw-${resourceToken}'
var storageName = 'st${resourceToken}'
var logAnalyticsName = 'log-aoaigw-${resourceToken}'
var applicationInsightsName = 'appi-aoaigw-${resourceToken}'
var keyVaultName = 'kv-${resourceToken}'
var openAiName = 'oai-aoaigw-${resourceToken}'
var planName = 'plan-aoaigw-${resourceToken}'
var functionAppName = 'func-aoaigw-${resourceToken}'
var deploymentContainerName = 'deploymentpackage'
var configContainerName = 'config'
var configBlobName = 'gateway.yaml'

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: identityName
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: storageName
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    configContainerName: configContainerName
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: logAnalyticsName
    applicationInsightsName: applicationInsightsName
    location: location
    tags: tags
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: keyVaultName
    location: location
    tags: tags
  }
}

module openAi 'modules/openai.bicep' = if (deployOpenAI) {
  name: 'openai'
  params: {
    name: openAiName
    location: openAiLocation
    tags: tags
    deployments: openAiDeployments
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    configContainerName: storage.outputs.configContainerName
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    grantOpenAi: deployOpenAI
    openAiAccountName: openAiName
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
  }
  dependsOn: [
    openAi
  ]
}

var configBlobUrl = '${storage.outputs.blobEndpoint}${configContainerName}/${configBlobName}'

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    planName: planName
    name: functionAppName
    location: location
    tags: tags
    azdServiceName: 'api'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    configBlobUrl: configBlobUrl
    configRefreshSeconds: configRefreshSeconds
    pythonVersion: pythonVersion
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  // The host starts with identity-based storage, deployment and Key Vault access: grant the roles first.
  dependsOn: [
    roles
  ]
}

// ---- the gateway configuration (output configYaml), built as text ----

// One model per deployment, indented under `models:`.
var modelLines = [for d in openAiDeployments: '          "${d.name}": {deploymentName: "${d.name}"}']
var modelsYaml = join(modelLines, '\n')

// format(): {0} group/account, {1} api-version, {2} models, {3} vault, {4} storage account.
var configYamlDeployed = format('''# aoai-gateway configuration generated by infra/main.bicep.
# Upload it as the config blob (every instance reloads it within CONFIG_REFRESH_SECONDS):
#   az storage blob upload --auth-mode login --account-name {4} -c config -n gateway.yaml -f gateway.yaml --overwrite
# Callers send "Authorization: Bearer KEY", KEY being Key Vault secret gateway-key-default.
# The gateway reaches Azure OpenAI with its managed identity (auth: entra), so no upstream key.
endpoints:
  azureOpenAI:
    groups:
      - group: "{0}"
        instanceName: "{0}"
        version: "{1}"
        models:
{2}
gateway:
  apiKeys:
    - name: default
      key: "@Microsoft.KeyVault(VaultName={3};SecretName=gateway-key-default)"
  groups:
    "{0}":
      auth: entra
''', openAiName, openAiApiVersion, modelsYaml, keyVaultName, storageName)

// format(): {0} placeholder group, {1} api-version, {2} models, {3} vault, {4} storage account,
// {5} identity principal id.
var configYamlSkeleton = format('''# aoai-gateway configuration SKELETON generated by infra/main.bicep with deployOpenAI=false:
# no Azure OpenAI account was created. PLACEHOLDER: replace YOUR-AOAI-RESOURCE with your Azure
# OpenAI resource name and the models with your deployment names, then upload:
#   az storage blob upload --auth-mode login --account-name {4} -c config -n gateway.yaml -f gateway.yaml --overwrite
# auth: entra needs the app's identity (principal id {5}) to hold Cognitive Services OpenAI User:
#   az role assignment create --assignee-object-id {5} --assignee-principal-type ServicePrincipal --role "Cognitive Services OpenAI User" --scope RESOURCE_ID
# Or use a key: drop the group from gateway.groups and give the group
#   apiKey: "@Microsoft.KeyVault(VaultName={3};SecretName=aoai-key)"
endpoints:
  azureOpenAI:
    groups:
      - group: "{0}"
        instanceName: "YOUR-AOAI-RESOURCE"   # PLACEHOLDER
        version: "{1}"
        models:
{2}
gateway:
  apiKeys:
    - name: default
      key: "@Microsoft.KeyVault(VaultName={3};SecretName=gateway-key-default)"
  groups:
    "{0}":
      auth: entra
''', 'my-aoai', openAiApiVersion, modelsYaml, keyVaultName, storageName, identity.outputs.principalId)

// ---- outputs ----

@description('Base URL of the gateway; OpenAI clients use <gatewayUrl>/v1.')
output gatewayUrl string = 'https://${functionApp.outputs.defaultHostName}'

@description('Name of the Function App (func azure functionapp publish <name>).')
output functionAppName string = functionApp.outputs.name

@description('URL of the configuration blob the app reads (CONFIG_PATH).')
output configBlobUrl string = configBlobUrl

@description('Name of the Key Vault holding the gateway keys.')
output keyVaultName string = keyVault.outputs.name

@description('Name of the storage account (config blob upload).')
output storageAccountName string = storage.outputs.name

@description('Resource group the gateway was deployed to.')
output resourceGroupName string = resourceGroup().name

@description('Name of the Azure OpenAI account (empty when deployOpenAI is false).')
output openAiAccountName string = deployOpenAI ? openAiName : ''

@description('Client id of the app\'s user-assigned managed identity.')
output identityClientId string = identity.outputs.clientId

@description('The gateway configuration to upload as the config blob (a skeleton with placeholders when deployOpenAI is false).')
output configYaml string = deployOpenAI ? configYamlDeployed : configYamlSkeleton
