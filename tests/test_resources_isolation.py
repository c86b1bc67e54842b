"""Isolation between callers: a key limited to some models reaches the resource-scoped APIs (whose objects Azure
shares among everyone using the resource) only with `resources: true`, and then cannot spend tokens on a model it
may not use through an assistant, a run or a batch. A model a key may not use looks exactly like one that does not
exist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.beta import FunctionToolParam

from azure_sim import AzureSimulator
from tests.support.config_text import load, problems
from tests.support.json_values import json_object
from tests.support.standard import ALICE, SECRETS

MINI_ONLY = "gw-key-mini-only-0a1b2c3d"  # models: [gpt-4o-mini], no `resources`
MINI_RESOURCES = "gw-key-mini-resources-4e5f6a7b"  # models: [gpt-4o-mini], resources: true
ALL_NO_RESOURCES = "gw-key-all-no-resources-8c9d0e1f"  # every model, resources: false
KEYS = {"MINI_ONLY": MINI_ONLY, "MINI_RESOURCES": MINI_RESOURCES, "ALL_NO_RESOURCES": ALL_NO_RESOURCES}
ISOLATION_CONFIG = """
endpoints:
  azureOpenAI:
    assistants: true
    groups:
      - group: eastus
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        assistants: true
        models:
          gpt-4o: {deploymentName: gpt-4o-dep}
          gpt-4o-mini: {deploymentName: gpt-4o-mini-dep}
          text-embedding-3-small: {deploymentName: embed-dep}
gateway:
  apiKeys:
    - {name: alice, key: "${ALICE_KEY}"}
    - {name: mini-only, key: "${MINI_ONLY}", models: [gpt-4o-mini]}
    - {name: mini-resources, key: "${MINI_RESOURCES}", models: [gpt-4o-mini, text-embedding-3-small], resources: true}
    - {name: all-no-resources, key: "${ALL_NO_RESOURCES}", resources: false}
