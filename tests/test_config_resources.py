"""Resource backends (assistants, threads, vector stores, files, batches, responses) and `check`'s section."""

from __future__ import annotations

import textwrap

import pytest

from core.check import describe
from core.config.model import ResourceBackend
from tests.support.config_text import FIXTURES, FULL_ENV, load, problems


def resource(group_fields: str, models: str = "gpt-4o: true", settings: str = "{}") -> ResourceBackend:
    """The one resource backend of an assistants group "g" (endpoint assistants on)."""
    lines = "\n".join(f"    {line}" for line in textwrap.dedent(group_fields).strip().splitlines())
    config = load(
        "assistants: true\n"
        f"groups:\n  - group: g\n    apiKey: secret\n    assistants: true\n{lines}\n"
        f"    models:\n      {models}\n"
        f"gateway:\n  allowAnonymous: true\n  groups:\n    g: {settings}\n"
    )
    assert len(config.assistants_resources) == 1
    return config.assistants_resources[0]


# -- which groups ---------------------------------------------------------------------------------

GROUPS = """
groups:
  - {group: plain, apiKey: k, instanceName: plain, deploymentName: d, version: "2024-10-21", models: {a: true}}
  - {group: sweden, apiKey: k1, instanceName: sweden, deploymentName: d, version: "2024-10-21",
     assistants: true, models: {b: true}}
  - group: east
    apiKey: k2
    instanceName: east
    version: "2024-10-21"
    models:
      c: {deploymentName: dc}
      d: {deploymentName: dd, assistants: true}
gateway: {allowAnonymous: true}
"""


def test_one_resource_backend_per_assistants_group_in_config_order() -> None:
    config = load("assistants: true\n" + GROUPS)
    assert [r.group for r in config.assistants_resources] == ["sweden", "east"]
    assert config.warnings == ()
    east = config.assistants_resources[1]
    assert east.base_url == "https://east.openai.azure.com/openai"
    assert east.headers == (("api-key", "k2"),) and east.auth == "api-key"
    assert east.deployments == {"d": "dd"} and east.public_models == {"dd": "d"}


def test_no_resources_without_endpoint_assistants_and_a_warning_per_group() -> None:
    config = load(GROUPS)
    assert config.assistants_resources == ()
    assert config.warnings == tuple(
        f'Group "{name}" sets "assistants: true" (on the group or a model), but the azureOpenAI endpoint '
        'does not, so it is ignored: set "assistants: true" on the endpoint to serve the Assistants API '
        "(as LibreChat requires)."
        for name in ("sweden", "east")
    )
    assert config.routes["b"].backends[0].assistants  # the per-model flag is still recorded


@pytest.mark.parametrize("endpoint_assistants", ["assistants: true\n", ""], ids=["endpoint on", "endpoint off"])
def test_serverless_group_with_assistants_is_an_error(endpoint_assistants: str) -> None:
    found = problems(
        endpoint_assistants
        + """
groups:
  - {group: ok, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, assistants: true, models: {a: true}}
  - group: sls
    apiKey: k
    baseURL: https://m.eastus2.inference.ai.azure.com/v1/chat/completions
    serverless: true
    models: {mistral-large: {assistants: true}}
gateway: {allowAnonymous: true}
"""
    )
    assert found == [
        (
            'Group "sls" is serverless but sets "assistants: true" (on the group or a model): serverless endpoints '
            "do not serve the Assistants API."
        )
    ]


def test_deployments_and_public_models_of_an_assistants_group() -> None:
    r = resource(
        "instanceName: i\ndeploymentName: shared\nversion: 2024-10-21",
        models="gpt-4o: true\n      gpt-4o-latest: true\n      mini: {deploymentName: mini-dep}",
    )
    assert r.deployments == {"gpt-4o": "shared", "gpt-4o-latest": "shared", "mini": "mini-dep"}
    assert r.public_models == {"shared": "gpt-4o", "mini-dep": "mini"}


def test_passthrough_group_and_additional_headers() -> None:
    config = load(
        """
        assistants: true
        groups:
          - {group: byok, instanceName: i, deploymentName: d, version: 2024-10-21, assistants: true,
             additionalHeaders: {X-Team: blue}, models: {a: true}}
        gateway: {groups: {byok: {auth: passthrough}}}
        """
    )
    (r,) = config.assistants_resources
    assert r.auth == "passthrough" and r.headers == (("x-team", "blue"),)


# -- base URLs --------------------------------------------------------------------------------------

ROOT_CASES = {
    "instance name": ("instanceName: my-res", "https://my-res.openai.azure.com"),
    "Azure form with placeholders": (
        'instanceName: my-res\nbaseURL: "https://${INSTANCE_NAME}.openai.azure.com/openai/deployments/${DEPLOYMENT_NAME}"',
        "https://my-res.openai.azure.com",
    ),
    "prefix ending in /openai": (
        'instanceName: my-res\nbaseURL: "https://apim.example.com/aoai/openai/"',
        "https://apim.example.com/aoai",
    ),
    "local simulator": ('instanceName: sim\nbaseURL: "http://127.0.0.1:8089"', "http://127.0.0.1:8089"),
}


