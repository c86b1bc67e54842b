"""Every row of the resource-path table (core/resources/paths.py SHAPES), each method of each shape, reached
through the gateway with the official openai SDK and arriving at the simulator.

mutmut does not mutate module-level tables, so no mutant ever emptied a row; this is the test that does the
job for the table: a row left out, or a method missing from one, answers the gateway's own 404 `unknown_url` and
nothing reaches the upstream, which fails that row's test. The call may still be an error from the simulator
(cancelling a run that has ended): what is checked is that the gateway served the shape and sent it on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property
from typing import Any

import openai
import pytest

from azure_sim import AzureSimulator
from azure_sim.resources import RESOURCES
from core.resources.paths import ID, SHAPES
from tests.support.standard import ALICE, SECRETS
from tests.test_resources_paths import PATHS_CONFIG


@pytest.fixture(scope="module")
def rows_gateway(sim: AzureSimulator, start_gateway_session):
    return start_gateway_session(PATHS_CONFIG, {**SECRETS, "SIM_URL": sim.url})


class Objects:
    """The objects a row's call needs, created through the gateway when first asked for (the simulator forgets
    them between tests)."""

    def __init__(self, client: openai.OpenAI) -> None:
        self.client = client

    @cached_property
    def assistant(self) -> Any:
        return self.client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")

    @cached_property
    def thread(self) -> Any:
        return self.client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])

    @cached_property
    def message(self) -> Any:
        return self.client.beta.threads.messages.create(self.thread.id, role="user", content="Hello")

    @cached_property
    def run(self) -> Any:
        return self.client.beta.threads.runs.create_and_poll(thread_id=self.thread.id, assistant_id=self.assistant.id)

    @cached_property
    def step_id(self) -> str:
        steps = self.client.beta.threads.runs.steps.list(self.run.id, thread_id=self.thread.id).data
        return steps[0].id if steps else "step_none"

    @cached_property
    def file(self) -> Any:
        return self.client.files.create(file=("notes.txt", b"The gateway keeps notes."), purpose="assistants")

    @cached_property
    def batch_input(self) -> Any:
        line = b'{"custom_id": "1", "method": "POST", "url": "/chat/completions", "body": {"model": "gpt-4o"}}\n'
        return self.client.files.create(file=("input.jsonl", line), purpose="batch")

    @cached_property
    def vector_store(self) -> Any:
        return self.client.vector_stores.create(name="notes")

    @cached_property
    def vector_store_file(self) -> Any:
        return self.client.vector_stores.files.create(self.vector_store.id, file_id=self.file.id)

    @cached_property
    def file_batch(self) -> Any:
        return self.client.vector_stores.file_batches.create(self.vector_store.id, file_ids=[self.file.id])

    @cached_property
    def batch(self) -> Any:
        return self.client.batches.create(
            input_file_id=self.batch_input.id, endpoint="/v1/chat/completions", completion_window="24h"
        )

    @cached_property
    def response(self) -> Any:
        return self.client.responses.create(model="gpt-4o", input="Hi")


Call = Callable[[openai.OpenAI, Objects], object]
_RUN = "threads/{id}/runs/{id}"
_VS = "vector_stores/{id}"
_FB = _VS + "/file_batches/{id}"
# One call per (shape, method) of SHAPES, with the SDK's own method for it.
ROWS: dict[tuple[str, str], Call] = {
    ("assistants", "GET"): lambda c, o: c.beta.assistants.list(),
    ("assistants", "POST"): lambda c, o: c.beta.assistants.create(model="gpt-4o"),
    ("assistants/{id}", "GET"): lambda c, o: c.beta.assistants.retrieve(o.assistant.id),
    ("assistants/{id}", "POST"): lambda c, o: c.beta.assistants.update(o.assistant.id, name="renamed"),
    ("assistants/{id}", "DELETE"): lambda c, o: c.beta.assistants.delete(o.assistant.id),
    ("threads", "POST"): lambda c, o: c.beta.threads.create(),
    ("threads/runs", "POST"): lambda c, o: c.beta.threads.create_and_run(assistant_id=o.assistant.id),
    ("threads/{id}", "GET"): lambda c, o: c.beta.threads.retrieve(o.thread.id),
    ("threads/{id}", "POST"): lambda c, o: c.beta.threads.update(o.thread.id, metadata={"k": "v"}),
    ("threads/{id}", "DELETE"): lambda c, o: c.beta.threads.delete(o.thread.id),
    ("threads/{id}/messages", "GET"): lambda c, o: c.beta.threads.messages.list(o.thread.id),
    ("threads/{id}/messages", "POST"): lambda c, o: c.beta.threads.messages.create(
        o.thread.id, role="user", content="Hi"
    ),
    ("threads/{id}/messages/{id}", "GET"): lambda c, o: c.beta.threads.messages.retrieve(
        o.message.id, thread_id=o.thread.id
    ),
    ("threads/{id}/messages/{id}", "POST"): lambda c, o: c.beta.threads.messages.update(
        o.message.id, thread_id=o.thread.id, metadata={"k": "v"}
    ),
    ("threads/{id}/messages/{id}", "DELETE"): lambda c, o: c.beta.threads.messages.delete(
        o.message.id, thread_id=o.thread.id
    ),
    ("threads/{id}/runs", "GET"): lambda c, o: c.beta.threads.runs.list(o.thread.id),
    ("threads/{id}/runs", "POST"): lambda c, o: c.beta.threads.runs.create(o.thread.id, assistant_id=o.assistant.id),
    (_RUN, "GET"): lambda c, o: c.beta.threads.runs.retrieve(o.run.id, thread_id=o.thread.id),
    (_RUN, "POST"): lambda c, o: c.beta.threads.runs.update(o.run.id, thread_id=o.thread.id, metadata={"k": "v"}),
    (_RUN + "/submit_tool_outputs", "POST"): lambda c, o: c.beta.threads.runs.submit_tool_outputs(
        o.run.id, thread_id=o.thread.id, tool_outputs=[{"tool_call_id": "call_1", "output": "sunny"}]
    ),
    (_RUN + "/cancel", "POST"): lambda c, o: c.beta.threads.runs.cancel(o.run.id, thread_id=o.thread.id),
    (_RUN + "/steps", "GET"): lambda c, o: c.beta.threads.runs.steps.list(o.run.id, thread_id=o.thread.id),
    (_RUN + "/steps/{id}", "GET"): lambda c, o: c.beta.threads.runs.steps.retrieve(
        o.step_id, thread_id=o.thread.id, run_id=o.run.id
    ),
    ("vector_stores", "GET"): lambda c, o: c.vector_stores.list(),
    ("vector_stores", "POST"): lambda c, o: c.vector_stores.create(name="more notes"),
    (_VS, "GET"): lambda c, o: c.vector_stores.retrieve(o.vector_store.id),
    (_VS, "POST"): lambda c, o: c.vector_stores.update(o.vector_store.id, name="renamed"),
    (_VS, "DELETE"): lambda c, o: c.vector_stores.delete(o.vector_store.id),
    (_VS + "/files", "GET"): lambda c, o: c.vector_stores.files.list(o.vector_store.id),
    (_VS + "/files", "POST"): lambda c, o: c.vector_stores.files.create(o.vector_store.id, file_id=o.file.id),
    (_VS + "/files/{id}", "GET"): lambda c, o: c.vector_stores.files.retrieve(
        o.vector_store_file.id, vector_store_id=o.vector_store.id
    ),
    (_VS + "/files/{id}", "DELETE"): lambda c, o: c.vector_stores.files.delete(
        o.vector_store_file.id, vector_store_id=o.vector_store.id
    ),
    (_VS + "/search", "POST"): lambda c, o: c.vector_stores.search(o.vector_store.id, query="notes"),
    (_VS + "/file_batches", "POST"): lambda c, o: c.vector_stores.file_batches.create(
        o.vector_store.id, file_ids=[o.file.id]
    ),
    (_FB, "GET"): lambda c, o: c.vector_stores.file_batches.retrieve(
        o.file_batch.id, vector_store_id=o.vector_store.id
    ),
    (_FB + "/cancel", "POST"): lambda c, o: c.vector_stores.file_batches.cancel(
        o.file_batch.id, vector_store_id=o.vector_store.id
    ),
    (_FB + "/files", "GET"): lambda c, o: c.vector_stores.file_batches.list_files(
        o.file_batch.id, vector_store_id=o.vector_store.id
    ),
    ("files", "GET"): lambda c, o: c.files.list(),
    ("files", "POST"): lambda c, o: c.files.create(file=("more.txt", b"More notes."), purpose="assistants"),
    ("files/{id}", "GET"): lambda c, o: c.files.retrieve(o.file.id),
    ("files/{id}", "DELETE"): lambda c, o: c.files.delete(o.file.id),
    ("files/{id}/content", "GET"): lambda c, o: c.files.content(o.file.id).read(),
    ("batches", "GET"): lambda c, o: c.batches.list(),
    ("batches", "POST"): lambda c, o: o.batch,
    ("batches/{id}", "GET"): lambda c, o: c.batches.retrieve(o.batch.id),
    ("batches/{id}/cancel", "POST"): lambda c, o: c.batches.cancel(o.batch.id),
    ("responses", "POST"): lambda c, o: c.responses.create(model="gpt-4o", input="Hello"),
    ("responses/{id}", "GET"): lambda c, o: c.responses.retrieve(o.response.id),
    ("responses/{id}", "DELETE"): lambda c, o: c.responses.delete(o.response.id),
    ("responses/{id}/input_items", "GET"): lambda c, o: c.responses.input_items.list(o.response.id),
}


def fits(shape: str, path: str) -> bool:
    """Whether an upstream path (`/openai/...` or `/openai/v1/...`) is `shape`, an id in each `{id}` slot."""
    relative = re.sub(r"^/openai/(v1/)?", "", path).rstrip("/")
    parts, segments = shape.split("/"), relative.split("/")
    return len(parts) == len(segments) and all(p in (ID, s) for p, s in zip(parts, segments, strict=True))


def test_every_row_of_the_table_has_its_call() -> None:
    assert set(ROWS) == {(shape, method) for shape, methods in SHAPES.items() for method in methods}


def test_the_simulator_serves_every_row() -> None:
    served = {(r.method, re.sub(r"\{[a-z_]+\}", ID, r.path)) for r in RESOURCES}
    assert {(method, shape) for shape, method in ROWS} <= served


@pytest.mark.parametrize(("shape", "method"), list(ROWS), ids=[f"{method} {shape}" for shape, method in ROWS])
def test_each_row_is_served_and_reaches_the_upstream(rows_gateway, sim: AzureSimulator, shape: str, method: str):
    client = openai.OpenAI(api_key=ALICE, base_url=f"{rows_gateway.url}/v1", max_retries=0, timeout=10)
    objects = Objects(client)
    try:
        ROWS[(shape, method)](client, objects)
    except openai.APIStatusError as error:  # the simulator's own refusal (a run that ended, ...): still served
        body = error.body if isinstance(error.body, dict) else {}
        assert body.get("code") != "unknown_url", (shape, method, error)
    reached = [r for r in sim.requests if r.method == method and fits(shape, r.path)]
    assert reached, [(r.method, r.path) for r in sim.requests]
