"""LibreChat's Azure DALL-E environment variables: `dall-e-3` / `dall-e-2` routes for every source."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError
from core.config.api_versions import API_VERSION_FORMS
from core.config.model import Backend
from core.config.provider import load_config
from tests.support.config_text import load, problems

GROUP = """
groups:
  - {group: g, apiKey: k, instanceName: i, deploymentName: d, version: "2024-10-21", models: {gpt-4o: true}}
"""
ANONYMOUS = "gateway: {allowAnonymous: true}\n"

DALLE3 = {
    "DALLE3_AZURE_API_VERSION": "2024-02-01",
    "DALLE3_BASEURL": "https://sweden.openai.azure.com/openai/deployments/dalle3/",
    "DALLE3_API_KEY": "dalle3-secret",
}


def dalle(env: dict[str, str], model: str = "dall-e-3") -> Backend:
    (backend,) = load(GROUP + ANONYMOUS, env).routes[model].backends
    return backend


def test_dalle3_route_from_env() -> None:
    config = load(GROUP + ANONYMOUS, DALLE3)
    assert list(config.routes) == ["gpt-4o", "dall-e-3"]
    assert config.routes["dall-e-3"].backends == (
        Backend(
            group="env:DALLE3",
            deployment="dalle3",
            api_version="2024-02-01",
            serverless=False,
            base_url="https://sweden.openai.azure.com/openai/deployments/dalle3",
            auth="api-key",
            headers=(("api-key", "dalle3-secret"),),
        ),
    )
    backend = config.routes["dall-e-3"].backends[0]
    assert backend.flavor == "dated" and not backend.rewrites_body
    assert backend.url("images/generations") == (
        "https://sweden.openai.azure.com/openai/deployments/dalle3/images/generations?api-version=2024-02-01"
    )
    assert config.warnings == ()


def test_dalle2_with_the_shared_key_and_both_in_order() -> None:
    env = {
        "DALLE2_AZURE_API_VERSION": "2023-06-01-preview",
        "DALLE2_BASEURL": "https://eastus.openai.azure.com/openai/deployments/dalle2",
        "DALLE_API_KEY": "shared-secret",
    }
    backend = dalle(env, "dall-e-2")
    assert (backend.group, backend.deployment, backend.api_version) == ("env:DALLE2", "dalle2", "2023-06-01-preview")
    assert backend.headers == (("api-key", "shared-secret"),)

    config = load(GROUP + ANONYMOUS, {**env, **DALLE3})
    assert list(config.routes) == ["gpt-4o", "dall-e-3", "dall-e-2"]
    # A version-specific key wins over DALLE_API_KEY.
    assert config.routes["dall-e-3"].backends[0].headers == (("api-key", "dalle3-secret"),)


def test_deployment_is_none_when_the_base_url_has_none() -> None:
    backend = dalle({**DALLE3, "DALLE3_BASEURL": "https://proxy.example.com/dalle/"})
    assert backend.deployment is None
    assert backend.base_url == "https://proxy.example.com/dalle"


def test_nothing_without_the_azure_api_version() -> None:
    env = {key: value for key, value in DALLE3.items() if key != "DALLE3_AZURE_API_VERSION"}
    config = load(GROUP + ANONYMOUS, {**env, "DALLE3_AZURE_API_VERSION": "  ", "DALLE_API_KEY": "x"})
    assert list(config.routes) == ["gpt-4o"]


def test_missing_parts_name_the_variables_never_the_values() -> None:
    found = problems(
        GROUP + ANONYMOUS,
        {
            "DALLE3_AZURE_API_VERSION": "2024-02-01",
            "DALLE2_AZURE_API_VERSION": "2024-02-01",
            "DALLE2_BASEURL": "https://eastus.openai.azure.com/openai/deployments/dalle2/?key=leaked",
            "DALLE2_API_KEY": "dalle2-secret",
        },
    )
    assert found == [
        (
            "DALLE3_AZURE_API_VERSION is set (LibreChat's Azure DALL-E 3), but DALLE3_BASEURL is not: set it to the "
            "deployment's URL, e.g. https://<instance>.openai.azure.com/openai/deployments/<deployment>/."
        ),
        (
            "DALLE3_AZURE_API_VERSION is set (LibreChat's Azure DALL-E 3), but neither DALLE3_API_KEY nor "
            "DALLE_API_KEY is set: the gateway needs the Azure key."
        ),
        "DALLE2_BASEURL has a query string or fragment, but the gateway adds ?api-version= itself.",
    ]
    assert not any("leaked" in problem or "secret" in problem for problem in found)
    assert problems(GROUP + ANONYMOUS, {**DALLE3, "DALLE3_BASEURL": "sweden.openai.azure.com"}) == [
        "DALLE3_BASEURL is not an http:// or https:// URL."
    ]


def test_a_group_already_serving_the_model_wins() -> None:
    text = GROUP.replace("{gpt-4o: true}", "{gpt-4o: true, dall-e-3: {deploymentName: dalle3-dep}}") + ANONYMOUS
    config = load(text, {"DALLE3_AZURE_API_VERSION": "2024-02-01"})  # incomplete, but ignored
    assert config.routes["dall-e-3"].backends[0].group == "g"
    assert config.warnings == (
        (
            'DALLE3_AZURE_API_VERSION is set, but group "g" already serves "dall-e-3"; '
            "the DALLE3_* environment settings are ignored."
        ),
    )


def test_dalle_key_is_a_server_side_key_for_the_open_relay_rule() -> None:
    passthrough = (
        "groups:\n  - {group: byok, instanceName: i, deploymentName: d, version: 2024-10-21, models: {a: true}}\n"
        "gateway: {groups: {byok: {auth: passthrough}}}\n"
    )
    assert list(load(passthrough, {}).routes) == ["a"]
    found = problems(passthrough, DALLE3)
    assert len(found) == 1
    assert found[0].startswith('Group "env:DALLE3" holds a server-side apiKey but gateway.apiKeys is empty')
    assert "open relay" in found[0]
    dalle2 = {"DALLE2_AZURE_API_VERSION": "2024-02-01", "DALLE2_BASEURL": "https://e/", "DALLE_API_KEY": "s"}
    found = problems(GROUP, {**DALLE3, **dalle2})
    assert found[0].startswith('Groups "g", "env:DALLE3", "env:DALLE2" hold a server-side apiKey')


def test_caller_keys_may_name_dalle_models() -> None:
    text = GROUP + "gateway:\n  apiKeys: [{name: images, key: gw, models: [dall-e-3]}]\n"
    config = load(text, DALLE3)
    assert config.settings.api_keys[0].allows("dall-e-3") and not config.settings.api_keys[0].allows("gpt-4o")
    assert problems(text, {}) == ['gateway.apiKeys[0].models names "dall-e-3", which no group serves.']


def test_env_references_are_not_involved() -> None:
    # The variables are read as they are; "${...}" in them is not expanded.
    found = problems(GROUP + ANONYMOUS, {**DALLE3, "DALLE3_BASEURL": "${SWEDEN_URL}", "SWEDEN_URL": "https://x/"})
    assert found == ["DALLE3_BASEURL is not an http:// or https:// URL."]


# -- every source ----------------------------------------------------------------------------------------


def test_config_path_source(tmp_path: Path) -> None:
    (tmp_path / "gw.yaml").write_text(GROUP + ANONYMOUS)
    config = load_config({"CONFIG_PATH": str(tmp_path / "gw.yaml"), **DALLE3})
    assert list(config.routes) == ["gpt-4o", "dall-e-3"]


def test_stulzq_config_file_source() -> None:
    text = """
        deployment_config:
          - {deployment_name: d1, model_name: gpt-4, endpoint: "https://a.openai.azure.com/", api_key: k}
        gateway: {apiKeys: [{name: app, key: gw}]}
        """
    assert list(load(text, DALLE3).routes) == ["gpt-4", "dall-e-3"]


def test_stulzq_env_mode_source() -> None:
    env = {"AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com/", "AZURE_OPENAI_MODEL_MAPPER": "gpt-4=gpt-4"}
    with pytest.raises(ConfigError) as caught:
        load_config({**env, **DALLE3})
    # Env mode has no gateway.apiKeys, so a server-side DALL-E key would be an open relay.
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith('Group "env:DALLE3" holds a server-side apiKey')
    with pytest.raises(ConfigError) as caught:
        load_config({**env, "DALLE3_AZURE_API_VERSION": "2024-02-01"})
    assert [p.split(",")[0] for p in caught.value.problems] == [
        "DALLE3_AZURE_API_VERSION is set (LibreChat's Azure DALL-E 3)",
        "DALLE3_AZURE_API_VERSION is set (LibreChat's Azure DALL-E 3)",
    ]


def test_the_azure_api_version_must_be_an_api_version() -> None:
    assert problems(GROUP + ANONYMOUS, {**DALLE3, "DALLE3_AZURE_API_VERSION": "v3"}) == [
        f'DALLE3_AZURE_API_VERSION "v3" is not an api-version: {API_VERSION_FORMS}'
    ]
