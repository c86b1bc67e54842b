"""Which model runs behind each deployment (core/models/families.py through the configuration): a model's
baseModel, else its id, else its deployment's name; fitToModel per group and per model; and what `check`
concludes and recommends."""

from __future__ import annotations

import subprocess
import sys

from tests.support.config_text import load
from tests.support.gateway_process import ROOT

MODELS = """
endpoints:
  azureOpenAI:
    groups:
      - group: east
        apiKey: k
        instanceName: east
        version: "2024-10-21"
        models:
          gpt-5-mini: {deploymentName: prod-mini}
          reasoner: {deploymentName: prod-1, baseModel: o4-mini}
          nano: {deploymentName: gpt-5-nano}
          custom: {deploymentName: house-model}
          untouched: {deploymentName: gpt-5, fitToModel: false}
          gpt-4o: {deploymentName: gpt-4o}
          agent: {deploymentName: gpt-5-codex}
      - group: quiet
        apiKey: k
        instanceName: quiet
        version: "2025-04-01-preview"
        models:
          o3-mini: {deploymentName: o3-mini}
          opted-in: {deploymentName: o3-mini, fitToModel: true}
      - group: serverless
        apiKey: k
        baseURL: "https://example.invalid/v1/chat/completions"
        serverless: true
        models:
          gpt-5-looking-name: true
gateway:
  allowAnonymous: true
  groups:
    quiet: {fitToModel: false}
"""


def test_the_model_behind_each_deployment_and_how_it_is_known() -> None:
    routes = load(MODELS).routes
    found = {
        model: (backend.family.name if backend.family else None, backend.family_from)
        for model, route in routes.items()
        for backend in route.backends
    }
    assert found == {
        "gpt-5-mini": ("gpt-5", "model id"),
        "reasoner": ("o4-mini", "baseModel"),
        "nano": ("gpt-5", "deployment name"),
        "custom": (None, None),
        "untouched": ("gpt-5", "deployment name"),
        "gpt-4o": ("gpt-4o", "model id"),
        "agent": ("gpt-5-codex", "deployment name"),
        "o3-mini": ("o3-mini", "model id"),
        "opted-in": ("o3-mini", "deployment name"),
        "gpt-5-looking-name": (None, None),  # a serverless model is no Azure OpenAI deployment
    }


def test_fit_to_model_is_the_groups_unless_the_model_says() -> None:
    routes = load(MODELS).routes
    fits = {model: route.backends[0].fit for model, route in routes.items()}
    assert fits["gpt-5-mini"] is not None and fits["gpt-5-mini"].rename_max_tokens
    assert fits["untouched"] is None  # the model's own false
    assert fits["o3-mini"] is None  # its group's false
    assert fits["opted-in"] is not None and fits["opted-in"].rename_max_tokens  # the model's true wins
    custom = fits["custom"]
    # Unknown: its parameters sent as they come, repaired if refused; its developer messages go as system
    # messages, since its group's api-version (2024-10-21) predates that role.
    assert custom is not None and not custom.changes_parameters and custom.developer_as_system
    assert fits["opted-in"].developer_as_system is False  # its group's 2025-04-01-preview takes the role


def test_each_deployment_knows_its_resources_responses_api_for_responses_only_models() -> None:
    text = MODELS.replace(
        "      - group: serverless\n",
        "      - group: fresh\n        apiKey: k\n        instanceName: fresh\n"
        '        version: "2024-10-21"\n        models:\n'
        "          gpt-5-codex: {deploymentName: codex}\n      - group: serverless\n",
    ).replace("    quiet: {fitToModel: false}\n", "    quiet: {fitToModel: false}\n    fresh: {api: v1}\n")
    routes = load(text).routes
    urls = {model: route.backends[0].responses_url for model, route in routes.items()}
    # The dated API's Responses lives at the resource with a version that serves it, whatever the group's.
    assert urls["gpt-5-mini"] == "https://east.openai.azure.com/openai/responses?api-version=2025-04-01-preview"
    assert urls["o3-mini"] == "https://quiet.openai.azure.com/openai/responses?api-version=2025-04-01-preview"
    assert urls["gpt-5-codex"] == "https://fresh.openai.azure.com/openai/v1/responses"
    assert urls["gpt-5-looking-name"] is None  # a serverless endpoint has no resource to ask
    codex = routes["gpt-5-codex"].backends[0].fit
    assert codex is not None and codex.responses_only


def test_check_shows_each_conclusion_and_recommends_the_v1_api_where_the_version_is_too_old(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(MODELS)
    done = subprocess.run(
        [sys.executable, "-m", "core", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "CONFIG_PATH": str(path)},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    lines = lines[next(i for i, line in enumerate(lines) if line.startswith("Models behind the deployments")) :]
    reasoner = next(line for line in lines if line.strip().startswith("reasoner "))
    assert "o4-mini" in reasoner and "reasoning" in reasoner and "baseModel" in reasoner and "fitted" in reasoner
    agent = next(line for line in lines if line.strip().startswith("agent "))
    assert "Responses-only" in agent and "served through the resource's Responses API" in agent
    custom = next(line for line in lines if line.strip().startswith("custom "))
    assert "?" in custom and "repaired if Azure refuses a parameter" in custom
    assert any("untouched" in line and "fitToModel: false" in line for line in lines)
    assert "  gpt-5-mini: gpt-5 is documented on Azure's v1 API only: set gateway.groups.east: {api: v1}" in lines
    assert (
        "  reasoner: o4-mini needs api-version 2025-04-01-preview or later (the group sends 2024-10-21): "
        "set gateway.groups.east: {api: v1}"
    ) in lines
    assert not any(line.startswith("  o3-mini:") for line in lines)  # its group's version is recent enough
