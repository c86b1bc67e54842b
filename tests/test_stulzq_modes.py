"""stulzq/azure-openai-proxy compatibility: env mode, its config.yaml, key pass-through."""

import httpx

from tests.support.standard import SECRETS

CHAT = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]}
AZURE_KEY = SECRETS["EASTUS_KEY"]


def test_env_mode_maps_models_and_passes_the_callers_key_through(sim, start_gateway) -> None:
    gateway = start_gateway(
        None,
        {
            "AZURE_OPENAI_ENDPOINT": f"{sim.url}/",
            "AZURE_OPENAI_MODEL_MAPPER": "gpt-3.5-turbo=gpt-4o-dep, text-embedding-ada-002=embed-dep",
        },
    )
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {AZURE_KEY}"}
    )
    assert response.status_code == 200, response.text
    (upstream,) = sim.requests
    assert upstream.path == "/openai/deployments/gpt-4o-dep/chat/completions"
    assert upstream.raw_query == "api-version=2024-02-01"  # stulzq's default
    assert upstream.headers["api-key"] == AZURE_KEY and "authorization" not in upstream.headers

    models = httpx.get(f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {AZURE_KEY}"}).json()
    assert [m["id"] for m in models["data"]] == ["gpt-3.5-turbo", "text-embedding-ada-002"]  # stulzq #76: not empty

    unmapped = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={**CHAT, "model": "gpt-4"},
        headers={"Authorization": f"Bearer {AZURE_KEY}"},
    )
    assert unmapped.status_code == 404 and unmapped.json()["error"]["code"] == "model_not_found"

    no_key = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT)
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "invalid_api_key"

    wrong_key = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer nope"})
    assert wrong_key.status_code == 401  # Azure's own 401, relayed OpenAI-shaped
    assert set(wrong_key.json()["error"]) >= {"message", "type", "param", "code"}


def test_env_mode_api_version_setting(sim, start_gateway) -> None:
    gateway = start_gateway(
        None,
        {
            "AZURE_OPENAI_ENDPOINT": sim.url,
            "AZURE_OPENAI_API_VER": "2024-10-21",
            "AZURE_OPENAI_MODEL_MAPPER": "gpt-3.5-turbo=gpt-4o-dep",
        },
    )
    httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers={"api-key": AZURE_KEY})
    assert sim.requests[0].raw_query == "api-version=2024-10-21"


def test_stulzq_config_yaml_with_and_without_keys(sim, start_gateway) -> None:
    config = f"""
api_base: "/v1"
deployment_config:
  - deployment_name: "gpt-4o-dep"
    model_name: "gpt-3.5-turbo"
    endpoint: "{sim.url}/"
    api_version: "2024-02-01"
  - deployment_name: "embed-dep"
    model_name: "text-embedding-ada-002"
    endpoint: "{sim.url}/"
    api_version: "2024-10-21"
"""
    gateway = start_gateway(config)
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {AZURE_KEY}"}
    )
    assert response.status_code == 200, response.text
    embedding = httpx.post(
        f"{gateway.url}/v1/embeddings",
        json={"model": "text-embedding-ada-002", "input": "x"},
        headers={"Authorization": f"Bearer {AZURE_KEY}"},
    )
    assert embedding.status_code == 200
    assert [(r.path, r.raw_query) for r in sim.requests] == [
        ("/openai/deployments/gpt-4o-dep/chat/completions", "api-version=2024-02-01"),
        ("/openai/deployments/embed-dep/embeddings", "api-version=2024-10-21"),
    ]


def test_config_yaml_with_server_keys_and_no_gateway_keys_refuses_to_start(tmp_path) -> None:
    from tests.support.gateway_process import GatewayProcess

    config = """
deployment_config:
  - deployment_name: "d"
    model_name: "gpt-3.5-turbo"
    endpoint: "https://x.openai.azure.com/"
    api_key: "11111111111"
"""
    code, stderr = GatewayProcess(config, {}, tmp_path).run_to_exit()
    assert code == 2
    assert "refusing to start" in stderr and "allowAnonymous" in stderr
    assert "11111111111" not in stderr
