"""Resolution into runtime objects: inheritance, every upstream URL form, serverless, headers, settings."""

from __future__ import annotations

import textwrap

import pytest

from core.config.model import Backend, CallerKey, GatewaySettings
from tests.support.config_text import load


def backend(text: str, model: str, env: dict[str, str] | None = None) -> Backend:
    route = load(text, env).routes[model]
    assert len(route.backends) == 1
    return route.backends[0]


def one_group(fields: str, models: str = "gpt-4o: true") -> str:
    """A single-group config; `fields` are extra group keys, one per line."""
    lines = "\n".join(f"    {line}" for line in textwrap.dedent(fields).strip().splitlines())
    return (
        "groups:\n  - group: g\n    apiKey: secret\n"
        f"{lines}\n    models:\n      {models}\n"
        "gateway: {allowAnonymous: true}\n"
    )


def test_model_overrides_group_deployment_and_version() -> None:
    config = load(
        """
        groups:
          - group: west
            apiKey: k
            instanceName: west
            deploymentName: group-dep
            version: "2024-02-01"
            models:
              inherits: true
              own-deployment: {deploymentName: model-dep}
              own-version: {version: "2025-04-01-preview"}
              both: {deploymentName: d2, version: "2024-10-21"}
        gateway: {allowAnonymous: true}
        """
    )
    got = {m: (r.backends[0].deployment, r.backends[0].api_version) for m, r in config.routes.items()}
    assert got == {
        "inherits": ("group-dep", "2024-02-01"),
        "own-deployment": ("model-dep", "2024-02-01"),
        "own-version": ("group-dep", "2025-04-01-preview"),
        "both": ("d2", "2024-10-21"),
    }
    assert list(config.routes) == ["inherits", "own-deployment", "own-version", "both"]


def test_routes_keep_config_order_across_groups() -> None:
    config = load(
        """
        groups:
          - {group: a, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {z: true, y: true}}
          - {group: b, apiKey: k, instanceName: j, deploymentName: d, version: 2024-10-21, models: {x: true}}
        gateway: {allowAnonymous: true}
        """
    )
    assert list(config.routes) == ["z", "y", "x"]
    assert [r.backends[0].group for r in config.routes.values()] == ["a", "a", "b"]


def test_unquoted_date_version_stays_text() -> None:
    b = backend(one_group("instanceName: i\ndeploymentName: d\nversion: 2024-02-01"), "gpt-4o")
    assert b.api_version == "2024-02-01"


# -- upstream URLs -----------------------------------------------------------------------

URL_CASES = {
    "instance name": (
        "instanceName: my-res",
        {},
        "https://my-res.openai.azure.com/openai/deployments/dep",
    ),
    "instance name that is a host": (
        "instanceName: my-res.openai.azure.com",
        {},
        "https://my-res.openai.azure.com/openai/deployments/dep",
    ),
    "instance name with scheme and slash": (
        "instanceName: https://my-res.openai.azure.com/",
        {},
        "https://my-res.openai.azure.com/openai/deployments/dep",
    ),
    "APIM placeholders": (
        'instanceName: my-res\nbaseURL: "https://example.azure-api.net/${INSTANCE_NAME}/${DEPLOYMENT_NAME}"',
        {},
        "https://example.azure-api.net/my-res/dep",
    ),
    "Azure form with placeholders": (
        'instanceName: my-res\nbaseURL: "https://${INSTANCE_NAME}.openai.azure.com/openai/deployments/${DEPLOYMENT_NAME}"',
        {},
        "https://my-res.openai.azure.com/openai/deployments/dep",
    ),
    "Cloudflare placeholders": (
        (
            "instanceName: my-res\n"
            'baseURL: "https://gateway.ai.cloudflare.com/v1/ACCOUNT_TAG/GATEWAY/azure-openai/${INSTANCE_NAME}/${DEPLOYMENT_NAME}"'
        ),
        {},
        "https://gateway.ai.cloudflare.com/v1/ACCOUNT_TAG/GATEWAY/azure-openai/my-res/dep",
    ),
    "Cloudflare literal": (
        (
            "instanceName: my-secret-instance\n"
            'baseURL: "https://gateway.ai.cloudflare.com/v1/ACCOUNT_TAG/GATEWAY/azure-openai/my-secret-instance/dep"'
        ),
        {},
        "https://gateway.ai.cloudflare.com/v1/ACCOUNT_TAG/GATEWAY/azure-openai/my-secret-instance/dep",
    ),
    "resource root with slash": (
        'instanceName: my-instance\nbaseURL: "https://my-instance.openai.azure.com/"',
        {},
        "https://my-instance.openai.azure.com/openai/deployments/dep",
    ),
    "path ending in /openai": (
        'instanceName: my-instance\nbaseURL: "https://apim.example.com/aoai/openai/"',
        {},
        "https://apim.example.com/aoai/openai/deployments/dep",
    ),
    "whole baseURL from env": (
        'instanceName: my-instance\nbaseURL: "${MY_CUSTOM_BASEURL}"',
        {"MY_CUSTOM_BASEURL": "https://proxy.example.com/azure/"},
        "https://proxy.example.com/azure/openai/deployments/dep",
    ),
    "local simulator": (
        'instanceName: sim\nbaseURL: "http://127.0.0.1:${SIM_PORT}"',
        {"SIM_PORT": "8089"},
        "http://127.0.0.1:8089/openai/deployments/dep",
    ),
}


