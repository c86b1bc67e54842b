from typing import Any

import orjson

from core.translation.objects import ObjectStreamTransform, object_ids, rewrite_models

PUBLIC = {"gpt4o-sweden": "gpt-4o"}


def test_models_are_mapped_back_everywhere_in_an_answer() -> None:
    answer: dict[str, Any] = {
        "object": "list",
        "data": [
            {"id": "asst_1", "object": "assistant", "model": "gpt4o-sweden"},
            {"id": "asst_2", "object": "assistant", "model": "other-deployment"},
        ],
    }
    assert rewrite_models(answer, PUBLIC)
    assert [a["model"] for a in answer["data"]] == ["gpt-4o", "other-deployment"]
    assert not rewrite_models({"model": "gpt-4o"}, PUBLIC)


def test_object_ids_include_references() -> None:
    run = {
        "id": "run_1",
        "object": "thread.run",
        "thread_id": "thread_1",
        "assistant_id": "asst_1",
        "tool_resources": {"file_search": {"vector_store_ids": ["vs_1"]}},
    }
    assert sorted(object_ids(run)) == ["asst_1", "thread_1", "vs_1"]  # a run is addressed through its thread
    assert object_ids({"id": "file-1", "object": "file"}) == ["file-1"]


def test_object_ids_of_a_list_page_are_its_items_ids() -> None:
    page = {
        "object": "list",
        "data": [{"id": "asst_1", "object": "assistant"}, {"id": "vs_1", "object": "vector_store"}],
        "first_id": "asst_1",
    }
    assert object_ids(page) == ["asst_1", "vs_1"]


def test_named_event_stream_keeps_names_and_untouched_bytes() -> None:
    seen: list[str] = []
    transform = ObjectStreamTransform(PUBLIC, seen.extend)
    created = (
        b"event: thread.run.created\n"
        b'data: {"id":"run_1","object":"thread.run","thread_id":"thread_1","model":"gpt4o-sweden"}\n\n'
    )
    delta = b'event: thread.message.delta\ndata: {"id":"msg_1","object":"thread.message.delta","delta":{}}\n\n'
    done = b"event: done\ndata: [DONE]\n\n"
    out = transform.feed(created[:30]) + transform.feed(created[30:] + delta + done)
    events = out.split(b"\n\n")
    assert events[0].startswith(b"event: thread.run.created\ndata: ")
    assert orjson.loads(events[0].split(b"data: ", 1)[1])["model"] == "gpt-4o"
    assert out.endswith(delta + done)
    assert seen == ["thread_1"]


RUN_COMPLETED = (
    b'event: thread.run.completed\ndata: {"id":"run_1","object":"thread.run","thread_id":"thread_1",'
    b'"usage":{"prompt_tokens":11,"completion_tokens":4,"total_tokens":15}}\n\n'
)


def test_named_event_stream_reports_the_usage_of_its_completed_event() -> None:
    transform = ObjectStreamTransform(PUBLIC, lambda ids: None)
    assert transform.counted_usage() == (None, False)  # nothing yet: a stream cut short counts nothing
    transform.feed(b'event: thread.run.created\ndata: {"id":"run_1","object":"thread.run","usage":null}\n\n')
    assert transform.counted_usage() == (None, False)
    transform.feed(RUN_COMPLETED)
    step = b'event: thread.run.step.created\ndata: {"id":"step_1","object":"thread.run.step","usage":null}\n\n'
    transform.feed(step)  # a later event without numbers keeps the usage already seen
    usage, estimated = transform.counted_usage()
    assert usage is not None and not estimated
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, 4, 15)


def test_a_rewritten_event_keeps_its_other_lines_byte_for_byte() -> None:
    """Only the data lines are re-encoded; an `id:` after them keeps its exact value, trailing space included."""
    for trailer in (b"id: evt-7 ", b"id: evt-X", b": a comment\t"):
        event = b'event: response.created\ndata: {"model":"gpt4o-sweden"}\n' + trailer + b"\n\n"
        out = ObjectStreamTransform(PUBLIC, lambda ids: None).feed(event)
        assert out == b"event: response.created\n" + trailer + b'\ndata: {"model":"gpt-4o"}\n\n'
