// Key Vault for the callers' gateway keys (secret `gateway-key-default`, set by the deployer after the
// deployment; this template creates no secret). RBAC authorization only (no access policies), soft
// delete and purge protection on. The app reads secrets with Key Vault Secrets User (roles.bicep).

@description('Name of the Key Vault (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags applied to the vault.')
param tags object = {}

@description('Days a deleted vault or secret stays recoverable. With purge protection on, a deleted vault\'s name stays reserved that long.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 7

// Reachable over its public endpoint (no VNet in this template); access is RBAC-only (Entra ID).
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: no VNet/private endpoint in this template: the Flex Consumption app resolves Key Vault references (and the gateway reads secrets) over the public endpoint, and the deployer sets secrets from their machine. Access is RBAC-only: Entra ID principals with a Key Vault data role.
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109: disabling public network access needs a private endpoint plus VNet integration, which this template does not provision.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
