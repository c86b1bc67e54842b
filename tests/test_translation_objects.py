import orjson

from core.translation.objects import ObjectStreamTransform, object_ids, rewrite_models

PUBLIC = {"gpt4o-sweden": "gpt-4o"}


def test_models_are_mapped_back_everywhere_in_an_answer() -> None:
    answer = {
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


def test_named_event_stream_keeps_names_and_untouched_bytes() -> None:
    seen: list[str] = []
    transform = ObjectStreamTransform(PUBLIC, seen.extend)
    created = b'event: thread.run.created\ndata: {"id":"run_1","object":"thread.run","thread_id":"thread_1","model":"gpt4o-sweden"}\n\n'
    delta = b'event: thread.message.delta\ndata: {"id":"msg_1","object":"thread.message.delta","delta":{}}\n\n'
    done = b"event: done\ndata: [DONE]\n\n"
    out = transform.feed(created[:30]) + transform.feed(created[30:] + delta + done)
    events = out.split(b"\n\n")
    assert events[0].startswith(b"event: thread.run.created\ndata: ")
    assert orjson.loads(events[0].split(b"data: ", 1)[1])["model"] == "gpt-4o"
    assert out.endswith(delta + done)
    assert seen == ["thread_1"]