"""


@pytest.fixture(scope="module")
def isolated(sim: AzureSimulator, start_gateway_session):
    return start_gateway_session(ISOLATION_CONFIG, {**SECRETS, **KEYS, "SIM_URL": sim.url})


def sdk(gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def call(gateway, key: str, method: str, path: str, **options) -> httpx.Response:
    return httpx.request(method, f"{gateway.url}{path}", headers={"Authorization": f"Bearer {key}"}, **options)


def upstream_calls(sim: AzureSimulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sim.requests]


def batch_file(*deployments: str) -> bytes:
    return b"".join(
        orjson.dumps(
            {
                "custom_id": str(i),
                "method": "POST",
                "url": "/chat/completions",
                "body": {"model": deployment, "messages": [{"role": "user", "content": "hi"}]},
            }
        )
        + b"\n"
        for i, deployment in enumerate(deployments)
    )


def shared_objects(gateway) -> dict[str, str]:
    """Objects another caller (alice, every model) created: Azure lets anyone with the resource see them."""
    client = sdk(gateway, ALICE)
    assistant = client.beta.assistants.create(model="gpt-4o", name="alice's")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    uploaded = client.files.create(file=("lines.jsonl", batch_file("gpt-4o-dep")), purpose="batch")
    store = client.vector_stores.create(name="alice's store")
    response = client.responses.create(model="gpt-4o", input="hi")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    return {
        "assistant": assistant.id,
        "thread": thread.id,
        "file": uploaded.id,
        "store": store.id,
        "response": response.id,
        "batch": batch.id,
    }


def every_family(ids: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    mini = {"json": {"model": "gpt-4o-mini"}}
    return [
        ("GET", "/v1/assistants", {}),
        ("POST", "/v1/assistants", mini),
        ("GET", f"/v1/assistants/{ids['assistant']}", {}),
        ("POST", f"/v1/assistants/{ids['assistant']}", {"json": {"name": "mine now"}}),
        ("DELETE", f"/v1/assistants/{ids['assistant']}", {}),
        ("POST", "/v1/threads", {"json": {}}),
        ("GET", f"/v1/threads/{ids['thread']}", {}),
        ("GET", f"/v1/threads/{ids['thread']}/messages", {}),
        ("POST", f"/v1/threads/{ids['thread']}/runs", {"json": {"assistant_id": ids["assistant"]}}),
        ("POST", "/v1/threads/runs", {"json": {"assistant_id": ids["assistant"]}}),
        ("DELETE", f"/v1/threads/{ids['thread']}", {}),
        ("GET", "/v1/vector_stores", {}),
        ("POST", "/v1/vector_stores", {"json": {"name": "x"}}),
        ("GET", f"/v1/vector_stores/{ids['store']}/files", {}),
        ("DELETE", f"/v1/vector_stores/{ids['store']}", {}),
        ("GET", "/v1/files", {}),
        ("POST", "/v1/files", {"files": {"file": ("x.jsonl", b"{}\n")}, "data": {"purpose": "batch"}}),
        ("GET", f"/v1/files/{ids['file']}", {}),
        ("GET", f"/v1/files/{ids['file']}/content", {}),
        ("DELETE", f"/v1/files/{ids['file']}", {}),
        ("GET", "/v1/batches", {}),
        (
            "POST",
            "/v1/batches",
            {"json": {"input_file_id": ids["file"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}},
        ),
        ("GET", f"/v1/batches/{ids['batch']}", {}),
        ("POST", f"/v1/batches/{ids['batch']}/cancel", {}),
        ("POST", "/v1/responses", {"json": {"model": "gpt-4o-mini", "input": "hi"}}),
        ("GET", f"/v1/responses/{ids['response']}", {}),
        ("GET", f"/v1/responses/{ids['response']}/input_items", {}),
        ("DELETE", f"/v1/responses/{ids['response']}", {}),
    ]


REFUSED_WITHOUT_RESOURCES = (
    "This API key may not use the assistants, threads, vector stores, files, batches and responses APIs, "
    "whose objects every caller of the Azure resource shares: set `resources: true` on its "
    "gateway.apiKeys entry to allow them."
)


@pytest.mark.parametrize("key", [MINI_ONLY, ALL_NO_RESOURCES], ids=["models-without-resources", "resources-false"])
def test_a_key_without_resources_is_refused_on_every_family_and_method(isolated, sim, key) -> None:
    ids = shared_objects(isolated)
    sim.requests.clear()
    for method, path, options in every_family(ids):
        response = call(isolated, key, method, path, **options)
        assert response.status_code == 403, (method, path, response.text)
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("permission_error", "resources_not_allowed"), (method, path)
        assert error["message"] == REFUSED_WITHOUT_RESOURCES
        assert upstream_calls(sim) == [], (method, path)
    assert sdk(isolated, ALICE).beta.assistants.retrieve(ids["assistant"]).name == "alice's"  # untouched


def test_a_key_without_models_keeps_the_resource_apis(isolated, sim) -> None:
    ids = shared_objects(isolated)
    for method, path, options in every_family(ids):
        if method != "DELETE":
            response = call(isolated, ALICE, method, path, **options)
            assert response.status_code != 403, (method, path, response.text)


def test_with_resources_a_restricted_key_uses_them_with_its_own_models(isolated, sim) -> None:
    client = sdk(isolated, MINI_RESOURCES)
    assistant = client.beta.assistants.create(model="gpt-4o-mini", name="mine")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)  # the assistant's model
    assert run.status == "completed" and run.model == "gpt-4o-mini"
    run = client.beta.threads.create_and_run(assistant_id=assistant.id)
    assert run.model == "gpt-4o-mini"
    assert client.responses.create(model="gpt-4o-mini", input="hi").model == "gpt-4o-mini"
    assert assistant.id in [a.id for a in client.beta.assistants.list(limit=100)]
    with pytest.raises(openai.NotFoundError) as refused:
        client.beta.assistants.create(model="gpt-4o")
    assert refused.value.code == "model_not_found"


def test_a_restricted_key_cannot_run_an_assistant_whose_model_it_may_not_use(isolated, sim) -> None:
    theirs = sdk(isolated, ALICE).beta.assistants.create(model="gpt-4o", name="alice's")
    client = sdk(isolated, MINI_RESOURCES)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    sim.requests.clear()
    attempts: dict[str, Callable[[], object]] = {
        "run without a model": lambda: client.beta.threads.runs.create(thread_id=thread.id, assistant_id=theirs.id),
        "run with its model": lambda: client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=theirs.id, model="gpt-4o"
        ),
        "streamed run": lambda: list(
            client.beta.threads.runs.create(thread_id=thread.id, assistant_id=theirs.id, stream=True)
        ),
        "thread and run": lambda: client.beta.threads.create_and_run(assistant_id=theirs.id),
        "thread and run, null model": lambda: client.beta.threads.create_and_run(assistant_id=theirs.id, model=None),
    }
    for name, attempt in attempts.items():
        with pytest.raises(openai.NotFoundError) as refused:
            attempt()
        assert refused.value.code == "model_not_found", name
        assert "gpt-4o" in refused.value.message and "gpt-4o-dep" not in refused.value.message, name
    assert [r for r in sim.requests if r.method != "GET"] == []  # nothing ran; only the assistant was read
    # Its own model on their assistant is its own spending: allowed.
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=theirs.id, model="gpt-4o-mini")
    assert run.model == "gpt-4o-mini"


def test_a_restricted_key_cannot_continue_a_run_on_a_model_it_may_not_use(isolated, sim) -> None:
    tool: FunctionToolParam = {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }
    alice = sdk(isolated, ALICE)
    theirs = alice.beta.assistants.create(model="gpt-4o", tools=[tool])
    run = alice.beta.threads.create_and_run(assistant_id=theirs.id)
    assert run.status == "requires_action"
    assert run.required_action is not None
    tool_call = run.required_action.submit_tool_outputs.tool_calls[0]
    sim.requests.clear()
    with pytest.raises(openai.NotFoundError) as refused:
        sdk(isolated, MINI_RESOURCES).beta.threads.runs.submit_tool_outputs(
            thread_id=run.thread_id, run_id=run.id, tool_outputs=[{"tool_call_id": tool_call.id, "output": "42"}]
        )
    assert refused.value.code == "model_not_found"
    assert [r.method for r in sim.requests] == ["GET"]


def test_an_unknown_assistant_is_a_404_before_any_run(isolated, sim) -> None:
    client = sdk(isolated, MINI_RESOURCES)
    thread = client.beta.threads.create()
    sim.requests.clear()
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id="asst_nowhere")
    assert [r.method for r in sim.requests] == ["GET"]


def test_batches_are_checked_line_by_line_against_the_keys_models(isolated, sim) -> None:
    client = sdk(isolated, MINI_RESOURCES)
    mixed = client.files.create(file=("mixed.jsonl", batch_file("gpt-4o-mini-dep", "gpt-4o-dep")), purpose="batch")
    unknown = client.files.create(file=("unknown.jsonl", batch_file("somebody-elses-dep")), purpose="batch")
    broken = client.files.create(file=("broken.jsonl", b'{"custom_id": "1", "body": {}}\n'), purpose="batch")
    for refused_file, error in (
        (mixed, openai.NotFoundError),
        (unknown, openai.NotFoundError),
        (broken, openai.BadRequestError),
    ):
        sim.requests.clear()
        with pytest.raises(error):
            client.batches.create(
                input_file_id=refused_file.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        assert [(r.method, r.path) for r in sim.requests] == [("GET", f"/openai/files/{refused_file.id}/content")]
    allowed = client.files.create(file=("ok.jsonl", batch_file("gpt-4o-mini-dep", "gpt-4o-mini-dep")), purpose="batch")
    batch = client.batches.create(input_file_id=allowed.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.input_file_id == allowed.id


def test_a_batch_file_too_large_to_check_is_refused(isolated, sim, start_gateway) -> None:
    large = sdk(isolated, MINI_RESOURCES).files.create(
        file=("big.jsonl", batch_file(*["gpt-4o-mini-dep"] * 100)), purpose="batch"
    )
    small = start_gateway(ISOLATION_CONFIG + "  maxBodyBytes: 4096\n", {**SECRETS, **KEYS, "SIM_URL": sim.url})
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(small, MINI_RESOURCES).batches.create(
            input_file_id=large.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert refused.value.code == "batch_input_too_large" and refused.value.param == "input_file_id"
    assert json_object(refused.value.body)["message"] == (
        f"`{large.id}` is larger than the gateway's limit of 4096 bytes, so the models it names "
        "cannot be checked for this key."
    )
    assert not any(r.path == "/openai/batches" for r in sim.requests)


def _comparable(response: httpx.Response, model: str) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in ("x-request-id", "date"))
    return response.status_code, headers, response.content.replace(model.encode(), b"MODEL")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/chat/completions", {"model": "MODEL", "messages": [{"role": "user", "content": "hi"}]}),
        ("POST", "/v1/embeddings", {"model": "MODEL", "input": "hi"}),
        ("GET", "/v1/models/MODEL", None),
        ("POST", "/v1/assistants", {"model": "MODEL"}),
        ("POST", "/v1/responses", {"model": "MODEL", "input": "hi"}),
    ],
)
def test_a_disallowed_model_answers_exactly_like_an_unknown_one(isolated, sim, method, path, body) -> None:
    answers = []
    for model in ("gpt-4o", "gpt-9z"):  # configured but not allowed / not configured; same length
        options = {"json": orjson.loads(orjson.dumps(body).replace(b"MODEL", model.encode()))} if body else {}
        response = call(isolated, MINI_RESOURCES, method, path.replace("MODEL", model), **options)
        assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
        answers.append(_comparable(response, model))
    assert answers[0] == answers[1]
    assert sim.requests == []


def test_resources_must_be_a_boolean() -> None:
    found = problems(
        """
        endpoints:
          azureOpenAI:
            groups:
              - {group: g, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {a: true}}
        gateway:
          apiKeys:
            - {name: n, key: k1, models: [a], resources: "yes"}
        """
    )
    assert len(found) == 1 and found[0].startswith("gateway.apiKeys[0].resources:") and "boolean" in found[0]


def test_resources_defaults_to_whether_the_key_is_limited_to_models() -> None:
    config = load(
        """
        endpoints:
          azureOpenAI:
            groups:
              - {group: g, apiKey: k, instanceName: i, deploymentName: d, version: 2024-10-21, models: {a: true}}
        gateway:
          apiKeys:
            - {name: every-model, key: k1}
            - {name: some-models, key: k2, models: [a]}
            - {name: opted-in, key: k3, models: [a], resources: true}
            - {name: opted-out, key: k4, resources: false}
        """
    )
    assert [key.resource_apis for key in config.settings.api_keys] == [True, False, True, False]


def test_a_restricted_key_continues_its_own_run_on_a_model_it_may_use(isolated, sim) -> None:
    tool: FunctionToolParam = {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }
    client = sdk(isolated, MINI_RESOURCES)
    mine = client.beta.assistants.create(model="gpt-4o-mini", tools=[tool])
    run = client.beta.threads.create_and_run(assistant_id=mine.id)
    assert run.required_action is not None
    tool_call = run.required_action.submit_tool_outputs.tool_calls[0]
    continued = client.beta.threads.runs.submit_tool_outputs(
        thread_id=run.thread_id, run_id=run.id, tool_outputs=[{"tool_call_id": tool_call.id, "output": "42"}]
    )
    assert continued.id == run.id and continued.model == "gpt-4o-mini"


def test_an_unknown_assistant_is_named_in_the_404(isolated, sim) -> None:
    thread = sdk(isolated, MINI_RESOURCES).beta.threads.create()
    answer = call(isolated, MINI_RESOURCES, "POST", f"/v1/threads/{thread.id}/runs", json={"assistant_id": "asst_x"})
    assert (answer.status_code, answer.json()) == (
        404,
        {
            "error": {
                "message": "No object found with id `asst_x`.",
                "type": "invalid_request_error",
                "param": "assistant_id",
                "code": "not_found",
            }
        },
    )


@pytest.mark.parametrize(
    ("fail", "why"),
    [("500", "the upstream answered 500"), ("invalid_json", "its answer is not a JSON object")],
)
def test_an_assistant_the_upstream_cannot_show_is_a_502_naming_it(isolated, sim, fail, why) -> None:
    client = sdk(isolated, MINI_RESOURCES)
    thread = client.beta.threads.create()
    assistant = sdk(isolated, ALICE).beta.assistants.create(model="gpt-4o")
    sim.behaviour.fail = fail
    answer = call(
        isolated, MINI_RESOURCES, "POST", f"/v1/threads/{thread.id}/runs", json={"assistant_id": assistant.id}
    )
    assert (answer.status_code, answer.json()) == (
        502,
        {
            "error": {
                "message": f"Could not read `{assistant.id}` to check which model this call would use: {why}.",
                "type": "api_error",
                "param": None,
                "code": "upstream_unreachable",
            }
        },
    )


MINI_LINE = batch_file("gpt-4o-mini-dep")


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (MINI_LINE + b'{"custom_id": "1", "body": {}}\n', 2),
        (MINI_LINE + b"\n  \n" + b"not json\n", 4),
        (b"[1]\n", 1),
        (b'{"custom_id": "1", "body": "text"}\n', 1),
    ],
    ids=["no-model", "not-json-after-blank-lines", "not-an-object", "body-not-an-object"],
)
def test_a_batch_line_without_a_model_is_named_by_its_number(isolated, sim, content, line) -> None:
    uploaded = sdk(isolated, MINI_RESOURCES).files.create(file=("lines.jsonl", content), purpose="batch")
    create = {"input_file_id": uploaded.id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    answer = call(isolated, MINI_RESOURCES, "POST", "/v1/batches", json=create)
    message = (
        f"Line {line} of the batch input file has no `body.model`; this key may use only some models, "
        "so every line must name one of their deployments."
    )
    assert (answer.status_code, answer.json()) == (
        400,
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": "input_file_id",
                "code": "invalid_batch_input",
            }
        },
    )


def test_a_blank_line_does_not_end_the_batch_check(isolated, sim) -> None:
    content = b"\n" + batch_file("gpt-4o-mini-dep", "gpt-4o-dep")
    uploaded = sdk(isolated, MINI_RESOURCES).files.create(file=("lines.jsonl", content), purpose="batch")
    create = {"input_file_id": uploaded.id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    answer = call(isolated, MINI_RESOURCES, "POST", "/v1/batches", json=create)
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "model_not_found")


def test_a_batch_file_on_an_unreachable_upstream_is_a_502_naming_the_group(start_gateway) -> None:
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens on it here
    gateway = start_gateway(ISOLATION_CONFIG, {**SECRETS, **KEYS, "SIM_URL": closed})
    create = {"input_file_id": "file-abc", "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    answer = call(gateway, MINI_RESOURCES, "POST", "/v1/batches", json=create)
    assert (answer.status_code, answer.json()["error"]) == (
        502,
        {
            "message": "The upstream for group `eastus` could not be reached.",
            "type": "api_error",
            "param": None,
            "code": "upstream_unreachable",
        },
    )


def test_a_batch_file_cut_short_by_the_upstream_is_a_502_naming_the_group(isolated, sim) -> None:
    uploaded = sdk(isolated, MINI_RESOURCES).files.create(file=("ok.jsonl", MINI_LINE), purpose="batch")
    sim.behaviour.fail = "truncate_length"
    create = {"input_file_id": uploaded.id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    answer = call(isolated, MINI_RESOURCES, "POST", "/v1/batches", json=create)
    assert (answer.status_code, answer.json()["error"]["message"]) == (
        502,
        "The upstream for group `eastus` closed the connection before its answer was complete.",
    )


def test_without_gateway_keys_runs_need_no_model_check(sim, start_gateway) -> None:
    anonymous = ISOLATION_CONFIG.split("gateway:")[0] + "gateway:\n  allowAnonymous: true\n"
    client = sdk(start_gateway(anonymous, {**SECRETS, "SIM_URL": sim.url}), "unused")
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create()
    sim.requests.clear()
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert run.model == "gpt-4o"
    assert [r.method for r in sim.requests] == ["POST"]  # the assistant was not read first


def test_a_stored_model_that_is_not_a_string_is_refused_by_its_text(isolated, sim) -> None:
    assistant = sdk(isolated, ALICE).beta.assistants.create(model="gpt-4o")
    thread = sdk(isolated, MINI_RESOURCES).beta.threads.create()
    with sim.store.lock:  # an answer the gateway cannot map to a deployment name
        sim.store.assistants[assistant.id]["model"] = 7
    answer = call(
        isolated, MINI_RESOURCES, "POST", f"/v1/threads/{thread.id}/runs", json={"assistant_id": assistant.id}
    )
    assert answer.status_code == 404
    assert (answer.json()["error"]["code"], answer.json()["error"]["message"].split("`")[1]) == ("model_not_found", "7")


def test_continuing_an_unknown_run_names_the_run_not_its_thread(isolated, sim) -> None:
    thread = sdk(isolated, MINI_RESOURCES).beta.threads.create()
    outputs = {"tool_outputs": [{"tool_call_id": "call_1", "output": "42"}]}
    answer = call(
        isolated, MINI_RESOURCES, "POST", f"/v1/threads/{thread.id}/runs/run_gone/submit_tool_outputs", json=outputs
    )
    assert (answer.status_code, answer.json()["error"]["message"]) == (404, "No object found with id `run_gone`.")


def test_an_upstream_400_for_the_assistant_counts_as_not_found(isolated, sim) -> None:
    """Azure answers some ids it cannot parse with a 400 rather than a 404."""
    thread = sdk(isolated, MINI_RESOURCES).beta.threads.create()
    assistant = sdk(isolated, ALICE).beta.assistants.create(model="gpt-4o")
    sim.behaviour.fail = "content_filter"  # a 400 for every request from now on
    answer = call(
        isolated, MINI_RESOURCES, "POST", f"/v1/threads/{thread.id}/runs", json={"assistant_id": assistant.id}
    )
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "not_found")


def test_an_assistant_read_that_times_out_is_a_504(sim, start_gateway) -> None:
    patient = ISOLATION_CONFIG.replace("gateway:\n", "gateway:\n  timeouts: {read: 0.3}\n", 1)
    gateway = start_gateway(patient, {**SECRETS, **KEYS, "SIM_URL": sim.url})
    thread = sdk(gateway, MINI_RESOURCES).beta.threads.create()
    assistant = sdk(gateway, ALICE).beta.assistants.create(model="gpt-4o")
    sim.behaviour.delay = 1.0
    answer = call(gateway, MINI_RESOURCES, "POST", f"/v1/threads/{thread.id}/runs", json={"assistant_id": assistant.id})
    assert (answer.status_code, answer.json()["error"]["code"]) == (504, "upstream_timeout")


def test_only_a_batch_has_its_input_file_checked(isolated, sim) -> None:
    notes = sdk(isolated, MINI_RESOURCES).files.create(file=("notes.txt", b"not a batch\n"), purpose="assistants")
    sim.requests.clear()
    call(isolated, MINI_RESOURCES, "POST", "/v1/threads", json={"input_file_id": notes.id})
    assert [(r.method, r.path) for r in sim.requests] == [("POST", "/openai/threads")]  # the file was not read