@pytest.mark.parametrize(("fields", "root"), ROOT_CASES.values(), ids=ROOT_CASES.keys())
def test_dated_resource_base_url(fields: str, root: str) -> None:
    r = resource(fields + "\ndeploymentName: dep\nversion: '2024-05-01-preview'")
    assert (r.flavor, r.base_url) == ("dated", f"{root}/openai")
    assert (r.api_version, r.responses_api_version) == ("2024-05-01-preview", "2025-04-01-preview")
    assert r.url(("threads", "t1", "runs"), "limit=5") == (
        f"{root}/openai/threads/t1/runs?limit=5&api-version=2024-05-01-preview"
    )
    assert r.url(("responses",)) == f"{root}/openai/responses?api-version=2025-04-01-preview"
    # Each segment stays one segment: nothing in it can add a path, a query or a fragment.
    assert r.url(("files", "a/../b?c#d")) == f"{root}/openai/files/a%2F..%2Fb%3Fc%23d?api-version=2024-05-01-preview"


@pytest.mark.parametrize(("fields", "root"), ROOT_CASES.values(), ids=ROOT_CASES.keys())
def test_v1_resource_base_url(fields: str, root: str) -> None:
    r = resource(
        fields + "\ndeploymentName: dep\nversion: '2024-05-01-preview'",
        settings="{api: v1}",
    )
    assert (r.flavor, r.base_url) == ("v1", f"{root}/openai/v1")
    assert r.api_version is None and r.responses_api_version is None
    assert r.url(("files",), "purpose=assistants") == f"{root}/openai/v1/files?purpose=assistants"
    assert r.deployments == {"gpt-4o": "dep"}


ROOT_FORMS = (
    "Forms that work: no baseURL (instanceName only); a baseURL that is the resource origin or a proxy prefix "
    "(https://host[/prefix], optionally ending in /openai); or one ending in /openai/deployments/${DEPLOYMENT_NAME}."
)
APIM = 'baseURL: "https://x.azure-api.net/${INSTANCE_NAME}/${DEPLOYMENT_NAME}"'


def apim_groups(endpoint_assistants: bool, v1: bool) -> str:
    return textwrap.dedent(
        f"""
        assistants: {str(endpoint_assistants).lower()}
        groups:
          - {{group: apim, apiKey: k, instanceName: i, {APIM}, deploymentName: d, version: 2024-10-21,
             assistants: true, models: {{a: true}}}}
          - {{group: apim-v1, apiKey: k, instanceName: i, {APIM}, deploymentName: d, version: 2024-10-21,
             models: {{b: {{assistants: true}}, c: true}}}}
        gateway:
          allowAnonymous: true
          groups: {{apim-v1: {{api: {"v1" if v1 else "dated"}}}}}
        """
    )


def test_assistants_group_without_a_derivable_root() -> None:
    assert problems(apim_groups(endpoint_assistants=True, v1=True)) == [
        (
            'Group "apim" serves the Assistants API (/openai/assistants, /openai/files, ...), but the gateway cannot '
            f"derive the Azure resource root from its baseURL. {ROOT_FORMS}"
        ),
        (
            'Group "apim-v1" uses api: v1 (/openai/v1/...) and serves the Assistants API (/openai/assistants, '
            "/openai/files, ...), but the gateway cannot derive the Azure resource root from its baseURL. "
            f"{ROOT_FORMS}"
        ),
    ]
    # Without endpoint assistants, dated APIM groups are fine: their routes need no root.
    config = load(apim_groups(endpoint_assistants=False, v1=False))
    assert list(config.routes) == ["a", "b", "c"] and config.assistants_resources == ()


# -- api-versions -----------------------------------------------------------------------------------

VERSION_CASES = {
    "explicit assistantsVersion wins": (
        "version: '2024-10-21'",
        "gpt-4o: {version: '2025-04-01-preview'}",
        "{assistantsVersion: '2024-05-01-preview'}",
        ("2024-05-01-preview", "2025-04-01-preview"),
    ),
    "newest preview among group and model versions": (
        "version: '2024-05-01-preview'",
        "gpt-4o: {version: '2024-08-01-preview'}\n      mini: {version: '2024-02-15-preview'}",
        "{}",
        ("2024-08-01-preview", "2025-04-01-preview"),
    ),
    "a group-level preview beats older model ones": (
        "version: '2024-09-01-preview'",
        "gpt-4o: {version: '2024-03-01-preview'}",
        "{}",
        ("2024-09-01-preview", "2025-04-01-preview"),
    ),
    "GA versions never qualify": (
        "version: '2025-06-01'",
        "gpt-4o: {version: '2024-03-01-preview'}",
        "{}",
        ("2024-03-01-preview", "2025-04-01-preview"),
    ),
    "previews before 2024-02-15 do not qualify": (
        "version: '2024-02-01'",
        "gpt-4o: {version: '2023-12-01-preview'}",
        "{}",
        ("2025-04-01-preview", "2025-04-01-preview"),
    ),
    "default": ("version: '2024-10-21'", "gpt-4o: true", "{}", ("2025-04-01-preview", "2025-04-01-preview")),
    "responses: newest preview from 2025-03-01 on": (
        "version: '2025-03-01-preview'",
        "gpt-4o: {version: '2024-05-01-preview'}",
        "{}",
        ("2025-03-01-preview", "2025-03-01-preview"),
    ),
    "responses: assistantsVersion counts": (
        "version: '2025-03-01-preview'",
        "gpt-4o: true",
        "{assistantsVersion: '2025-05-01-preview'}",
        ("2025-05-01-preview", "2025-05-01-preview"),
    ),
    "responses: a newer configured version beats assistantsVersion": (
        "version: '2024-10-21'",
        "gpt-4o: {version: '2025-05-01-preview'}",
        "{assistantsVersion: '2024-05-01-preview'}",
        ("2024-05-01-preview", "2025-05-01-preview"),
    ),
}


