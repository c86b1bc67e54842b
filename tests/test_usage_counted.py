"""What each call counts, end to end: the access line's tokens, which the token metrics and the budgets read too.

A call counts the top-level `usage` of what Azure answered, parsed, whatever text of the caller's it echoes; reads
count nothing; a run (or a background response) counts once, when it is first seen done; a Responses stream cut short
counts an estimate; a count no model could spend is clamped. The official SDK talks to the gateway, the simulator
plays Azure.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from azure_sim import AzureSimulator
from tests.support.access_log import access_line
from tests.support.gateways import Gateway, StartGateway
from tests.support.standard import ALICE, SECRETS

COUNTING_CONFIG = """
endpoints:
  azureOpenAI:
    assistants: true
    groups:
      - group: eastus
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2025-04-01-preview"
        assistants: true
        models:
          gpt-4o: {deploymentName: gpt-4o-dep}
          text-embedding-3-small: {deploymentName: embed-dep}
gateway:
  apiKeys:
    - {name: alice, key: "${ALICE_KEY}", limits: {tokensPerMinute: 100000000}}
  forwardHeaders: ["x-sim-*"]
"""
# The most one count of one call may be (core/translation/usage.py): docs/operations.md says so too.
MAX_COUNT = 10**9
TOKEN_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens")
HOSTILE_METADATA = {
    "usage": "none",
    "note": '"usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}',
    "model": "not-the-model",
}
HOSTILE_USER = '","usage":{"total_tokens":1},"x":"'


@pytest.fixture
def counting(sim: AzureSimulator, start_gateway: StartGateway) -> Gateway:
    return start_gateway(COUNTING_CONFIG, {**SECRETS, "SIM_URL": sim.url})


def sdk(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ALICE, max_retries=0)


def tokens(line: dict[str, Any]) -> dict[str, Any]:
    return {name: line[name] for name in TOKEN_FIELDS if name in line}


def test_a_response_counts_its_own_usage_whatever_metadata_and_user_it_echoes(counting) -> None:
    raw = sdk(counting).responses.with_raw_response.create(
        model="gpt-4o", input="one two three four", metadata=HOSTILE_METADATA, user=HOSTILE_USER
    )
    response = raw.parse()
    assert response.metadata == HOSTILE_METADATA and response.usage is not None  # echoed after the usage
    line = access_line(counting, raw.headers["x-request-id"])
    usage = response.usage
    assert tokens(line) == {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
    }
    assert usage.total_tokens > 0 and line["response_model"] == "gpt-4o-dep"  # as Azure names it, not metadata


def test_a_streamed_response_counts_its_completed_events_usage(counting) -> None:
    with sdk(counting).responses.with_streaming_response.create(
        model="gpt-4o", input="one two three", metadata=HOSTILE_METADATA, user=HOSTILE_USER, stream=True
    ) as raw:
        events = list(raw.parse())
    completed = events[-1]
    assert completed.type == "response.completed" and completed.response.usage is not None
    line = access_line(counting, raw.headers["x-request-id"])
    assert line["total_tokens"] == completed.response.usage.total_tokens > 0
    assert "usage_estimated" not in line


def test_reading_a_response_counts_nothing(counting) -> None:
    client = sdk(counting)
    created = client.responses.with_raw_response.create(model="gpt-4o", input="count me once")
    response = created.parse()
    assert response.usage is not None
    assert access_line(counting, created.headers["x-request-id"])["total_tokens"] == response.usage.total_tokens
    for _ in range(3):
        read = client.responses.with_raw_response.retrieve(response.id)
        assert read.parse().usage == response.usage  # the client sees it; the read spends nothing
        assert tokens(access_line(counting, read.headers["x-request-id"])) == {}
    items = client.responses.input_items.with_raw_response.list(response.id)
    assert tokens(access_line(counting, items.headers["x-request-id"])) == {}


def test_a_background_response_counts_once_when_first_read_done(counting) -> None:
    client = sdk(counting)
    created = client.responses.with_raw_response.create(model="gpt-4o", input="later please", background=True)
    queued = created.parse()
    assert queued.status == "queued" and queued.usage is None
    assert tokens(access_line(counting, created.headers["x-request-id"])) == {}
    reads = [client.responses.with_raw_response.retrieve(queued.id) for _ in range(3)]
    done = reads[0].parse()
    assert done.status == "completed" and done.usage is not None
    lines = [access_line(counting, read.headers["x-request-id"]) for read in reads]
    assert [line.get("total_tokens") for line in lines] == [done.usage.total_tokens, None, None]


def test_a_polled_run_counts_once(sim, counting) -> None:
    client = sdk(counting)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "one two three"}])
    # Created at Azure without this gateway (by another instance, say): its first read here counts it.
    created = httpx.post(
        f"{sim.url}/openai/threads/{thread.id}/runs",
        params={"api-version": "2025-04-01-preview"},
        headers={"api-key": SECRETS["EASTUS_KEY"]},
        json={"assistant_id": assistant.id},
    )
    run_id = created.json()["id"]
    polls = [client.beta.threads.runs.with_raw_response.retrieve(run_id, thread_id=thread.id) for _ in range(3)]
    run = polls[0].parse()
    assert run.status == "completed" and run.usage is not None and run.usage.total_tokens > 0
    lines = [access_line(counting, poll.headers["x-request-id"]) for poll in polls]
    assert [tokens(line) for line in lines] == [
        {
            "prompt_tokens": run.usage.prompt_tokens,
            "completion_tokens": run.usage.completion_tokens,
            "total_tokens": run.usage.total_tokens,
        },
        {},
        {},
    ]
    assert lines[0]["response_model"] == "gpt-4o-dep"
    steps = client.beta.threads.runs.steps.with_raw_response.list(run_id, thread_id=thread.id)
    assert steps.parse().data[0].usage is not None  # a step's usage is the run's, counted with it
    runs = client.beta.threads.runs.with_raw_response.list(thread_id=thread.id)
    messages = client.beta.threads.messages.with_raw_response.list(thread_id=thread.id)
    for read in (steps, runs, messages):
        assert tokens(access_line(counting, read.headers["x-request-id"])) == {}


def test_a_run_created_and_polled_through_the_gateway_counts_once(counting) -> None:
    client = sdk(counting)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "one two"}])
    created = client.beta.threads.runs.with_raw_response.create(thread_id=thread.id, assistant_id=assistant.id)
    run = created.parse()  # the simulator's runs are done at once: Azure's would be queued, counted when polled
    assert run.usage is not None
    assert access_line(counting, created.headers["x-request-id"])["total_tokens"] == run.usage.total_tokens
    polled = client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread.id)
    assert tokens(access_line(counting, polled.headers["x-request-id"])) == {}


def test_a_streamed_run_counts_once(counting) -> None:
    client = sdk(counting)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "stream this run"}])
    with client.beta.threads.runs.with_streaming_response.create(
        thread_id=thread.id, assistant_id=assistant.id, stream=True
    ) as raw:
        events = list(raw.parse())
    completed = next(event for event in events if event.event == "thread.run.completed")
    usage = completed.data.usage
    assert usage is not None
    assert access_line(counting, raw.headers["x-request-id"])["total_tokens"] == usage.total_tokens
    polled = client.beta.threads.runs.with_raw_response.retrieve(completed.data.id, thread_id=thread.id)
    assert tokens(access_line(counting, polled.headers["x-request-id"])) == {}


def test_a_responses_stream_cut_short_counts_an_estimate(counting) -> None:
    body = {"model": "gpt-4o", "input": "one two three four five six", "stream": True}
    with httpx.stream(
        "POST",
        f"{counting.url}/v1/responses",
        json=body,
        headers={"Authorization": f"Bearer {ALICE}", "x-sim-fail": "abort"},
        timeout=10,
    ) as response:
        read = response.read()
    assert b"response.output_text.delta" in read and b"response.completed" not in read
    line = access_line(counting, response.headers["x-request-id"])
    assert line["usage_estimated"] is True
    assert line["prompt_tokens"] > 0 and line["total_tokens"] >= line["prompt_tokens"]


@pytest.mark.parametrize(
    ("reported", "counted"),
    [
        ("9223372036854775808", MAX_COUNT),  # 2**63: past a signed 64-bit integer
        ("18446744073709551616", MAX_COUNT),  # 2**64: past an unsigned one too
        ("123456789012", MAX_COUNT),
        ("1e30", MAX_COUNT),
        ("-5", None),
        ("7.5", None),
        ("true", None),
        ('"12"', None),
    ],
)
def test_a_count_no_model_could_spend_is_clamped_or_ignored(counting, reported: str, counted: int | None) -> None:
    answer = httpx.post(
        f"{counting.url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]},
        headers={"Authorization": f"Bearer {ALICE}", "x-sim-usage": reported},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.content.count(reported.encode()) >= 3  # the caller sees what Azure said
    line = access_line(counting, answer.headers["x-request-id"])
    assert tokens(line) == ({} if counted is None else dict.fromkeys(TOKEN_FIELDS, counted))
    follow_up = httpx.post(
        f"{counting.url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]},
        headers={"Authorization": f"Bearer {ALICE}"},
        timeout=10,
    )
    # Nothing downstream is poisoned: the budget counted what was counted, and the next call is told so.
    if counted is None:
        assert follow_up.status_code == 200, follow_up.text
    else:
        assert follow_up.status_code == 429 and follow_up.json()["error"]["type"] == "tokens", follow_up.text
        assert f"Used {counted}" in follow_up.json()["error"]["message"]
