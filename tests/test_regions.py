"""Resource-scoped APIs across regions: assistants, threads and runs, files, batches,
responses, through the official SDK, with two more simulators as Azure regions."""

from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.beta import FunctionToolParam
from openai.types.beta.threads import TextContentBlock
from openai.types.responses import ResponseCompletedEvent

from azure_sim import AzureSimulator
from tests.support.standard import ALICE, SECRETS

REGION_KEYS = {"SWEDEN_KEY": "azure-key-sweden-11112222", "NORWAY_KEY": "azure-key-norway-33334444"}
REGIONS_CONFIG = """
endpoints:
  azureOpenAI:
    assistants: true
    groups:
      - group: eastus
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        models:
          gpt-4o: {deploymentName: gpt-4o-dep}
      - group: sweden
        apiKey: "${SWEDEN_KEY}"
        instanceName: sweden-instance
        baseURL: "${SWEDEN_URL}"
        version: "2024-05-01-preview"
        assistants: true
        models:
          gpt-4o-sweden: {deploymentName: gpt4o-sw}
      - group: norway
        apiKey: "${NORWAY_KEY}"
        instanceName: norway-instance
        baseURL: "${NORWAY_URL}"
        version: "2025-04-01-preview"
        assistants: true
        models:
          gpt-4.1: {deploymentName: gpt41-no}
gateway:
  apiKeys:
    - {name: alice, key: "${ALICE_KEY}"}
  groups:
    norway: {api: v1}
"""


@pytest.fixture(scope="module")
def regions() -> Iterator[tuple[AzureSimulator, AzureSimulator]]:
    sweden = AzureSimulator(name="sweden", api_keys={REGION_KEYS["SWEDEN_KEY"]}, deployments={"gpt4o-sw"}).start()
    norway = AzureSimulator(name="norway", api_keys={REGION_KEYS["NORWAY_KEY"]}, deployments={"gpt41-no"}).start()
    yield sweden, norway
    sweden.stop()
    norway.stop()


@pytest.fixture(scope="module")
def region_env(sim, regions) -> dict[str, str]:
    sweden, norway = regions
    return {**SECRETS, **REGION_KEYS, "SIM_URL": sim.url, "SWEDEN_URL": sweden.url, "NORWAY_URL": norway.url}


@pytest.fixture(scope="module")
def region_gateway(start_gateway_session, region_env):
    return start_gateway_session(REGIONS_CONFIG, region_env)


@pytest.fixture
def sweden(regions: tuple[AzureSimulator, AzureSimulator]) -> AzureSimulator:
    regions[0].reset()
    return regions[0]


@pytest.fixture
def norway(regions: tuple[AzureSimulator, AzureSimulator]) -> AzureSimulator:
    regions[1].reset()
    return regions[1]


def sdk(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ALICE, max_retries=0)


def test_assistants_are_created_where_their_model_lives_and_show_public_models(region_gateway, sweden, norway) -> None:
    client = sdk(region_gateway)
    swedish = client.beta.assistants.create(model="gpt-4o-sweden", name="sv", instructions="Be brief.")
    norwegian = client.beta.assistants.create(model="gpt-4.1", name="no")
    assert (swedish.model, norwegian.model) == ("gpt-4o-sweden", "gpt-4.1")

    (created_sv,) = [r for r in sweden.requests if r.method == "POST"]
    assert created_sv.path == "/openai/assistants" and created_sv.query == {"api-version": "2024-05-01-preview"}
    assert created_sv.json["model"] == "gpt4o-sw" and created_sv.headers["api-key"] == REGION_KEYS["SWEDEN_KEY"]
    (created_no,) = [r for r in norway.requests if r.method == "POST"]
    assert created_no.path == "/openai/v1/assistants" and created_no.raw_query == ""  # v1: no api-version
    assert created_no.json["model"] == "gpt41-no"

    listed = client.beta.assistants.list(limit=100)
    assert {(a.id, a.model) for a in listed.data} == {(swedish.id, "gpt-4o-sweden"), (norwegian.id, "gpt-4.1")}
    assert client.beta.assistants.retrieve(norwegian.id).name == "no"
    assert client.beta.assistants.delete(swedish.id).deleted


def test_a_fresh_instance_finds_an_objects_region_without_shared_state(
    region_gateway, start_gateway, region_env, sweden, norway
) -> None:
    assistant = sdk(region_gateway).beta.assistants.create(model="gpt-4.1", name="far away")
    other_instance = start_gateway(REGIONS_CONFIG, region_env)  # knows nothing of that id
    sweden.requests.clear()
    norway.requests.clear()
    assert sdk(other_instance).beta.assistants.retrieve(assistant.id).model == "gpt-4.1"
    assert [r.path for r in sweden.requests] == [f"/openai/assistants/{assistant.id}"]  # probed: not here
    assert [r.path for r in norway.requests] == [f"/openai/v1/assistants/{assistant.id}"] * 2  # probe, then the call
    sweden.requests.clear()
    norway.requests.clear()
    sdk(other_instance).beta.assistants.retrieve(assistant.id)
    assert len(norway.requests) == 1 and sweden.requests == []  # remembered

    with pytest.raises(openai.NotFoundError):
        sdk(other_instance).beta.assistants.retrieve("asst_does_not_exist_anywhere")


