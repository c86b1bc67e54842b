"""Key Vault references in the configuration and in app settings, resolved with an
injected credential and SDK transport (offline; the real SecretClient and its 401
challenge flow run unchanged)."""

import pytest

from core.config import ConfigError
from core.config.provider import load_config
from core.config.secrets import SecretReference, parse_reference
from tests.support.fake_keyvault import FakeCredential, FakeKeyVaultTransport, SecretValues, reset_challenge_cache

SECRETS: dict[tuple[str, str], SecretValues] = {
    ("gw-vault", "eastus-key"): "azure-key-from-vault",
    ("gw-vault", "alice"): {"v1": "old-alice", "v2": "alice-from-vault", "": "alice-from-vault"},
}
CONFIG = """
endpoints:
  azureOpenAI:
    groups:
      - group: east
        apiKey: "@Microsoft.KeyVault(SecretUri=https://gw-vault.vault.azure.net/secrets/eastus-key)"
        instanceName: east
        deploymentName: d
        version: "2024-10-21"
        models: {gpt-4o: true}
gateway:
  apiKeys:
    - name: alice
      key: "@Microsoft.KeyVault(VaultName=gw-vault;SecretName=alice;SecretVersion=v2)"
    - name: bob
      key: "${BOB_KEY}"
"""


@pytest.fixture(autouse=True)
def _fresh_challenges() -> None:
    reset_challenge_cache()


def load(tmp_path, env: dict[str, str], text: str = CONFIG, credential=None):
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    transport = FakeKeyVaultTransport(SECRETS)
    config = load_config(
        {"CONFIG_PATH": str(path), **env}, credential=credential or FakeCredential(), secret_transport=transport
    )
    return config, transport


def test_references_in_the_config_and_in_app_settings_are_resolved(tmp_path) -> None:
    bob_setting = "@Microsoft.KeyVault(SecretUri=https://gw-vault.vault.azure.net/secrets/eastus-key/)"
    config, transport = load(tmp_path, {"BOB_KEY": bob_setting})
    assert config.routes["gpt-4o"].backends[0].headers == (("api-key", "azure-key-from-vault"),)
    keys = {key.name: key.key for key in config.settings.api_keys}
    assert keys == {"alice": "alice-from-vault", "bob": "azure-key-from-vault"}
    assert transport.requests[0].had_auth is False and transport.requests[0].status == 401  # the challenge
    assert all(r.had_auth for r in transport.requests[1:])
    # one fetch per distinct secret within a load
    assert len([r for r in transport.requests if r.status == 200]) == 2


def test_reference_syntaxes() -> None:
    assert parse_reference("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/n/abc)") == SecretReference(
        "https://v.vault.azure.net", "n", "abc"
    )
    assert parse_reference("@Microsoft.KeyVault(VaultName=v;SecretName=n)") == SecretReference(
        "https://v.vault.azure.net", "n", None
    )
    with pytest.raises(ValueError):
        parse_reference("@Microsoft.KeyVault(SecretUri=http://v.vault.azure.net/keys/n)")


def test_unresolvable_secrets_are_config_errors_naming_the_setting_never_a_value(tmp_path) -> None:
    text = CONFIG.replace("secrets/eastus-key", "secrets/missing-key")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, {"BOB_KEY": "@Microsoft.KeyVault(VaultName=gw-vault;SecretName=nope)"}, text)
    problems = "\n".join(caught.value.problems)
    assert "endpoints.azureOpenAI.groups[0].apiKey: Key Vault reference could not be resolved" in problems
    assert "'missing-key'" in problems
    assert "app setting BOB_KEY: Key Vault reference could not be resolved" in problems
    assert "alice-from-vault" not in problems and "azure-key-from-vault" not in problems


def test_a_credential_that_fails_is_reported_per_setting(tmp_path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, {"BOB_KEY": "plain-bob-key"}, credential=FakeCredential(fail=True))
    assert any("apiKey: Key Vault reference could not be resolved" in p for p in caught.value.problems)


def test_a_malformed_reference_is_a_problem(tmp_path) -> None:
    text = CONFIG.replace("VaultName=gw-vault;SecretName=alice;SecretVersion=v2", "Vault=gw-vault")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, {"BOB_KEY": "b"}, text)
    assert any(p.startswith("gateway.apiKeys[0].key: malformed Key Vault reference") for p in caught.value.problems)
