// A storage account with private blob containers. main.bicep makes two: one for the Functions host
// (AzureWebJobsStorage, identity-based) and the Flex Consumption deployment package, where the app is
// Storage Blob Data Owner, with the table of the gateway's shared usage counts; and one for the gateway's
// configuration blob, which the app may only read
// (the configuration holds the callers' keys and the routing). Shared-key access is off: every caller
// (the app, the deployer's `--auth-mode login`) authenticates with Entra ID.

@description('Name of the storage account (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags applied to the account.')
param tags object = {}

@description('Names of the private blob containers to create.')
param containerNames array

@description('Names of the tables to create (the gateway\'s shared usage counts).')
param tableNames array = []

// Reachable over its public endpoint (no VNet in this template), but only by Entra ID principals
// holding data roles: shared keys, SAS and anonymous blob access are all disabled.
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: no VNet/private endpoint in this template; the Flex Consumption app is not a "trusted Azure service" for the firewall bypass, and the deployer uploads the config from their machine. Shared-key access is disabled, so only Entra ID principals with data roles get in.
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: public network access is needed without VNet integration; anonymous blob access and shared keys are disabled.
  // checkov:skip=CKV_AZURE_206: LRS on purpose: everything here is reproducible (host state, a re-deployable package, a config blob kept in source control) and the app itself is single-region, so geo-replication would cost more without keeping the gateway up.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for containerName in containerNames: {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = if (!empty(tableNames)) {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output tableEndpoint string = storage.properties.primaryEndpoints.table