def test_threads_and_runs_polled_and_streamed(region_gateway, sweden) -> None:
    client = sdk(region_gateway)
    assistant = client.beta.assistants.create(model="gpt-4o-sweden")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello region"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed" and run.model == "gpt-4o-sweden"
    messages = client.beta.threads.messages.list(thread_id=thread.id, order="desc")
    block = messages.data[0].content[0]
    assert isinstance(block, TextContentBlock) and block.text.value == "Echo: Hello region"
    assert client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id).data

    client.beta.threads.messages.create(thread_id=thread.id, role="user", content="Stream this")
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        events = [event.event for event in stream]
        final = stream.get_final_messages()
    assert events[0] == "thread.run.created" and events[-1] == "thread.run.completed"
    assert "thread.message.delta" in events
    block = final[0].content[0]
    assert isinstance(block, TextContentBlock) and block.text.value == "Echo: Stream this"
    run_created = next(r for r in sweden.requests if r.path.endswith("/runs") and r.json and r.json.get("stream"))
    assert run_created.path == f"/openai/threads/{thread.id}/runs"


def test_tool_calls_and_submit_tool_outputs(region_gateway) -> None:
    client = sdk(region_gateway)
    tool: FunctionToolParam = {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }
    assistant = client.beta.assistants.create(model="gpt-4.1", tools=[tool])
    run = client.beta.threads.create_and_run(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "Look it up"}]}
    )
    assert run.status == "requires_action" and run.model == "gpt-4.1"
    assert run.required_action is not None
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    done = client.beta.threads.runs.submit_tool_outputs(
        thread_id=run.thread_id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "42"}]
    )
    assert done.status == "completed"


def test_group_hint_header_and_model_override_in_another_region(region_gateway, norway) -> None:
    client = sdk(region_gateway)
    thread = client.beta.threads.create(extra_headers={"X-Gateway-Group": "norway"})
    assert norway.requests[-1].path == "/openai/v1/threads"
    assert "x-gateway-group" not in norway.requests[-1].headers
    with pytest.raises(openai.BadRequestError) as wrong:
        client.beta.threads.create(extra_headers={"X-Gateway-Group": "atlantis"})
    assert wrong.value.code == "unknown_group"
    assistant = client.beta.assistants.create(model="gpt-4.1")
    with pytest.raises(openai.BadRequestError) as elsewhere:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, model="gpt-4o-sweden")
    assert elsewhere.value.code == "model_not_available"


def test_files_upload_download_and_batches_follow_the_file(region_gateway, norway) -> None:
    client = sdk(region_gateway)
    lines = b'{"custom_id":"1","method":"POST","url":"/chat/completions","body":{"model":"gpt41-no","messages":[]}}\n'
    uploaded = client.files.create(
        file=("batch.jsonl", lines), purpose="batch", extra_headers={"X-Gateway-Group": "norway"}
    )
    assert uploaded.filename == "batch.jsonl" and uploaded.bytes == len(lines)
    assert client.files.content(uploaded.id).content == lines
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.input_file_id == uploaded.id
    assert norway.requests[-1].path == "/openai/v1/batches"
    assert client.batches.retrieve(batch.id).id == batch.id
    assert batch.id in [b.id for b in client.batches.list()]
    raw = httpx.post(
        f"{region_gateway.url}/v1/files",
        headers={"Authorization": f"Bearer {ALICE}"},
        files={"file": ("x.jsonl", b"{}\n")},
        data={"purpose": "assistants"},
    )
    assert raw.status_code == 200  # Azure's 201, as OpenAI clients expect it
    missing = httpx.post(
        f"{region_gateway.url}/v1/files",
        headers={"Authorization": f"Bearer {ALICE}"},
        data={"purpose": "batch"},
        files={"other": ("x", b"1")},
    )
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "missing_file"