@pytest.mark.parametrize(("fields", "env", "expected"), URL_CASES.values(), ids=URL_CASES.keys())
def test_deployment_base_url(fields: str, env: dict[str, str], expected: str) -> None:
    b = backend(one_group(fields + "\ndeploymentName: dep\nversion: '2024-10-21'"), "gpt-4o", env)
    assert b.base_url == expected
    assert b.url("chat/completions") == f"{expected}/chat/completions?api-version=2024-10-21"
    assert b.deployment == "dep" and not b.serverless


def test_placeholders_follow_each_models_deployment() -> None:
    config = load(
        one_group(
            'instanceName: inst\nversion: 2024-10-21\nbaseURL: "https://gw.example/${INSTANCE_NAME}/${DEPLOYMENT_NAME}"',
            models="a: {deploymentName: dep-a}\n      b: {deploymentName: dep-b}",
        )
    )
    assert config.routes["a"].backends[0].base_url == "https://gw.example/inst/dep-a"
    assert config.routes["b"].backends[0].base_url == "https://gw.example/inst/dep-b"


def test_placeholder_env_variables_are_not_used_but_warned() -> None:
    env = {"INSTANCE_NAME": "wrong", "DEPLOYMENT_NAME": "wrong"}
    config = load(
        one_group(
            'instanceName: inst\ndeploymentName: dep\nversion: 2024-10-21\nbaseURL: "https://gw.example/${INSTANCE_NAME}/${DEPLOYMENT_NAME}"'
        ),
        env,
    )
    assert config.routes["gpt-4o"].backends[0].base_url == "https://gw.example/inst/dep"
    assert len(config.warnings) == 2
    assert all("is a placeholder" in w for w in config.warnings)


def test_placeholder_names_are_env_variables_outside_base_url() -> None:
    text = one_group('instanceName: "${INSTANCE_NAME}"\ndeploymentName: d\nversion: 2024-10-21')
    config = load(text, {"INSTANCE_NAME": "res"})
    assert config.routes["gpt-4o"].backends[0].base_url == "https://res.openai.azure.com/openai/deployments/d"
    assert config.warnings == ()


# -- serverless ------------------------------------------------------------------------------


def test_serverless_backend() -> None:
    url = "https://Mistral-large-x-serverless.eastus2.inference.ai.azure.com/v1/chat/completions"
    b = backend(one_group(f"baseURL: {url}\nserverless: true", models="mistral-large: true"), "mistral-large")
    assert b.serverless and b.deployment is None and b.api_version is None
    assert b.base_url == url
    assert b.url("chat/completions") == url
    assert b.headers == (("api-key", "secret"), ("authorization", "Bearer secret"))
    assert b.rewrites_body


