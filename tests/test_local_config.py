"""What `make run` serves: config/local.yaml against the local simulator answers every route the README lists, through
the official SDK (the simulator started as `make run` starts it: any deployment, any key; the URL is the test's)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from azure_sim import AzureSimulator
from tests.support.gateways import Gateway, StartGateway

ROOT = Path(__file__).resolve().parents[1]
LOCAL_KEY = "local-dev-key"


@pytest.fixture(scope="module")
def simulator() -> Iterator[AzureSimulator]:
    with AzureSimulator(name="make-run") as sim:
        yield sim


@pytest.fixture
def client(simulator: AzureSimulator, start_gateway: StartGateway) -> openai.OpenAI:
    text = (ROOT / "config" / "local.yaml").read_text()
    assert text.count("http://127.0.0.1:8081") == 3
    gateway: Gateway = start_gateway(text.replace("http://127.0.0.1:8081", simulator.url), {})
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=LOCAL_KEY, max_retries=0)


def test_the_local_config_answers_every_route_the_readme_lists(client: openai.OpenAI) -> None:
    models = {model.id for model in client.models.list()}
    assert {"gpt-4o", "text-embedding-3-small", "dall-e-3", "whisper", "tts", "gpt-5-codex", "mistral-large"} <= models

    chat = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hello"}])
    assert chat.choices[0].message.content
    streamed = client.chat.completions.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": "Hi"}], max_tokens=50, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert client.chat.completions.create(model="gpt-5-codex", messages=[{"role": "user", "content": "x"}]).choices
    assert client.chat.completions.create(model="mistral-large", messages=[{"role": "user", "content": "x"}]).choices
    assert client.embeddings.create(model="text-embedding-3-small", input="hello").data[0].embedding

    assert client.images.generate(model="dall-e-3", prompt="a lighthouse").data
    speech = client.audio.speech.create(model="tts", voice="alloy", input="Hello there")
    assert speech.content
    heard = client.audio.transcriptions.create(model="whisper", file=("hello.wav", io.BytesIO(b"RIFF" + b"\0" * 64)))
    assert heard.text is not None

    assert client.responses.create(model="gpt-4o", input="Say hi").output_text
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    uploaded = client.files.create(file=("notes.jsonl", io.BytesIO(b'{"a": 1}\n')), purpose="batch")
    assert client.files.retrieve(uploaded.id).id == uploaded.id
    store = client.vector_stores.create(name="notes")
    assert client.vector_stores.retrieve(store.id).id == store.id
    assert client.batches.list() is not None
