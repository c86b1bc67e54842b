from typing import Any

import orjson
import pytest

from core.errors import GatewayError
from core.translation.objects import Counting, ObjectsTranslator, ObjectStreamTransform, object_ids, rewrite_models
from core.translation.usage import CountedOnce, Usage

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
    transform = ObjectStreamTransform(PUBLIC, lambda ids: None, Counting(CountedOnce()))
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


# -- what resource-scoped answers count

USAGE = {
    "input_tokens": 40,
    "input_tokens_details": {"cached_tokens": 8},
    "output_tokens": 60,
    "output_tokens_details": {"reasoning_tokens": 16},
    "total_tokens": 100,
}
COUNTED = Usage(40, 60, 100, "gpt4o-sweden", cached_tokens=8, reasoning_tokens=16)
HOSTILE = {"usage": '{"total_tokens": 0}', "model": "not-it"}


def response(**fields: Any) -> dict[str, Any]:
    """A response as Azure orders its keys: the caller's `user` and `metadata` after the usage."""
    answer = {"id": "resp_1", "object": "response", "status": "completed", "background": False}
    return {**answer, "model": "gpt4o-sweden", "output": [], "usage": USAGE, "user": "u", "metadata": HOSTILE, **fields}


def translator(counted: CountedOnce | None = None, *, creates: bool = False) -> ObjectsTranslator:
    counting = Counting(counted or CountedOnce(), creates_response=creates)
    return ObjectsTranslator("sweden", PUBLIC, lambda ids: None, counting=counting)


def run(status: str = "completed", run_id: str = "run_1") -> dict[str, Any]:
    usage = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15} if status == "completed" else None
    return {"id": run_id, "object": "thread.run", "status": status, "model": "gpt4o-sweden", "usage": usage}


def test_a_new_response_counts_its_own_usage_and_reading_it_counts_nothing() -> None:
    body = orjson.dumps(response())
    assert translator(creates=True).usage(body) == COUNTED
    assert translator().usage(body) is None  # GET /v1/responses/{id}: a read
    assert ObjectsTranslator("sweden", PUBLIC, lambda ids: None).usage(body) is None  # nothing counted at all


def test_a_background_response_counts_once_when_first_seen_done() -> None:
    counted = CountedOnce()
    queued = orjson.dumps(response(background=True, status="queued", usage=None))
    assert translator(counted, creates=True).usage(queued) is None
    done = orjson.dumps(response(background=True))
    assert [translator(counted).usage(done) for _ in range(3)] == [COUNTED, None, None]


def test_a_run_counts_once_when_first_seen_with_its_usage_and_its_reads_count_nothing() -> None:
    counted = CountedOnce()
    assert translator(counted).usage(orjson.dumps(run("queued"))) is None
    assert translator(counted).usage(orjson.dumps(run("in_progress"))) is None
    polls = [translator(counted).usage(orjson.dumps(run())) for _ in range(3)]
    assert polls == [Usage(11, 4, 15, "gpt4o-sweden"), None, None]
    assert translator(counted).usage(orjson.dumps(run(run_id="run_2"))) == Usage(11, 4, 15, "gpt4o-sweden")
    step = {"id": "step_1", "object": "thread.run.step", "usage": {"total_tokens": 15}}
    page = {"object": "list", "data": [run(run_id="run_3")]}
    message = {"id": "msg_1", "object": "thread.message", "usage": {"total_tokens": 3}}
    for read in (step, page, message):
        assert translator(counted).usage(orjson.dumps(read)) is None
    assert translator(counted).usage(orjson.dumps(run(run_id="run_3"))) is not None  # the list did not count it


def test_an_answer_is_parsed_once_for_its_usage_and_its_rewriting() -> None:
    body = orjson.dumps(response())
    rewriter = translator(creates=True)
    assert rewriter.usage(body) == COUNTED
    assert orjson.loads(rewriter.answer(body))["model"] == "gpt-4o"
    assert rewriter.answer(body) == rewriter.answer(bytes(body))  # another body with the same bytes: the same
    for unusable in (b"[1]", b"not json"):
        assert rewriter.usage(unusable) is None
        with pytest.raises(GatewayError) as bad:
            rewriter.answer(unusable)
        assert bad.value.status == 502


