"""Per-group gateway settings (`gateway.groups`) and the v1 flavour of deployment-scoped backends."""

from __future__ import annotations

import textwrap

import pytest

from core.config.model import Backend
from tests.support.config_text import load, problems


def config_with(group_fields: str, settings: str, models: str = "gpt-4o: true") -> str:
    """One group "g" plus `gateway.groups.g: {settings}`; `group_fields` are extra group keys."""
    lines = "\n".join(f"    {line}" for line in textwrap.dedent(group_fields).strip().splitlines())
    return (
        f"groups:\n  - group: g\n    apiKey: secret\n{lines}\n    models:\n      {models}\n"
        f"gateway:\n  allowAnonymous: true\n  groups:\n    g: {settings}\n"
    )


def backend(text: str, model: str = "gpt-4o", env: dict[str, str] | None = None) -> Backend:
    route = load(text, env).routes[model]
    assert len(route.backends) == 1
    return route.backends[0]


TWO_GROUPS = """
groups:
  - {group: sweden, apiKey: k, instanceName: sw, deploymentName: d, version: "2024-10-21", models: {a: true}}
  - group: sls
    apiKey: k
    baseURL: https://m.eastus2.inference.ai.azure.com/v1/chat/completions
    serverless: true
    models: {mistral-large: true}
"""


# -- validation ---------------------------------------------------------------------------------


def test_defaults_when_gateway_groups_is_absent_or_dated() -> None:
    implicit = backend(config_with("instanceName: i\ndeploymentName: d\nversion: '2024-10-21'", "{}"))
    explicit = backend(config_with("instanceName: i\ndeploymentName: d\nversion: '2024-10-21'", "{api: dated}"))
    assert implicit == explicit
    assert implicit.flavor == "dated" and implicit.api_version == "2024-10-21"
    assert implicit.base_url == "https://i.openai.azure.com/openai/deployments/d"


def test_every_gateway_groups_problem_at_once() -> None:
    found = problems(
        TWO_GROUPS
        + """
gateway:
  allowAnonymous: true
  groups:
    swedn: {api: v1}
    norway: {}
    sweden: {api: v2, assistantsVersion: "2024-02-01"}
    sls: {api: v1, assistantsVersion: "2024-01-01-preview"}
"""
    )
    # Schema errors first, then the rules, which still run on the rest.
    assert found == [
        "gateway.groups.sweden.api: Input should be 'dated' or 'v1'",
        (
            'gateway.groups.sweden.assistantsVersion: "2024-02-01" is not an Assistants api-version: expected a '
            'YYYY-MM-DD-preview version dated 2024-02-15 or later (e.g. "2025-04-01-preview").'
        ),
        (
            'gateway.groups.sls.assistantsVersion: "2024-01-01-preview" is not an Assistants api-version: expected a '
            'YYYY-MM-DD-preview version dated 2024-02-15 or later (e.g. "2025-04-01-preview").'
        ),
        'gateway.groups.swedn: there is no group "swedn" in the azureOpenAI groups (did you mean "sweden"?).',
        'gateway.groups.norway: there is no group "norway" in the azureOpenAI groups ("sweden", "sls").',
        (
            'gateway.groups.sls.api is "v1", but group "sls" is serverless: a serverless endpoint has no '
            "/openai/v1 API. Remove the setting."
        ),
    ]


@pytest.mark.parametrize(
    "version", ["latest", "2024-13-01-preview", "2024-02-14-preview", "2024-02-15-Preview", "2025-04-01-preview "]
)
def test_assistants_version_must_be_a_recent_enough_preview(version: str) -> None:
    group = "instanceName: i\ndeploymentName: d\nversion: 2024-10-21"
    found = problems(config_with(group, f"{{assistantsVersion: '{version}'}}"))
    assert found == [
        (
            f'gateway.groups.g.assistantsVersion: "{version}" is not an Assistants api-version: expected a '
            'YYYY-MM-DD-preview version dated 2024-02-15 or later (e.g. "2025-04-01-preview").'
        )
    ]


def test_oldest_assistants_version_and_unquoted_date_are_accepted() -> None:
    text = config_with(
        "instanceName: i\ndeploymentName: d\nversion: 2024-10-21", "{assistantsVersion: 2024-02-15-preview}"
    )
    assert load(text).routes["gpt-4o"].backends[0].api_version == "2024-10-21"


def test_gateway_groups_type_errors() -> None:
    found = problems(TWO_GROUPS + "gateway:\n  allowAnonymous: true\n  groups:\n    sweden: {api: 1}\n    sls: v1\n")
    assert found == [
        "gateway.groups.sweden.api: Input should be 'dated' or 'v1'",
        "gateway.groups.sls: Input should be a valid dictionary or instance of GroupSection",
    ]


