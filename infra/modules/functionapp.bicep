// Flex Consumption plan (FC1) and the Python Function App. Everything runs as the user-assigned
// identity: host storage, the deployment package container, Key Vault references, Azure OpenAI and
// Application Insights. The app settings below are the only ones the app gets (Flex Consumption
// rejects FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE and
// friends: runtime and deployment live in functionAppConfig instead).
// siteConfig holds only properties that are not on the docs' "Flex Consumption plan deprecations" list
// (https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations):
// ftpsState and alwaysOn are on it, and newer regions reject the whole site PUT for them (ARM error
// 51021). FTP stays off through basicPublishingCredentialsPolicies below. tests/test_infra.py holds the list.

@description('Name of the Flex Consumption plan.')
param planName string

@description('Name of the Function App (becomes <name>.azurewebsites.net).')
param name string

@description('Azure region (must offer Flex Consumption).')
param location string

@description('Tags applied to the plan and the app (the app also gets azd-service-name).')
param tags object = {}

@description('Service name azd looks for in the azd-service-name tag (azure.yaml services key).')
param azdServiceName string = 'api'

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Name of the storage account (host storage and deployment package).')
param storageAccountName string

@description('Blob endpoint of the storage account, ending in "/".')
param storageBlobEndpoint string

@description('Blob container the app package is deployed to.')
param deploymentContainerName string

@description('Application Insights connection string.')
param applicationInsightsConnectionString string

@description('URL of the gateway configuration blob (CONFIG_PATH).')
param configBlobUrl string

@description('Seconds between conditional re-reads of the configuration blob (CONFIG_REFRESH_SECONDS).')
param configRefreshSeconds int

@description('Table endpoint of the storage account holding the usage counts (USAGE_TABLE_ENDPOINT).')
param usageTableEndpoint string

@description('Name of the usage table (USAGE_TABLE_NAME).')
param usageTableName string

@description('Python version of the Functions runtime.')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string

@description('Maximum number of instances the app scales out to (Flex Consumption: 1-1000, see main.bicep).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@description('Memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy for Flex Consumption exists only in some regions (deployment fails elsewhere) and needs zone-redundant storage; left to the operator for a production region that supports it.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

// The gateway is a public API by design: it authenticates every caller itself (OpenAI-style
// `Authorization: Bearer <gateway key>`, keys in Key Vault), so no Easy Auth or client certificates.
resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the gateway is a public API endpoint by design (OpenAI SDKs, LibreChat); callers are authenticated by the gateway's own keys.
  // checkov:skip=CKV_AZURE_17: OpenAI clients do not present TLS client certificates; callers authenticate with gateway keys (Authorization: Bearer / api-key).
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero on demand; a minimum ("always ready") instance count is billed around the clock. Set functionAppConfig.scaleAndConcurrency.alwaysReady if cold starts matter more than cost.
  // checkov:skip=CKV_AZURE_78: Flex Consumption deprecates siteConfig.ftpsState (newer regions reject the site PUT with it, ARM error 51021); FTP is off through the basicPublishingCredentialsPolicies 'ftp' resource below.
  // checkov:skip=CKV_AZURE_213: the platform manages Flex Consumption instances (and scales them to zero); no App Service health-check pinging is configured. The app serves anonymous GET /health for an external availability test.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': azdServiceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    // Built with json() because the key is the identity's resource id.
    userAssignedIdentities: json('{"${identityId}": {}}')
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      appSettings: [
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageAccountName
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        {
          // HTTP streams (real SSE streaming) on Python < 3.13.
          name: 'PYTHON_ENABLE_INIT_INDEXING'
          value: '1'
        }
        {
          name: 'CONFIG_PATH'
          value: configBlobUrl
        }
        {
          name: 'CONFIG_REFRESH_SECONDS'
          value: string(configRefreshSeconds)
        }
        {
          // Caller keys' limits are counted across every instance in this table (the identity's credential).
          name: 'USAGE_TABLE_ENDPOINT'
          value: usageTableEndpoint
        }
        {
          name: 'USAGE_TABLE_NAME'
          value: usageTableName
        }
        {
          // DefaultAzureCredential picks the user-assigned identity (blob config, Key Vault, Entra tokens).
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// No basic (user name + password) publishing: deploy with Entra ID (func, az, azd all do).
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = app.id
output name string = app.name
output defaultHostName string = app.properties.defaultHostName
output planId string = plan.id