def test_an_answers_usage_asked_after_its_rewriting_is_as_the_upstream_sent_it_and_counts_once() -> None:
    # The gateway reads a whole answer's usage once the answer is sent (core/exchange.py), after `answer` rewrote its
    # model names in place: the usage still names the deployment, and a run read so still counts once.
    body = orjson.dumps(response())
    rewriter = translator(creates=True)
    assert orjson.loads(rewriter.answer(body))["model"] == "gpt-4o"
    assert rewriter.usage(body) == COUNTED
    counted = CountedOnce()
    done = orjson.dumps(run())
    reader = translator(counted)
    reader.answer(done)
    assert [reader.usage(done), reader.usage(done)] == [Usage(11, 4, 15, "gpt4o-sweden")] * 2  # one answer, one count
    assert translator(counted).usage(done) is None  # the next read of the run


def named(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def response_stream(last: str, **fields: Any) -> list[bytes]:
    opening = {**response(**fields), "status": "in_progress", "usage": None}
    delta = {"type": "response.output_text.delta", "delta": "Hi", "item_id": "msg_1"}
    return [
        named("response.created", {"type": "response.created", "response": opening}),
        named("response.output_text.delta", delta),
        named("response.output_text.delta", delta),
        named(last, {"type": last, "response": response(**fields)}),
    ]


@pytest.mark.parametrize("last", ["response.completed", "response.incomplete", "response.failed"])
def test_a_response_stream_counts_its_last_events_usage_whatever_pieces_it_comes_in(last: str) -> None:
    stream = b"".join(response_stream(last))
    for cut in range(0, len(stream), 7):
        transform = ObjectStreamTransform(PUBLIC, lambda ids: None, Counting(CountedOnce(), creates_response=True))
        transform.feed(stream[:cut])
        transform.feed(stream[cut:])
        assert transform.counted_usage() == (COUNTED, False), cut


def test_a_response_stream_cut_short_counts_an_estimate_when_usage_is_counted() -> None:
    *head, _ = response_stream("response.completed")
    counting = Counting(CountedOnce(), creates_response=True, prompt=b"x" * 40)
    transform = ObjectStreamTransform(PUBLIC, lambda ids: None, counting)
    transform.feed(b"".join(head))
    assert transform.counted_usage() == (Usage(10, 2, 12), True)  # one token per delta relayed
    silent = ObjectStreamTransform(PUBLIC, lambda ids: None, Counting(CountedOnce(), creates_response=True))
    silent.feed(b"".join(head))
    assert silent.counted_usage() == (None, False)
    failed = ObjectStreamTransform(PUBLIC, lambda ids: None, counting)
    failed.feed(b"".join(response_stream("response.failed", usage=None)))
    assert failed.counted_usage() == (None, False)  # it ended: Azure said what it spent, nothing


def test_a_run_streamed_then_polled_counts_once() -> None:
    counted = CountedOnce()
    transform = ObjectStreamTransform(PUBLIC, lambda ids: None, Counting(counted))
    transform.feed(named("thread.run.created", run("queued")) + RUN_COMPLETED.replace(b"run_1", b"run_9"))
    assert transform.counted_usage() == (Usage(11, 4, 15), False)
    assert translator(counted).usage(orjson.dumps(run(run_id="run_9"))) is None
    cut = ObjectStreamTransform(PUBLIC, lambda ids: None, Counting(counted, prompt=b"x" * 40))
    cut.feed(named("thread.run.created", run("queued", run_id="run_10")))
    assert cut.counted_usage() == (None, False)  # the run goes on at Azure: its first read done counts it


def test_ids_are_never_learnt_from_what_the_caller_wrote() -> None:
    answer = {
        "id": "thread_own",
        "object": "thread",
        "metadata": {"thread_id": "thread_victim", "file_ids": ["file_victim"]},
        "tools": [{"type": "function", "function": {"parameters": {"assistant_id": "asst_victim"}}}],
        "response_format": {"type": "json_schema", "json_schema": {"schema": {"vector_store_id": "vs_victim"}}},
        "tool_resources": {"file_search": {"vector_store_ids": ["vs_own"]}},
    }
    assert object_ids(answer) == ["thread_own", "vs_own"]
