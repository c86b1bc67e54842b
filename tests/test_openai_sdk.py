"""The official openai SDK, unchanged, pointed at the gateway."""

import asyncio

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.support.standard import ALICE, BOB

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello SDK"}]


@pytest.fixture
def client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ALICE, max_retries=0)


def test_sync_chat_and_stream(client) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert completion.choices[0].message.content == "Echo: Hello SDK"
    stream = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: Hello SDK"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_async_chat_stream_and_embeddings(gateway) -> None:
    async def run() -> tuple[str, int, list[str]]:
        async with openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=ALICE, max_retries=0) as client:
            stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            embeddings = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"])
            models = [m.id async for m in client.models.list()]
            return text, len(embeddings.data), models

    text, count, models = asyncio.run(run())
    assert text == "Echo: Hello SDK" and count == 3 and "gpt-4o" in models


def test_completions_and_force_prompt_through_the_sdk(client) -> None:
    assert client.completions.create(model="gpt-4o", prompt="Hi").choices[0].text == "Echo: Hi"
    chat = client.chat.completions.create(model="gpt-instruct", messages=MESSAGES)
    assert chat.choices[0].message.content.startswith("Echo: ")
    streamed = client.chat.completions.create(model="gpt-instruct", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed).startswith("Echo: ")


def test_errors_reach_the_sdk_as_its_own_exception_types(gateway, client) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError) as not_allowed:  # a model the key may not use: as if unknown
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=BOB, max_retries=0).chat.completions.create(
            model="gpt-4o", messages=MESSAGES
        )
    assert not_allowed.value.code == "model_not_found"
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers={"x-sim-fail": "429"})
    with pytest.raises(openai.BadRequestError) as filtered:
        client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers={"x-sim-fail": "content_filter"}
        )
    assert filtered.value.code == "content_filter"
