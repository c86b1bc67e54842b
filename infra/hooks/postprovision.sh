#!/bin/sh
# azd postprovision hook (azure.yaml): finish what Bicep cannot, so `azd up` yields a gateway that
# answers. Runs after `azd provision`, before the code is deployed. Needs the Azure CLI, signed in
# (`az login`) as the same principal azd used (it holds the deployer roles from main.bicep).
#
#   1. Key Vault secret gateway-key-default: created with a random key unless it already exists.
#   2. Config blob config/gateway.yaml: uploaded from the deployment's configYaml output unless a
#      blob is already there (your edits are never overwritten; upload by hand to replace it).
#
# Role assignments made by the deployment can take a few minutes to reach the data planes, so each
# data-plane call is retried for up to ~5 minutes. Prints no secret.
#
# The deployment is looked up in azd's subscription (AZURE_SUBSCRIPTION_ID), not the az CLI's default
# one: the two differ whenever `az account set` points elsewhere. Key Vault and blob calls address
# their resource by name and need no subscription.
set -eu

rg="${AZURE_RESOURCE_GROUP:?AZURE_RESOURCE_GROUP is not set (azd sets it for resource-group deployments)}"
subscription="${AZURE_SUBSCRIPTION_ID:?AZURE_SUBSCRIPTION_ID is not set (azd sets it)}"

if ! az account show --query id -o tsv > /dev/null 2>&1; then
  echo "postprovision: the Azure CLI is not signed in: run 'az login', then 'azd provision' again" >&2
  exit 1
fi

# Outputs of the newest successful deployment of main.bicep in the resource group.
output() {
  az deployment group list --subscription "$subscription" -g "$rg" \
    --query "sort_by([?properties.provisioningState=='Succeeded' && properties.outputs.configYaml], &properties.timestamp)[-1].properties.outputs.$1.value" \
    -o tsv
}

retry() {
  n=0
  until "$@"; do
    n=$((n + 1))
    if [ "$n" -ge 10 ]; then
      echo "postprovision: giving up on: $*" >&2
      return 1
    fi
    echo "postprovision: waiting for role assignments to propagate (attempt $n/10)..." >&2
    sleep 30
  done
}

kv=$(output keyVaultName)
sa=$(output configStorageAccountName)
if [ -z "$kv" ] || [ -z "$sa" ]; then
  echo "postprovision: no successful main.bicep deployment found in resource group $rg (subscription $subscription)" >&2
  exit 1
fi

new_key() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import secrets; print(secrets.token_urlsafe(32))'
  else
    openssl rand -hex 32
  fi
}

secret_exists() {
  az keyvault secret list --vault-name "$kv" --query "[?name=='gateway-key-default'].name" -o tsv > "$tmp/secret"
}

set_secret() {
  az keyvault secret set --vault-name "$kv" --name gateway-key-default --file "$tmp/key" \
    --content-type "aoai-gateway caller key" --query id -o tsv > /dev/null
}

blob_exists() {
  az storage blob exists --auth-mode login --account-name "$sa" -c config -n gateway.yaml \
    --query exists -o tsv > "$tmp/blob"
}

upload_config() {
  az storage blob upload --auth-mode login --account-name "$sa" -c config -n gateway.yaml \
    -f "$tmp/gateway.yaml" --overwrite --only-show-errors > /dev/null
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

retry secret_exists
if [ -s "$tmp/secret" ]; then
  echo "postprovision: Key Vault $kv already holds gateway-key-default (kept)."
else
  (umask 077 && new_key | tr -d '\n' > "$tmp/key")
  retry set_secret
  echo "postprovision: created gateway-key-default in Key Vault $kv; read it with:"
  echo "  az keyvault secret show --vault-name $kv --name gateway-key-default --query value -o tsv"
fi

retry blob_exists
if [ "$(cat "$tmp/blob")" = "true" ]; then
  echo "postprovision: $sa/config/gateway.yaml already exists (kept; upload your own to change it)."
else
  output configYaml > "$tmp/gateway.yaml"
  retry upload_config
  echo "postprovision: uploaded the generated configuration to $sa/config/gateway.yaml."
fi