def test_serverless_version_from_group_or_model() -> None:
    url = "https://x.inference.ai.azure.com/v1/chat/completions"
    group_version = backend(
        one_group(f"baseURL: {url}\nserverless: true\nversion: '2024-05-01-preview'", models="m: true"), "m"
    )
    assert group_version.api_version == "2024-05-01-preview"
    model_version = backend(
        one_group(f"baseURL: {url}\nserverless: true", models="m: {version: '2025-01-01-preview'}"), "m"
    )
    assert model_version.url("chat/completions") == f"{url}?api-version=2025-01-01-preview"


# -- headers, params, flags -------------------------------------------------------------------


def test_headers_auth_first_then_additional_headers_lower_cased() -> None:
    b = backend(
        one_group(
            """
            instanceName: i
            deploymentName: d
            version: 2024-10-21
            additionalHeaders:
              X-Trace: "${TRACE}"
              CustomHeader: HeaderValue
            """
        ),
        "gpt-4o",
        {"TRACE": "t-1"},
    )
    assert b.auth == "api-key"
    assert b.headers == (("api-key", "secret"), ("x-trace", "t-1"), ("customheader", "HeaderValue"))


def test_additional_headers_override_auth_headers() -> None:
    b = backend(
        one_group(
            """
            baseURL: https://x.inference.ai.azure.com/v1/chat/completions
            serverless: true
            additionalHeaders:
              Authorization: "Bearer other"
            """
        ),
        "gpt-4o",
    )
    assert dict(b.headers) == {"api-key": "secret", "authorization": "Bearer other"}


def test_passthrough_backend_has_no_auth_header() -> None:
    b = backend(
        """
        groups:
          - group: byok
            instanceName: i
            deploymentName: d
            version: 2024-10-21
            additionalHeaders: {X-Team: blue}
            models: {gpt-4o: true}
        gateway: {groups: {byok: {auth: passthrough}}}
        """,
        "gpt-4o",
    )
    assert b.auth == "passthrough"
    assert b.headers == (("x-team", "blue"),)


def test_params_and_flags_copied() -> None:
    b = backend(
        one_group(
            """
            instanceName: i
            deploymentName: d
            version: 2024-10-21
            addParams: {max_tokens: 2048, temperature: 0.7}
            dropParams: [frequency_penalty, presence_penalty]
            forcePrompt: true
            assistants: true
            """
        ),
        "gpt-4o",
    )
    assert b.add_params == {"max_tokens": 2048, "temperature": 0.7}
    assert b.drop_params == frozenset({"frequency_penalty", "presence_penalty"})
    assert b.force_prompt and b.assistants


def test_model_set_to_false_is_not_served() -> None:
    config = load(
        one_group("instanceName: i\ndeploymentName: d\nversion: 2024-10-21", models="a: true\n      b: false")
    )
    assert list(config.routes) == ["a"]
    assert config.warnings == ('Model "b" in group "g" is set to false and is not served.',)


# -- gateway settings ------------------------------------------------------------------------------


def test_gateway_defaults() -> None:
    config = load(one_group("instanceName: i\ndeploymentName: d\nversion: 2024-10-21"))
    assert config.settings == GatewaySettings()


def test_gateway_settings() -> None:
    config = load(
        """
        groups:
          - {group: g, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {a: true, b: true}}
        gateway:
          apiKeys:
            - {name: alice, key: "${ALICE}"}
            - {name: bob, key: bob-key, models: [b]}
          allowAnonymous: false
          timeouts: {connect: 2.5, read: 60}
          maxBodyBytes: 1048576
          normalizeStreams: false
        """,
        {"ALICE": "alice-key"},
    )
    assert config.settings == GatewaySettings(
        api_keys=(
            CallerKey("alice", "alice-key", None),
            CallerKey("bob", "bob-key", frozenset({"b"}), resource_apis=False),  # limited to models: opt-in only
        ),
        connect_timeout=2.5,
        read_timeout=60.0,
        max_body_bytes=1048576,
        normalize_streams=False,
    )
    assert not config.settings.api_keys[1].allows("a")