def test_responses_json_streamed_and_chained(region_gateway, norway) -> None:
    client = sdk(region_gateway)
    response = client.responses.create(model="gpt-4.1", input="Hi there")
    assert response.output_text == "Echo: Hi there" and response.model == "gpt-4.1"
    assert norway.requests[-1].path == "/openai/v1/responses" and norway.requests[-1].json["model"] == "gpt41-no"

    events = list(
        client.responses.create(model="gpt-4.1", input="Stream me", stream=True, previous_response_id=response.id)
    )
    types = [event.type for event in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Echo: Stream me"
    last = events[-1]
    assert isinstance(last, ResponseCompletedEvent) and last.response.model == "gpt-4.1"
    assert client.responses.retrieve(response.id).id == response.id
    assert client.responses.input_items.list(response.id).data


def test_resource_apis_need_assistants_groups(gateway) -> None:
    response = httpx.get(f"{gateway.url}/v1/assistants", headers={"Authorization": f"Bearer {ALICE}"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_configured"


def test_an_unreachable_region_is_a_502_not_a_wrong_404(start_gateway, region_env) -> None:
    config = REGIONS_CONFIG.replace('baseURL: "${NORWAY_URL}"', 'baseURL: "http://127.0.0.1:9"')
    gateway = start_gateway(config, region_env)
    response = httpx.get(f"{gateway.url}/v1/threads/thread_unknown", headers={"Authorization": f"Bearer {ALICE}"})
    assert response.status_code == 502
    assert "norway" in response.json()["error"]["message"]


def test_vector_stores_files_and_search_stay_in_the_files_region(region_gateway, norway) -> None:
    client = sdk(region_gateway)
    document = client.files.create(
        file=("notes.txt", b"fjords"), purpose="assistants", extra_headers={"X-Gateway-Group": "norway"}
    )
    store = client.vector_stores.create(name="docs", file_ids=[document.id])  # follows the file to norway
    assert norway.requests[-1].path == "/openai/v1/vector_stores"
    attached = client.vector_stores.files.list(vector_store_id=store.id)
    assert [f.id for f in attached.data] == [document.id]
    assert (
        client.vector_stores.search(vector_store_id=store.id, query="fjords").object
        == "vector_store.search_results.page"
    )
    assert store.id in [s.id for s in client.vector_stores.list()]
    assert client.vector_stores.delete(store.id).deleted


def test_cancel_a_run(region_gateway) -> None:
    client = sdk(region_gateway)
    tool: FunctionToolParam = {
        "type": "function",
        "function": {"name": "wait", "parameters": {"type": "object", "properties": {}}},
    }
    assistant = client.beta.assistants.create(model="gpt-4o-sweden", tools=[tool])
    run = client.beta.threads.create_and_run(assistant_id=assistant.id)
    assert run.status == "requires_action"
    assert client.beta.threads.runs.cancel(thread_id=run.thread_id, run_id=run.id).status in ("cancelling", "cancelled")


def test_a_restricted_key_is_checked_against_an_assistant_in_another_region(
    region_gateway, start_gateway, region_env
) -> None:
    sweden_only = "gw-key-sweden-only-5a6b7c8d"
    config = REGIONS_CONFIG.replace(
        "  apiKeys:\n",
        '  apiKeys:\n    - {name: sweden-only, key: "${SWEDEN_ONLY}", models: [gpt-4o-sweden], resources: true}\n',
    )
    norwegian = sdk(region_gateway).beta.assistants.create(model="gpt-4.1")
    fresh = start_gateway(config, {**region_env, "SWEDEN_ONLY": sweden_only})  # must find where the assistant is
    restricted = openai.OpenAI(base_url=f"{fresh.url}/v1", api_key=sweden_only, max_retries=0)
    thread = restricted.beta.threads.create()  # in the first assistants group: sweden
    with pytest.raises(openai.NotFoundError) as refused:
        restricted.beta.threads.runs.create(thread_id=thread.id, assistant_id=norwegian.id)
    assert refused.value.code == "model_not_found" and "`gpt-4.1`" in refused.value.message


def test_ids_are_learnt_only_from_the_fields_azure_defines(region_gateway, sweden) -> None:
    """A caller who writes another thread's id into an object's metadata (or a tool's schema) cannot send the
    gateway to the wrong region for it: ids are learnt from the answer's own fields, never from what it echoes."""
    client = sdk(region_gateway)
    victim = client.beta.threads.create(extra_headers={"X-Gateway-Group": "sweden"})
    lure = client.beta.threads.create(
        metadata={"thread_id": victim.id, "assistant_id": victim.id}, extra_headers={"X-Gateway-Group": "norway"}
    )
    assert lure.metadata == {"thread_id": victim.id, "assistant_id": victim.id}  # echoed by Azure
    assistant = client.beta.assistants.create(
        model="gpt-4.1",
        tools=[
            {
                "type": "function",
                "function": {"name": "f", "parameters": {"type": "object", "thread_id": victim.id}},
            }
        ],
    )
    assert assistant.id
    assert client.beta.threads.retrieve(victim.id).id == victim.id  # still found where it lives
    assert sweden.requests[-1].path.endswith(f"/threads/{victim.id}")


def test_an_id_no_group_holds_is_looked_for_once_then_answered_by_the_primary_alone(
    region_gateway, sweden, norway
) -> None:
    """Looking an unknown id up costs one GET per group; the answer "nowhere" is kept briefly, so asking again
    (a client retrying, or hammering made-up ids it reuses) costs one upstream call, not one per group again."""
    headers = {"Authorization": f"Bearer {ALICE}"}
    url = f"{region_gateway.url}/v1/threads/thread_nowhere0123456789abcd"
    first = httpx.get(url, headers=headers)
    assert first.status_code == 404
    assert (len(sweden.requests), len(norway.requests)) == (2, 1)  # a lookup in each, then sweden's own 404
    for _ in range(3):
        assert httpx.get(url, headers=headers).status_code == 404
    assert (len(sweden.requests), len(norway.requests)) == (5, 1)  # the primary's own 404 only
