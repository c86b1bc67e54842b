// aoai-gateway: the whole gateway in one resource-group deployment.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p environmentName=<env> \
//     deployerPrincipalId=$(az ad signed-in-user show --query id -o tsv)
//
// Provisions a user-assigned identity, two storage accounts (host + Flex deployment package; the
// config blob, read-only for the app), Log Analytics + Application Insights, Key Vault (gateway keys), optionally Azure OpenAI with model
// deployments, the Flex Consumption plan and the Python Function App, and the identity's roles.
// Output `configYaml` is the gateway configuration to upload as the config blob (see infra/README.md).

targetScope = 'resourceGroup'

// Regions with Flex Consumption, as offered by Microsoft's quickstart template
// (Azure-Samples/functions-quickstart-python-http-azd, infra/main.bicep, 2025-11-24) without its canary
// region eastus2euap. Re-check with `az functionapp list-flexconsumption-locations -o table`.
@description('Azure region for every resource; only regions with Flex Consumption.')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
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

// Bounds as Microsoft's "Event-driven scaling in Azure Functions" page gives them for Flex Consumption
// (https://learn.microsoft.com/azure/azure-functions/event-driven-scaling#limit-scale-out, ms.date 2026-08-03):
// "the lowest maximum instance count value is 1, and the highest supported maximum instance count value is
// 1000". The 40 some copies quote is the preview-era floor (flex-consumption-plan, 2024). tests/test_infra.py
// holds these bounds.
@description('Maximum number of Flex Consumption instances the app scales out to (1-1000).')
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

@description('Region of the Azure OpenAI account. Empty (default): the app\'s region when the default model is offered there in Global Standard, else swedencentral. Set it when you deploy other models.')
param openAiLocation string = ''

// Model names, versions and SKUs change every few months: this parameter is the one place they are set.
// Before deploying, check that each is offered in your region with that SKU:
//   az cognitiveservices model list -l REGION --query "[?model.name=='gpt-5.6-luna'].{version:model.version, skus:model.skus[].name}" -o table
// and that it still takes new customers (Microsoft's retirement schedule,
// https://learn.microsoft.com/azure/foundry/openai/concepts/model-retirement-schedule). infra/models.json records
// the versions this project last checked, with the date and whether each needs a registration; CI fails when a
// default is not in it, needs a registration or closes to new customers within six months.
@description('Azure OpenAI model deployments, created one at a time: [{ name, model, version, sku? (default GlobalStandard), capacity? (default 10 = 10K tokens per minute) }]. Each becomes a model of the same name in the gateway.')
param openAiDeployments array = [
  {
    name: 'gpt-5.6-luna'
    model: 'gpt-5.6-luna'
    version: '2026-07-09'
    sku: 'GlobalStandard'
    capacity: 10
  }
]

// Least privilege by default. Cognitive Services OpenAI User (infra/openai-roles.json records its definition as
// read) has no control-plane writes: it cannot create or delete deployments, change content filters or buy
// provisioned throughput. Its data actions serve chat, completions, embeddings, images, audio and the Assistants
// API (assistants/*: assistants, threads, vector stores). Contributor (OpenAI/*) adds uploading files, creating
// batches and, per that copy, writing Responses; choose it explicitly if callers need those.
@description('The app identity\'s role on the Azure OpenAI account. cognitiveServicesOpenAiUser (default): inference, the Assistants and Responses APIs, no control-plane writes. cognitiveServicesOpenAiContributor: opt in for file uploads and batches (see infra/README.md, "Which OpenAI role"); it can also create and delete model deployments and change content filters.')
@allowed([
  'cognitiveServicesOpenAiUser'
  'cognitiveServicesOpenAiContributor'
])
param openAiAppRole string = 'cognitiveServicesOpenAiUser'

// Empty (the default): the generated group speaks Azure's v1 API (`api: v1`, /openai/v1/..., no api-version),
// the only API Microsoft documents for the GPT-5.x models ("Azure OpenAI reasoning models",
// https://learn.microsoft.com/azure/foundry/openai/how-to/reasoning). A dated api-version instead must be one
// every deployed model documents; `python -m core check` says which API each model needs.
@description('Empty (default): the generated group uses Azure\'s v1 API, with no api-version. Otherwise the dated api-version the group sends (`version`, `api: dated`); it must be one every model in openAiDeployments documents.')
param openAiApiVersion string = ''

@description('Object id of the deploying user (azd passes the signed-in user); grants Key Vault Secrets Officer and Storage Blob Data Contributor on the config storage account so the README\'s secret and blob upload steps work. Empty: no deployer roles.')
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

// Regions that offer the default model (openAiDeployments) in Global Standard: infra/models.json's
// globalStandardRegions for it, with where that list comes from. Only some of the regions `location` allows are
// among them, so unless openAiLocation says otherwise the OpenAI account goes to the app's region when it is one
// of these and to openAiFallbackRegion when it is not (a Global Standard deployment serves callers anywhere).
var defaultModelRegions = [
  'eastus2'
  'swedencentral'
]
var openAiFallbackRegion = 'swedencentral'
var openAiRegion = !empty(openAiLocation) ? openAiLocation : (contains(defaultModelRegions, location) ? location : openAiFallbackRegion)

var identityName = 'id-aoaigw-${resourceToken}'
var storageName = 'st${resourceToken}'
var configStorageName = 'stcfg${resourceToken}'
// Caller keys' usage counts, shared by every instance (gateway.apiKeys[].limits), in the host storage account.
var usageTableName = 'gatewayusage'
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
    containerNames: [
      deploymentContainerName
    ]
    tableNames: [
      usageTableName
    ]
  }
}

