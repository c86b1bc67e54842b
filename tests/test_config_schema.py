"""The schema: strict types and constraints, and the JSON Schema for editors saying exactly that."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.config.api_versions import API_VERSION_FORMS
from core.config.schema import error_path, json_schema
from tests.support.config_text import load, problems
from tests.support.json_values import json_object

ROOT = Path(__file__).resolve().parent.parent


def test_committed_schema_is_fresh() -> None:
    committed = json.loads((ROOT / "config" / "schema.json").read_text())
    assert committed == json_schema(), "regenerate: python -m core.config.schema > config/schema.json"


def test_module_main_prints_the_schema() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "core.config.schema"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == json_schema()


def test_every_property_has_a_description() -> None:
    schema = json_schema()
    undocumented = [
        f"{name}.{prop}"
        for name, definition in schema["$defs"].items()
        for prop, spec in definition.get("properties", {}).items()
        if not spec.get("description")
    ]
    assert undocumented == []


def test_document_shapes_and_keys() -> None:
    schema = json_schema()
    titles = {_definition(schema, option)["title"] for option in schema["anyOf"]}
    assert titles == {"librechat.yaml", "azureOpenAI section", "azureOpenAI contents", "stulzq config.yaml"}
    defs = schema["$defs"]
    assert set(defs["Group"]["properties"]) == {
        "group", "apiKey", "instanceName", "deploymentName", "version", "baseURL", "additionalHeaders",
        "serverless", "addParams", "dropParams", "forcePrompt", "assistants", "models",
    }  # fmt: skip
    assert set(defs["GatewaySection"]["properties"]) == {
        "apiKeys", "allowAnonymous", "timeouts", "maxBodyBytes", "maxResponseBytes", "normalizeStreams", "groups",
        "forwardHeaders", "maxCooldown", "pools", "cors",
    }  # fmt: skip
    assert defs["GatewaySection"]["properties"]["groups"]["additionalProperties"] == {"$ref": "#/$defs/GroupSection"}
    group_section = defs["GroupSection"]
    assert set(group_section["properties"]) == {"api", "auth", "assistantsVersion", "fitToModel"}
    assert group_section["properties"]["api"]["enum"] == ["dated", "v1"]
    assert group_section["properties"]["api"]["default"] == "dated"
    assert group_section["additionalProperties"] is False
    assert defs["GatewaySection"]["properties"]["maxBodyBytes"]["default"] == 25 * 1024 * 1024
    # Typos show up in editors; LibreChat's own keys around the section do not.
    assert defs["Group"]["additionalProperties"] is False
    assert defs["LibreChatFile"]["additionalProperties"] is True


def test_error_path() -> None:
    assert error_path(("endpoints", "azureOpenAI", "groups", 1, "dropParams")) == (
        "endpoints.azureOpenAI.groups[1].dropParams"
    )
    assert error_path(("groups", 0, "models", "gpt-4", "object", "version")) == "groups[0].models.gpt-4.version"
    # A model may even be called "object", like the union tag.
    loc = ("groups", 0, "models", "object", "object", "version")
    assert error_path(loc) == "groups[0].models.object.version"
    assert error_path(("gateway", "apiKeys", 0, "models", 1)) == "gateway.apiKeys[0].models[1]"


def _definition(schema: dict[str, Any], option: dict[str, Any]) -> dict[str, Any]:
    return json_object(schema["$defs"][option["$ref"].rsplit("/", 1)[-1]])


# -- rules the types enforce ----------------------------------------------------------------

GROUP = (
    "groups:\n"
    "  - {group: g, apiKey: k, instanceName: i, deploymentName: d, version: '2024-10-21', %s models: {m: true}}\n"
)
ANONYMOUS = "gateway: {allowAnonymous: true}\n"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("serverless: 'true',", "groups[0].serverless: Input should be a valid boolean"),
        ("forcePrompt: 'yes',", "groups[0].forcePrompt: Input should be a valid boolean"),
        ("assistants: 1,", "groups[0].assistants: Input should be a valid boolean"),
    ],
)
def test_booleans_are_strict_as_in_librechat(fields: str, expected: str) -> None:
    assert problems(GROUP % fields + ANONYMOUS) == [expected]


def test_gateway_booleans_are_strict() -> None:
    found = problems(GROUP % "" + "gateway: {allowAnonymous: 'true', normalizeStreams: 'false'}\n")
    assert "gateway.allowAnonymous: Input should be a valid boolean" in found
    assert "gateway.normalizeStreams: Input should be a valid boolean" in found


@pytest.mark.parametrize("version", ["2024-10-21", "2025-04-01-preview", "latest", "preview"])
def test_real_api_versions_are_accepted(version: str) -> None:
    text = GROUP.replace("'2024-10-21'", f"'{version}'") % "" + ANONYMOUS
    assert load(text).routes["m"].backends[0].api_version == version


@pytest.mark.parametrize(
    "version", ["2024-13-01", "2024-02-30-preview", "v1", "2024-10-21 ", "24-10-21", "2024-10-21-beta"]
)
def test_api_versions_must_be_real_dates_or_known_names(version: str) -> None:
    text = GROUP.replace("'2024-10-21'", f"'{version}'") % "" + ANONYMOUS
    assert problems(text) == [f'groups[0].version: "{version}" is not an api-version: {API_VERSION_FORMS}']


def test_model_and_stulzq_versions_are_checked_too() -> None:
    text = (
        GROUP % "" + "  - {group: h, apiKey: k, instanceName: i, models: {n: {deploymentName: x, version: 2024-1-1}}}\n"
    )
    assert problems(text + ANONYMOUS) == [
        f'groups[1].models.n.version: "2024-1-1" is not an api-version: {API_VERSION_FORMS}'
    ]
    stulzq = (
        "deployment_config:\n"
        "  - {deployment_name: d, model_name: m, endpoint: 'https://x.openai.azure.com', api_version: v2}\n"
    )
    assert problems(stulzq) == [f'deployment_config[0].api_version: "v2" is not an api-version: {API_VERSION_FORMS}']


def test_an_unresolved_version_is_reported_once() -> None:
    text = GROUP.replace("'2024-10-21'", "'${AZURE_VERSION}'") % "" + ANONYMOUS
    assert problems(text) == ['Azure configuration environment variable "${AZURE_VERSION}" was not found.']
    assert load(text, {"AZURE_VERSION": "2024-06-01"}).routes["m"].backends[0].api_version == "2024-06-01"


def test_web_search_in_add_params_must_be_a_boolean() -> None:
    assert problems(GROUP % "addParams: {web_search: 'yes'}," + ANONYMOUS) == [
        "groups[0].addParams.web_search: Input should be a valid boolean"
    ]
    backend = load(GROUP % "addParams: {web_search: true, max_tokens: 9}," + ANONYMOUS).routes["m"].backends[0]
    assert backend.add_params == {"web_search": True, "max_tokens": 9}


def test_gateway_enumerations_and_caller_strings() -> None:
    found = problems(
        GROUP % "" + "gateway:\n  apiKeys: [{name: ' ', key: ''}]\n  groups:\n    g: {api: v2, auth: certificate}\n"
    )
    assert found == [
        "gateway.apiKeys[0].key: Value must not be empty or blank",
        "gateway.apiKeys[0].name: Value must not be empty or blank",
        "gateway.groups.g.api: Input should be 'dated' or 'v1'",
        "gateway.groups.g.auth: Input should be 'key', 'entra' or 'passthrough'",
    ]


def test_json_schema_says_what_is_enforced() -> None:
    defs = json_schema()["$defs"]
    group = defs["Group"]["properties"]
    assert group["serverless"]["type"] == "boolean"
    assert group["addParams"]["properties"] == {"web_search": {"type": "boolean"}}
    version = re.compile(group["version"]["anyOf"][0]["pattern"])
    for good in ("2024-10-21", "2025-04-01-preview", "latest", "${AZURE_VERSION}", "@Microsoft.KeyVault(SecretUri=x)"):
        assert version.search(good), good
    for bad in ("v1", "2024-10-21-beta", "24-10-21"):
        assert not version.search(bad), bad
    assistants = re.compile(defs["GroupSection"]["properties"]["assistantsVersion"]["anyOf"][0]["pattern"])
    assert assistants.search("2025-04-01-preview") and not assistants.search("2024-10-21")
    assert defs["GroupSection"]["properties"]["auth"]["enum"] == ["key", "entra", "passthrough"]
    caller = defs["ApiKey"]["properties"]
    assert caller["key"]["minLength"] == 1 and caller["name"]["minLength"] == 1