def test_unknown_keys_in_gateway_groups_are_warnings() -> None:
    config = load(TWO_GROUPS + "gateway:\n  allowAnonymous: true\n  groups:\n    sweden: {apii: v1, region: se}\n")
    assert config.warnings == (
        'Unknown key "gateway.groups.sweden.apii" is ignored (did you mean "api"?)',
        'Unknown key "gateway.groups.sweden.region" is ignored.',
    )


def test_assistants_version_without_effect_is_warned() -> None:
    config = load(
        """
        assistants: true
        groups:
          - {group: a, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, assistants: true,
             models: {m1: true}}
          - {group: b, apiKey: k, instanceName: j, deploymentName: d, version: 2024-10-21, models: {m2: true}}
          - {group: c, apiKey: k, instanceName: l, deploymentName: d, version: 2024-10-21, assistants: true,
             models: {m3: true}}
        gateway:
          allowAnonymous: true
          groups:
            a: {assistantsVersion: "2024-05-01-preview"}
            b: {assistantsVersion: "2024-05-01-preview"}
            c: {api: v1, assistantsVersion: "2024-05-01-preview"}
        """
    )
    assert config.warnings == (
        'gateway.groups.b.assistantsVersion is ignored: group "b" does not serve the Assistants API.',
        'gateway.groups.c.assistantsVersion is ignored: group "c" uses api: v1, which takes no api-version.',
    )
    assert config.assistants_resources[0].api_version == "2024-05-01-preview"


def test_v1_group_still_needs_a_version_like_librechat() -> None:
    # The file must stay valid for LibreChat, which requires deploymentName and version.
    found = problems(config_with("instanceName: i\ndeploymentName: d", "{api: v1}"))
    assert found == ['Model "gpt-4o" in group "g" is missing a deploymentName or version.']


# -- v1 URLs ------------------------------------------------------------------------------------------

V1_CASES = {
    "instance name": ("instanceName: my-res", {}, "https://my-res.openai.azure.com/openai/v1"),
    "instance name that is a host": (
        "instanceName: https://my-res.openai.azure.com/",
        {},
        "https://my-res.openai.azure.com/openai/v1",
    ),
    "Azure form with placeholders": (
        'instanceName: my-res\nbaseURL: "https://${INSTANCE_NAME}.openai.azure.com/openai/deployments/${DEPLOYMENT_NAME}"',
        {},
        "https://my-res.openai.azure.com/openai/v1",
    ),
    "Azure form with literal deployment": (
        'instanceName: my-res\nbaseURL: "https://my-res.openai.azure.com/openai/deployments/dep/"',
        {},
        "https://my-res.openai.azure.com/openai/v1",
    ),
    "resource root with slash": (
        'instanceName: my-instance\nbaseURL: "https://my-instance.openai.azure.com/"',
        {},
        "https://my-instance.openai.azure.com/openai/v1",
    ),
    "prefix ending in /openai": (
        'instanceName: my-instance\nbaseURL: "https://apim.example.com/aoai/openai/"',
        {},
        "https://apim.example.com/aoai/openai/v1",
    ),
    "prefix from env": (
        'instanceName: my-instance\nbaseURL: "${MY_CUSTOM_BASEURL}"',
        {"MY_CUSTOM_BASEURL": "https://proxy.example.com/azure/"},
        "https://proxy.example.com/azure/openai/v1",
    ),
    "local simulator": (
        'instanceName: sim\nbaseURL: "http://127.0.0.1:${SIM_PORT}"',
        {"SIM_PORT": "8089"},
        "http://127.0.0.1:8089/openai/v1",
    ),
}


@pytest.mark.parametrize(("fields", "env", "expected"), V1_CASES.values(), ids=V1_CASES.keys())
def test_v1_base_url(fields: str, env: dict[str, str], expected: str) -> None:
    b = backend(config_with(fields + "\ndeploymentName: dep\nversion: '2024-10-21'", "{api: v1}"), env=env)
    assert b.flavor == "v1"
    assert b.base_url == expected
    assert b.api_version is None
    assert b.deployment == "dep"
    assert b.url("chat/completions") == f"{expected}/chat/completions"
    assert b.rewrites_body  # the deployment goes into the body's model
    assert b.headers == (("api-key", "secret"),)


def test_v1_only_for_the_named_group_and_every_model_of_it() -> None:
    config = load(
        """
        groups:
          - group: new
            apiKey: k
            instanceName: new-res
            version: "2024-10-21"
            models:
              a: {deploymentName: dep-a}
              b: {deploymentName: dep-b, version: "2025-04-01-preview"}
          - {group: old, apiKey: k, instanceName: old-res, deploymentName: d, version: "2024-10-21", models: {c: true}}
        gateway:
          allowAnonymous: true
          groups:
            new: {api: v1}
        """
    )
    got = {
        model: (b.flavor, b.deployment, b.url("embeddings"))
        for model, route in config.routes.items()
        for b in route.backends
    }
    assert got == {
        "a": ("v1", "dep-a", "https://new-res.openai.azure.com/openai/v1/embeddings"),
        "b": ("v1", "dep-b", "https://new-res.openai.azure.com/openai/v1/embeddings"),
        "c": ("dated", "d", "https://old-res.openai.azure.com/openai/deployments/d/embeddings?api-version=2024-10-21"),
    }


