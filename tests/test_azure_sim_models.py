"""The simulator plays the model each deployment runs: its name (and version) in answers, the operations it serves,
what a reasoning model refuses, and the Responses API's tools and structured outputs, over real sockets with the
official openai SDK where it fits."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from azure_sim import AzureSimulator
from tests.support.json_values import json_object

KEY = "sim-key"
GA = "?api-version=2024-10-21"
MODELS = {"chat": "gpt-5-mini", "legacy-name": "gpt-4o", "pinned": "o3-2025-04-16", "agent": "gpt-5.1-codex"}
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
RESPONSES_ONLY = ["gpt-5-codex", "codex-mini", "gpt-5-pro", "o3-pro", "o1-pro", "computer-use-preview", "agent"]


def not_supported(operation: str, model: str) -> dict[str, Any]:
    message = (
        f"The {operation} operation does not work with the specified model, {model}. Please choose different model "
        "and try again. You can learn more about which models can be used with each operation here: "
        "https://go.microsoft.com/fwlink/?linkid=2197993."
    )
    return {"error": {"code": "OperationNotSupported", "message": message}}


@pytest.fixture(scope="module")
def _server() -> Iterator[AzureSimulator]:
    with AzureSimulator(api_keys={KEY}, models=MODELS) as sim:
        yield sim


@pytest.fixture
def sim(_server: AzureSimulator) -> Iterator[AzureSimulator]:
    _server.reset()
    yield _server


@pytest.fixture
def client(sim: AzureSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers={"api-key": KEY}, timeout=5) as c:
        yield c


@pytest.fixture
def sdk(sim: AzureSimulator) -> openai.OpenAI:
    """The SDK against Azure's v1 scheme, where ``model`` names the deployment."""
    return openai.OpenAI(base_url=f"{sim.url}/openai/v1", api_key=KEY, max_retries=0)


def chat(client: httpx.Client, deployment: str, **body: Any) -> httpx.Response:
    return client.post(f"/openai/deployments/{deployment}/chat/completions{GA}", json={"messages": MESSAGES, **body})


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return json_object(response.json())


# ----------------------------------------------------------------------------------------------- which model


@pytest.mark.parametrize(
    "deployment, model",
    [
        ("gpt-5-mini", "gpt-5-mini-2025-08-07"),
        ("o4-mini", "o4-mini-2025-04-16"),
        ("o3", "o3-2025-04-16"),
        ("gpt-5.1", "gpt-5.1-2025-11-13"),
        ("gpt-5.2", "gpt-5.2-2025-12-11"),
        ("chat", "gpt-5-mini-2025-08-07"),  # models= names what the deployment runs
        ("pinned", "o3-2025-04-16"),  # a dated model name keeps its date
        ("gpt-4o", "gpt-4o-2024-08-06"),  # today's answer for any other deployment
        ("my-deployment", "gpt-4o-2024-08-06"),
        ("legacy-name", "gpt-4o-2024-08-06"),
    ],
)
def test_an_answer_names_the_model_the_deployment_runs(client: httpx.Client, deployment: str, model: str) -> None:
    assert ok(chat(client, deployment))["model"] == model
    streamed = client.post(
        f"/openai/deployments/{deployment}/chat/completions{GA}", json={"messages": MESSAGES, "stream": True}
    )
    chunks = [line for line in streamed.text.splitlines() if line.startswith("data: {")]
    assert all(f'"model":"{model}"' in line or '"model":""' in line for line in chunks)  # "": the filter event
    assert sum(f'"model":"{model}"' in line for line in chunks) >= 3


def test_the_v1_scheme_names_a_known_model_and_echoes_any_other_deployment(sdk: openai.OpenAI) -> None:
    assert sdk.chat.completions.create(model="chat", messages=MESSAGES).model == "gpt-5-mini-2025-08-07"
    assert sdk.chat.completions.create(model="o3", messages=MESSAGES).model == "o3-2025-04-16"
    assert sdk.chat.completions.create(model="my-gpt-4o", messages=MESSAGES).model == "my-gpt-4o"  # as today


@pytest.mark.parametrize("deployment", RESPONSES_ONLY)
def test_responses_only_models_refuse_chat_completions_and_completions(client: httpx.Client, deployment: str) -> None:
    model = MODELS.get(deployment, deployment)
    for body in ({"messages": MESSAGES}, {"messages": MESSAGES, "stream": True}):
        r = client.post(f"/openai/deployments/{deployment}/chat/completions{GA}", json=body)
        assert (r.status_code, r.json()) == (400, not_supported("chatCompletion", model))
        assert r.headers["content-type"].startswith("application/json")
    r = client.post(f"/openai/deployments/{deployment}/completions{GA}", json={"prompt": "hi"})
    assert (r.status_code, r.json()) == (400, not_supported("completion", model))


def test_the_sdk_sees_operation_not_supported_as_a_bad_request(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model="gpt-5-codex", messages=MESSAGES)
    assert refused.value.code == "OperationNotSupported"
    assert refused.value.body == not_supported("chatCompletion", "gpt-5-codex")["error"]


@pytest.mark.parametrize("deployment", ["o3", "gpt-5", "gpt-5.1", "chat"])
def test_reasoning_models_refuse_legacy_completions(client: httpx.Client, deployment: str) -> None:
    model = MODELS.get(deployment, deployment)
    r = client.post(f"/openai/deployments/{deployment}/completions{GA}", json={"prompt": "hi"})
    assert (r.status_code, r.json()) == (400, not_supported("completion", model))


def test_other_deployments_behave_as_before(client: httpx.Client) -> None:
    """gpt-4o-like: sampling parameters, max_tokens, logprobs taken; no reasoning tokens; completions served."""
    body = {"temperature": 0.7, "top_p": 0.5, "max_tokens": 5, "logprobs": True, "top_logprobs": 2, "logit_bias": {}}
    for deployment in ("gpt-4o", "my-deployment", "legacy-name", "gpt-4.1"):
        answer = ok(chat(client, deployment, presence_penalty=1, frequency_penalty=-1, **body))
        assert answer["choices"][0]["message"]["content"] == "Echo: hello there"
        assert answer["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
        assert answer["usage"]["completion_tokens"] == 3
        completion = ok(client.post(f"/openai/deployments/{deployment}/completions{GA}", json={"prompt": "hi"}))
        assert (completion["choices"][0]["text"], completion["model"]) == ("Echo: hi", "gpt-35-turbo-instruct")


def test_the_cli_takes_a_model_per_deployment() -> None:
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "azure_sim", "--port", "0", "--model", "chat=gpt-5-mini", "--model", "x=o3"]
    with subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            url = server.stdout.readline().split()[-1] + "/openai/deployments"
            auth = {"api-key": "k"}
            r = httpx.post(f"{url}/chat/chat/completions{GA}", json={"messages": MESSAGES}, headers=auth)
            assert r.json()["model"] == "gpt-5-mini-2025-08-07"
            r = httpx.post(f"{url}/x/completions{GA}", json={"prompt": "hi"}, headers=auth)
            assert r.json() == not_supported("completion", "o3")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
    refused = subprocess.run([*command[:3], "--model", "chat"], cwd=root, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "expected DEPLOYMENT=MODEL, got 'chat'" in refused.stderr
