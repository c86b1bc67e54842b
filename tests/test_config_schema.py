"""The JSON Schema for editors: committed file is fresh, every field is described."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from core.config.schema import error_path, json_schema

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
    assert set(defs["Gateway"]["properties"]) == {
        "apiKeys", "allowAnonymous", "timeouts", "maxBodyBytes", "maxResponseBytes", "normalizeStreams", "groups",
        "forwardHeaders",
    }  # fmt: skip
    assert defs["Gateway"]["properties"]["groups"]["additionalProperties"] == {"$ref": "#/$defs/GroupSettings"}
    group_settings = defs["GroupSettings"]
    assert set(group_settings["properties"]) == {"api", "auth", "assistantsVersion"}
    assert group_settings["properties"]["api"]["enum"] == ["dated", "v1"]
    assert group_settings["properties"]["api"]["default"] == "dated"
    assert group_settings["properties"]["assistantsVersion"]["pattern"] == r"^\d{4}-\d{2}-\d{2}-preview$"
    assert group_settings["additionalProperties"] is False
    assert defs["Gateway"]["properties"]["maxBodyBytes"]["default"] == 25 * 1024 * 1024
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
    return schema["$defs"][option["$ref"].rsplit("/", 1)[-1]]