ROOT_FORMS = (
    "Forms that work: no baseURL (instanceName only); a baseURL that is the resource origin or a proxy prefix "
    "(https://host[/prefix], optionally ending in /openai); or one ending in /openai/deployments/${DEPLOYMENT_NAME}."
)


@pytest.mark.parametrize(
    "base_url",
    [
        "https://example.azure-api.net/${INSTANCE_NAME}/${DEPLOYMENT_NAME}",
        "https://gateway.ai.cloudflare.com/v1/ACCOUNT_TAG/GATEWAY/azure-openai/${INSTANCE_NAME}/${DEPLOYMENT_NAME}",
        "https://gateway.ai.cloudflare.com/v1/ACCOUNT_TAG/GATEWAY/azure-openai/my-res/dep",
    ],
    ids=["APIM placeholders", "Cloudflare placeholders", "Cloudflare literal"],
)
def test_v1_without_a_derivable_resource_root(base_url: str) -> None:
    group = f'instanceName: my-res\nbaseURL: "{base_url}"\ndeploymentName: dep\nversion: 2024-10-21'
    found = problems(config_with(group, "{api: v1}"))
    assert found == [
        (
            'Group "g" uses api: v1 (/openai/v1/...), but the gateway cannot derive the Azure resource root from '
            f"its baseURL. {ROOT_FORMS}"
        )
    ]
    assert "ACCOUNT_TAG" not in found[0]  # the URL is not echoed


def test_v1_with_a_base_url_naming_another_deployment() -> None:
    group = 'instanceName: r\nbaseURL: "https://r.openai.azure.com/openai/deployments/one"\nversion: 2024-10-21'
    config = load(config_with(group, "{api: v1}", models="a: {deploymentName: one}\n      b: {deploymentName: two}"))
    # A v1 group names the deployment in the body: the literal baseURL only shows the resource, which serves both.
    assert (
        config.routes["b"].backends[0].url("chat/completions")
        == "https://r.openai.azure.com/openai/v1/chat/completions"
    )
    assert not [w for w in config.warnings if "baseURL names" in w]


def test_root_is_not_checked_for_an_already_reported_base_url() -> None:
    found = problems(
        config_with('instanceName: i\nbaseURL: "${NOPE}"\ndeploymentName: d\nversion: 2024-10-21', "{api: v1}")
    )
    assert found == ['Azure configuration environment variable "${NOPE}" was not found.']


ENTRA = """
assistants: true
groups:
  - {group: east, instanceName: east, deploymentName: d, version: "2024-10-21", assistants: true,
     models: {gpt-4o: true}}
gateway:
  apiKeys: [{name: a, key: k1}]
  groups:
    east: {auth: entra}
"""


def test_entra_groups_send_no_key_and_resolve_to_entra_auth() -> None:
    config = load(ENTRA)
    route_backend = config.routes["gpt-4o"].backends[0]
    assert route_backend.auth == "entra" and route_backend.headers == ()
    assert config.assistants_resources[0].auth == "entra" and config.assistants_resources[0].headers == ()
    assert not config.passthrough


def test_entra_settings_problems() -> None:
    found = problems(
        """
        groups:
          - {group: keyed, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {a: true}}
          - {group: sls, apiKey: k, baseURL: "https://m.inference.ai.azure.com/v1/chat/completions", serverless: true,
             models: {b: true}}
          - {group: odd, instanceName: i, deploymentName: d, version: 2024-10-21, models: {c: true}}
        gateway:
          allowAnonymous: true
          groups:
            keyed: {auth: entra}
            sls: {auth: entra}
            odd: {auth: certificate}
        """
    )
    assert found == [
        "gateway.groups.odd.auth: Input should be 'key', 'entra' or 'passthrough'",
        'gateway.groups.keyed.auth is "entra", but group "keyed" also sets an apiKey: use one or the other.',
        'gateway.groups.sls.auth is "entra", but group "sls" also sets an apiKey: use one or the other.',
        'gateway.groups.sls.auth is "entra", but group "sls" is serverless: serverless endpoints take keys.',
    ]


def test_entra_without_caller_keys_is_an_open_relay() -> None:
    found = problems(ENTRA.replace("  apiKeys: [{name: a, key: k1}]\n", ""))
    assert found == [
        (
            'Group "east" authenticates with the app\'s Entra ID identity but gateway.apiKeys is empty, so anyone '
            "who can reach the gateway could use that identity (an open relay). Add caller keys under "
            "gateway.apiKeys, or set gateway.allowAnonymous: true if something else already restricts access."
        )
    ]