@pytest.mark.parametrize(("group", "models", "settings", "expected"), VERSION_CASES.values(), ids=VERSION_CASES.keys())
def test_api_version_choice(group: str, models: str, settings: str, expected: tuple[str, str]) -> None:
    r = resource(f"instanceName: i\ndeploymentName: d\n{group}", models=models, settings=settings)
    assert (r.api_version, r.responses_api_version) == expected


def test_versions_of_the_groups_other_models_count() -> None:
    config = load(
        """
        assistants: true
        groups:
          - group: g
            apiKey: k
            instanceName: i
            version: "2024-10-21"
            models:
              chat: {deploymentName: chat, version: "2024-09-01-preview"}
              helper: {deploymentName: helper, assistants: true}
        gateway: {allowAnonymous: true}
        """
    )
    (r,) = config.assistants_resources
    assert r.api_version == "2024-09-01-preview"
    assert r.deployments == {"helper": "helper"}


# -- a real file ------------------------------------------------------------------------------------


def test_full_librechat_yaml_resources() -> None:
    config = load((FIXTURES / "librechat_full.yaml").read_text(), FULL_ENV)
    assert config.assistants_resources == (
        ResourceBackend(
            group="prod-sweden",
            base_url="https://contoso-sweden.openai.azure.com/openai",
            api_version="2024-05-01-preview",
            responses_api_version="2025-04-01-preview",
            flavor="dated",
            auth="api-key",
            headers=(("api-key", "sweden-secret"),),
            deployments={"gpt-4-turbo": "gpt-4-turbo"},
            public_models={"gpt-4-turbo": "gpt-4-turbo"},
        ),
    )


# -- `python -m core check` -------------------------------------------------------------------------


def test_check_lists_resource_backends_after_the_route_table() -> None:
    config = load(
        """
        assistants: true
        groups:
          - group: sweden
            apiKey: sweden-secret
            instanceName: sweden-res
            version: "2024-10-21"
            assistants: true
            models:
              gpt-4o: {deploymentName: gpt-4o-dep, version: "2024-08-01-preview"}
              gpt-4o-mini: true
            deploymentName: gpt-4o-mini
          - {group: east, instanceName: east, deploymentName: d, version: "2024-10-21",
             models: {gpt-4.1: {assistants: true}, other: true}}
        gateway:
          groups: {east: {api: v1, auth: passthrough}}
          allowAnonymous: true
        """
    )
    lines = describe(config).splitlines()
    start = lines.index("Resource APIs (assistants, threads, vector stores, files, batches, responses):")
    # After the route table and what is known of its models (whose last row is "other"), before the callers.
    assert lines[2].startswith("MODEL ") and lines[start - 2].startswith("  other ") and lines[start - 1] == ""
    header, sweden, east = lines[start + 1 : start + 4]
    assert header.split() == ["GROUP", "BASE", "URL", "API-VERSION", "RESPONSES", "AUTH", "MODELS"]
    assert sweden.split() == [
        "sweden", "https://sweden-res.openai.azure.com/openai", "2024-08-01-preview", "2025-04-01-preview",
        "api-key", "gpt-4o=gpt-4o-dep,", "gpt-4o-mini",
    ]  # fmt: skip
    assert east.split() == [
        "east", "https://east.openai.azure.com/openai/v1", "v1", "v1", "pass-through", "gpt-4.1=d",
    ]  # fmt: skip
    # Then the prices (these models are in the built-in table), then the callers.
    assert lines[start + 4] == "" and lines[start + 5].startswith("Prices per million tokens")
    assert "sweden-secret" not in describe(config)


def test_check_says_when_resource_apis_are_off() -> None:
    config = load(
        "groups:\n"
        "  - {group: g, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {a: true}}\n"
        "gateway: {allowAnonymous: true}\n"
    )
    lines = describe(config).splitlines()
    off = (
        "Resource APIs (assistants, threads, vector stores, files, batches, responses): "
        "off (endpoint assistants not enabled)"
    )
    assert off in lines
    assert lines[lines.index(off) - 2].startswith("  a ")  # right after the route table and its models
