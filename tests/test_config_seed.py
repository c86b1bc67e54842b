"""The LibreChat Azure OpenAI doc's examples, copied verbatim into tests/fixtures/config/seed_*.yaml.

Examples with server-side keys and no `gateway:` section also hit the no-open-relay rule,
so each test either appends `gateway: {allowAnonymous: true}` or expects that message too.
Fragments whose `# ...` comment stands for omitted settings get the minimal fill-in.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError
from core.config.load import load_config_text

FIXTURES = Path(__file__).parent / "fixtures" / "config"
ALLOW_ANONYMOUS = "gateway:\n  allowAnonymous: true\n"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def load(text: str, env: dict[str, str]):
    return load_config_text(text, env, "seed")


def test_comprehensive_example() -> None:
    env = {"WESTUS_API_KEY": "w", "AZURE_MISTRAL_API_KEY": "m", "SWEDEN_API_KEY": "s"}
    config = load(fixture("seed_comprehensive.yaml") + ALLOW_ANONYMOUS, env)
    assert list(config.routes) == [
        "gpt-4-vision-preview",
        "gpt-3.5-turbo",
        "gpt-4-1106-preview",
        "mistral-large",
        "gpt-4-turbo",
    ]
    urls = {model: route.backends[0].url("chat/completions") for model, route in config.routes.items()}
    west = "https://my-resource-westus.openai.azure.com/openai/deployments"
    assert urls == {
        "gpt-4-vision-preview": f"{west}/gpt-4-vision-preview/chat/completions?api-version=2024-03-01-preview",
        "gpt-3.5-turbo": f"{west}/gpt-35-turbo/chat/completions?api-version=2024-03-01-preview",
        "gpt-4-1106-preview": f"{west}/gpt-4-1106-preview/chat/completions?api-version=2024-03-01-preview",
        "mistral-large": "https://Mistral-large-vnpet-serverless.region.inference.ai.azure.com/v1/chat/completions",
        "gpt-4-turbo": "https://my-resource-sweden.openai.azure.com/openai/deployments/gpt-4-1106-preview"
        "/chat/completions?api-version=2024-03-01-preview",
    }
    assert config.routes["gpt-4-turbo"].backends[0].assistants
    mistral = config.routes["mistral-large"].backends[0]
    assert dict(mistral.headers) == {"api-key": "m", "authorization": "Bearer m"}
    assert config.warnings == ()


def test_comprehensive_example_without_env_and_gateway() -> None:
    with pytest.raises(ConfigError) as caught:
        load(fixture("seed_comprehensive.yaml"), {})
    assert caught.value.problems[:3] == [
        'Azure configuration environment variable "${WESTUS_API_KEY}" was not found.',
        'Azure configuration environment variable "${AZURE_MISTRAL_API_KEY}" was not found.',
        'Azure configuration environment variable "${SWEDEN_API_KEY}" was not found.',
    ]
    assert len(caught.value.problems) == 4
    assert caught.value.problems[3].startswith(
        'Groups "my-resource-westus", "mistral-inference", "my-resource-sweden" hold a server-side apiKey'
    )


def test_model_deployments_example_fails_like_librechat() -> None:
    env = {"WESTUS_API_KEY": "w", "EASTUS_API_KEY": "e"}
    message = 'Model "gpt-3.5-turbo" in group "my-westus" is missing a deploymentName or version.'
    with pytest.raises(ConfigError) as caught:
        load(fixture("seed_model_deployments.yaml") + ALLOW_ANONYMOUS, env)
    assert caught.value.problems == [message]

    with pytest.raises(ConfigError) as caught:
        load(fixture("seed_model_deployments.yaml"), env)
    assert caught.value.problems[0] == message
    assert "open relay" in caught.value.problems[1]


def test_serverless_example() -> None:
    env = {"AZURE_MISTRAL_API_KEY": "m", "AZURE_LLAMA2_70B_API_KEY": "l", "AZURE_PHI3_MEDIUM_API_KEY": "p"}
    config = load(fixture("seed_serverless.yaml") + ALLOW_ANONYMOUS, env)
    assert list(config.routes) == ["mistral-large", "llama-70b-chat", "phi-3-medium-128k-instruct"]
    phi = config.routes["phi-3-medium-128k-instruct"].backends[0]
    assert phi.serverless and phi.deployment is None and phi.api_version is None
    assert phi.url("chat/completions") == (
        "https://Phi-3-medium-128k-instruct-abcde-serverless.eastus2.inference.ai.azure.com/v1/chat/completions"
    )
    assert phi.headers == (("api-key", "p"), ("authorization", "Bearer p"))


def test_group_level_example() -> None:
    text = fixture("seed_group_level.yaml").replace(
        "        # ... (model-level configurations)", "          gpt-3.5-turbo: true"
    )
    config = load(text + ALLOW_ANONYMOUS, {"AZURE_API_KEY": "k"})
    backend = config.routes["gpt-3.5-turbo"].backends[0]
    assert backend.url("chat/completions") == (
        "https://my-instance.openai.azure.com/openai/deployments/gpt-35-turbo/chat/completions"
        "?api-version=2023-03-15-preview"
    )
    assert backend.headers == (("api-key", "k"), ("customheader", "HeaderValue"))
    assert backend.add_params == {"max_tokens": 2048, "temperature": 0.7}
    assert backend.drop_params == {"frequency_penalty", "presence_penalty"}
    assert not backend.force_prompt


def test_endpoint_level_example() -> None:
    group = (
        "      - group: g\n        apiKey: k\n        instanceName: i\n        deploymentName: d\n"
        '        version: "2024-03-01-preview"\n        assistants: true\n        models:\n'
        "          gpt-3.5-turbo-1106: true"
    )
    placeholder = "      # ... (group-level and model-level configurations)"
    text = fixture("seed_endpoint_level.yaml").replace(placeholder, group)
    config = load(text + ALLOW_ANONYMOUS, {})
    assert list(config.routes) == ["gpt-3.5-turbo-1106"]
    assert config.warnings == ()


def test_assistants_example() -> None:
    text = fixture("seed_assistants.yaml").replace(
        "          # ... (model-level configuration)", "          gpt-4-turbo: {deploymentName: gpt-4-turbo}"
    )
    config = load(text + ALLOW_ANONYMOUS, {"SWEDEN_API_KEY": "s"})
    backend = config.routes["gpt-4-turbo"].backends[0]
    assert backend.assistants
    assert backend.base_url == "https://actual-instance-name.openai.azure.com/openai/deployments/gpt-4-turbo"
    assert backend.api_version == "2024-03-01-preview"