// The configuration lives apart from the host's storage, where the app is Storage Blob Data Owner:
// here it is only a Reader, so it cannot rewrite its own caller keys or routing.
module configStorage 'modules/storage.bicep' = {
  name: 'configstorage'
  params: {
    name: configStorageName
    location: location
    tags: tags
    containerNames: [
      configContainerName
    ]
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

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
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
    location: openAiRegion
    tags: tags
  }
}

// Apart from the account, and nothing waits for it: a model Azure refuses to deploy leaves a working app
// (roles and Function App need only the account) that a redeploy with another model completes.
module openAiModels 'modules/openai-deployments.bicep' = if (deployOpenAI) {
  name: 'openai-deployments'
  params: {
    accountName: openAiName
    deployments: openAiDeployments
  }
  dependsOn: [
    openAi
  ]
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    identityPrincipalId: identity.outputs.principalId
    hostStorageAccountName: storage.outputs.name
    configStorageAccountName: configStorage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    usageTableName: usageTableName
    grantOpenAi: deployOpenAI
    openAiAccountName: openAiName
    openAiAppRole: openAiAppRole
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
  }
  // The OpenAI account only, never its model deployments (module openAiModels).
  dependsOn: [
    openAi
  ]
}

var configBlobUrl = '${configStorage.outputs.blobEndpoint}${configContainerName}/${configBlobName}'

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
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    configBlobUrl: configBlobUrl
    configRefreshSeconds: configRefreshSeconds
    usageTableEndpoint: storage.outputs.tableEndpoint
    usageTableName: usageTableName
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
// The group's API: Azure's v1 API unless openAiApiVersion names a dated one.
// The config schema wants a group version either way (LibreChat's); on the v1 API it is the v1 API's own name and
// nothing is sent.
var groupVersionLine = empty(openAiApiVersion) ? 'version: "latest"   # unused: the v1 API takes no api-version' : 'version: "${openAiApiVersion}"'
var groupApiLine = empty(openAiApiVersion) ? 'api: v1   # Azure\'s v1 API (/openai/v1, no api-version): what Microsoft documents for the GPT-5.x models' : 'api: dated   # the version above on every call; it must be one each model documents'

// format(): {0} group/account, {1} the group's version line, {2} models, {3} vault,
// {4} config storage account, {5} the group's api line.
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
        {1}
        models:
{2}
gateway:
  apiKeys:
    - name: default
      key: "@Microsoft.KeyVault(VaultName={3};SecretName=gateway-key-default)"
  groups:
    "{0}":
      auth: entra
      {5}
''', openAiName, groupVersionLine, modelsYaml, keyVaultName, configStorageName, groupApiLine)

// format(): {0} placeholder group, {1} the group's version line, {2} models, {3} vault, {4} config storage
// account, {5} identity principal id, {6} the group's api line.
var configYamlSkeleton = format('''# aoai-gateway configuration SKELETON generated by infra/main.bicep with deployOpenAI=false:
# no Azure OpenAI account was created. PLACEHOLDER: replace YOUR-AOAI-RESOURCE with your Azure
# OpenAI resource name and the models with your deployment names, then upload:
#   az storage blob upload --auth-mode login --account-name {4} -c config -n gateway.yaml -f gateway.yaml --overwrite
# auth: entra needs the app's identity (principal id {5}) to hold Cognitive Services OpenAI User on it
# (Cognitive Services OpenAI Contributor instead if callers upload files or create batches):
#   az role assignment create --assignee-object-id {5} --assignee-principal-type ServicePrincipal --role "Cognitive Services OpenAI User" --scope RESOURCE_ID
# Or use a key: drop the group from gateway.groups and give the group
#   apiKey: "@Microsoft.KeyVault(VaultName={3};SecretName=aoai-key)"
endpoints:
  azureOpenAI:
    groups:
      - group: "{0}"
        instanceName: "YOUR-AOAI-RESOURCE"   # PLACEHOLDER
        {1}
        models:
{2}
gateway:
  apiKeys:
    - name: default
      key: "@Microsoft.KeyVault(VaultName={3};SecretName=gateway-key-default)"
  groups:
    "{0}":
      auth: entra
      {6}
''', 'my-aoai', groupVersionLine, modelsYaml, keyVaultName, configStorageName, identity.outputs.principalId, groupApiLine)

// ---- outputs ----

@description('Base URL of the gateway; OpenAI clients use <gatewayUrl>/v1.')
output gatewayUrl string = 'https://${functionApp.outputs.defaultHostName}'

@description('Name of the Function App (func azure functionapp publish <name> --python).')
output functionAppName string = functionApp.outputs.name

@description('URL of the configuration blob the app reads (CONFIG_PATH).')
output configBlobUrl string = configBlobUrl

@description('Name of the Key Vault holding the gateway keys.')
output keyVaultName string = keyVault.outputs.name

@description('Name of the storage account holding the config blob (upload with --auth-mode login).')
output configStorageAccountName string = configStorage.outputs.name

@description('Resource group the gateway was deployed to.')
output resourceGroupName string = resourceGroup().name

@description('Name of the Azure OpenAI account (empty when deployOpenAI is false).')
output openAiAccountName string = deployOpenAI ? openAiName : ''

@description('Client id of the app\'s user-assigned managed identity.')
output identityClientId string = identity.outputs.clientId

@description('The gateway configuration to upload as the config blob (a skeleton with placeholders when deployOpenAI is false).')
output configYaml string = deployOpenAI ? configYamlDeployed : configYamlSkeleton
