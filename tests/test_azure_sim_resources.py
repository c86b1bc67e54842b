"""The simulator's images/audio operations and its stateful resource routes (assistants, threads, runs, vector
stores, files, batches, responses) under the dated and the v1 scheme, against two instances (two regions)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from azure_sim import AzureSimulator
from tests.support.json_values import json_object

KEY = "sim-key"
PREVIEW = "?api-version=2025-04-01-preview"
GA = "?api-version=2024-10-21"
DEPLOYMENTS = {"gpt-4o", "dalle", "whisper", "tts", "ada"}
FUNCTION_TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


@pytest.fixture(scope="module")
def _regions() -> Iterator[tuple[AzureSimulator, AzureSimulator]]:
    with (
        AzureSimulator(api_keys={KEY}, deployments=DEPLOYMENTS, name="east") as east,
        AzureSimulator(api_keys={KEY}, name="west") as west,
    ):
        yield east, west


@pytest.fixture
def sims(_regions: tuple[AzureSimulator, AzureSimulator]) -> tuple[AzureSimulator, AzureSimulator]:
    for sim in _regions:
        sim.reset()
    return _regions


@pytest.fixture
def east(sims: tuple[AzureSimulator, AzureSimulator]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sims[0].url + "/openai/", headers={"api-key": KEY}, timeout=5) as client:
        yield client


@pytest.fixture
def west(sims: tuple[AzureSimulator, AzureSimulator]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sims[1].url + "/openai/", headers={"api-key": KEY}, timeout=5) as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return json_object(response.json())


def events(response: httpx.Response) -> list[tuple[str, str]]:
    """(event name, raw data) of each named SSE event."""
    assert response.headers["content-type"].startswith("text/event-stream")
    parsed = []
    for block in response.text.split("\n\n"):
        if block:
            name, data = block.split("\n")
            assert name.startswith("event: ") and data.startswith("data: ")
            parsed.append((name[7:], data[6:]))
    return parsed


def test_version_rules_auth_and_v1_versions(east: httpx.Client) -> None:
    assert ok(east.get("assistants" + PREVIEW))["data"] == []
    for version in ("2024-10-21", "2024-02-01-preview", "2024-05-01"):  # GA, too old, not a preview
        r = east.get(f"assistants?api-version={version}")
        assert (r.status_code, r.json()) == (404, {"error": {"code": "404", "message": "Resource not found"}})
    assert east.get("threads/x?api-version=2024-02-15-preview").status_code == 404  # allowed; no such thread
    assert "No thread found" in east.get("threads/x?api-version=2024-02-15-preview").text
    assert east.get("responses/x?api-version=2024-12-01-preview").json()["error"]["code"] == "404"
    assert "No response found" in east.get("responses/x?api-version=2025-03-01-preview").json()["error"]["message"]
    assert ok(east.get("files" + GA))["object"] == "list"  # files and batches take any valid version
    assert ok(east.get("batches?api-version=2023-05-15"))["object"] == "list"
    assert east.get("files").status_code == 404  # missing
    assert east.get("files?api-version=latest").json()["error"]["code"] == "BadRequest"
    assert east.get("files" + GA, headers={"api-key": ""}).status_code == 401
    for version in ("", "?api-version=v1", "?api-version=preview"):
        assert ok(east.get("v1/assistants" + version))["object"] == "list"
    assert east.get("v1/files?api-version=2024-10-21").json()["error"]["code"] == "BadRequest"


def test_assistants_round_trip_pagination_and_model_check(
    east: httpx.Client, sims: tuple[AzureSimulator, AzureSimulator]
) -> None:
    ids = [ok(east.post("assistants" + PREVIEW, json={"model": "gpt-4o", "name": f"a{i}"}))["id"] for i in range(3)]
    assert all(i.startswith("asst_") for i in ids) and len(set(ids)) == 3
    got = ok(east.get(f"assistants/{ids[0]}" + PREVIEW))
    assert (got["object"], got["model"], got["name"], got["tools"]) == ("assistant", "gpt-4o", "a0", [])
    page = ok(east.get("assistants" + PREVIEW + "&limit=2"))
    assert [a["id"] for a in page["data"]] == ids[:0:-1] and page["has_more"]  # newest first
    assert (page["first_id"], page["last_id"]) == (ids[2], ids[1])
    rest = ok(east.get("assistants" + PREVIEW + "&limit=2&after=" + page["last_id"]))
    assert [a["id"] for a in rest["data"]] == [ids[0]] and not rest["has_more"]
    asc = ok(east.get("assistants" + PREVIEW + "&order=asc&before=" + ids[2]))
    assert [a["id"] for a in asc["data"]] == ids[:2]
    changed = ok(east.post(f"assistants/{ids[0]}" + PREVIEW, json={"name": "renamed", "metadata": {"k": "v"}}))
    assert (changed["name"], changed["metadata"], changed["model"]) == ("renamed", {"k": "v"}, "gpt-4o")
    assert ok(east.delete(f"assistants/{ids[0]}" + PREVIEW)) == {
        "id": ids[0],
        "object": "assistant.deleted",
        "deleted": True,
    }
    r = east.get(f"assistants/{ids[0]}" + PREVIEW)
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "message": f"No assistant found with id '{ids[0]}'.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    r = east.post("assistants" + PREVIEW, json={"model": "gpt-4"})  # not a deployment of this region
    assert r.status_code == 400 and r.json()["error"]["code"] == "DeploymentNotFound"
    assert east.post("assistants" + PREVIEW, json={"name": "x"}).json()["error"]["param"] == "model"
    assert sims[0].requests[-1].operation == "Assistants_Create"


def test_objects_are_region_local_and_ids_never_collide(east: httpx.Client, west: httpx.Client) -> None:
    a_east = ok(east.post("assistants" + PREVIEW, json={"model": "gpt-4o"}))["id"]
    a_west = ok(west.post("assistants" + PREVIEW, json={"model": "anything"}))["id"]  # west checks no deployments
    assert a_east != a_west
    assert west.get(f"assistants/{a_east}" + PREVIEW).status_code == 404
    thread = ok(west.post("threads" + PREVIEW, json={}))["id"]
    r = west.post(f"threads/{thread}/runs" + PREVIEW, json={"assistant_id": a_east})
    assert r.status_code == 404 and r.json()["error"]["message"] == f"No assistant found with id '{a_east}'."
    assert east.get(f"threads/{thread}" + PREVIEW).status_code == 404
    # the dated and the v1 routes share one region's store
    assert ok(east.get(f"v1/assistants/{a_east}"))["id"] == a_east


def test_run_lifecycle_with_a_tool_call(east: httpx.Client) -> None:
    assistant = ok(east.post("assistants" + PREVIEW, json={"model": "gpt-4o", "tools": [FUNCTION_TOOL]}))
    thread = ok(east.post("threads" + PREVIEW, json={"messages": [{"role": "user", "content": "look it up"}]}))
    base = f"threads/{thread['id']}"
    run = ok(east.post(f"{base}/runs" + PREVIEW, json={"assistant_id": assistant["id"], "model": "ada"}))
    assert (run["status"], run["model"], run["object"]) == ("requires_action", "ada", "thread.run")
    (tool_call,) = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert tool_call["function"]["name"] == "lookup"
    assert east.post(f"{base}/messages" + PREVIEW, json={"role": "user", "content": "x"}).status_code == 400  # busy
    wrong = east.post(f"{base}/runs/{run['id']}/submit_tool_outputs" + PREVIEW, json={"tool_outputs": []})
    assert wrong.status_code == 400
    outputs = {"tool_outputs": [{"tool_call_id": tool_call["id"], "output": "42"}]}
    done = ok(east.post(f"{base}/runs/{run['id']}/submit_tool_outputs" + PREVIEW, json=outputs))
    assert done["status"] == "completed" and done["usage"]["total_tokens"] > 0
    assert ok(east.get(f"{base}/runs/{run['id']}" + PREVIEW))["status"] == "completed"
    messages = ok(east.get(f"{base}/messages" + PREVIEW))["data"]
    assert [(m["role"], m["content"][0]["text"]["value"]) for m in messages] == [
        ("assistant", "Echo: look it up"),
        ("user", "look it up"),
    ]
    steps = ok(east.get(f"{base}/runs/{run['id']}/steps" + PREVIEW + "&order=asc"))["data"]
    assert [(s["type"], s["status"]) for s in steps] == [("tool_calls", "completed"), ("message_creation", "completed")]
    assert steps[0]["step_details"]["tool_calls"][0]["function"]["output"] == "42"
    assert ok(east.get(f"{base}/runs/{run['id']}/steps/{steps[1]['id']}" + PREVIEW))["id"] == steps[1]["id"]
    assert east.post(f"{base}/runs/{run['id']}/cancel" + PREVIEW).status_code == 400  # already completed
    # a second run that is cancelled while it waits for tool outputs
    second = ok(east.post(f"{base}/runs" + PREVIEW, json={"assistant_id": assistant["id"]}))
    assert second["model"] == "gpt-4o"  # the assistant's, as stored
    assert ok(east.post(f"{base}/runs/{second['id']}/cancel" + PREVIEW))["status"] == "cancelling"
    assert ok(east.get(f"{base}/runs/{second['id']}" + PREVIEW))["status"] == "cancelled"
    assert [r["id"] for r in ok(east.get(f"{base}/runs" + PREVIEW))["data"]] == [second["id"], run["id"]]
    assert ok(east.delete(base + PREVIEW))["deleted"] and east.get(base + PREVIEW).status_code == 404


RUN_EVENTS = [
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
    *["thread.message.delta"] * 3,
    "thread.message.completed",
    "thread.run.step.completed",
    "thread.run.completed",
    "done",
]


def test_streamed_runs(east: httpx.Client) -> None:
    plain = ok(east.post("v1/assistants", json={"model": "gpt-4o"}))["id"]
    body = {"assistant_id": plain, "stream": True, "thread": {"messages": [{"role": "user", "content": "hi there"}]}}
    streamed = events(east.post("threads/runs" + PREVIEW, json=body, headers={"x-sim-chunks": "3"}))
    assert [name for name, _ in streamed] == ["thread.created", *RUN_EVENTS]
    assert streamed[-1] == ("done", "[DONE]")
    deltas = [orjson.loads(data) for name, data in streamed if name == "thread.message.delta"]
    assert "".join(d["delta"]["content"][0]["text"]["value"] for d in deltas) == "Echo: hi there"
    completed = orjson.loads(streamed[-2][1])
    assert (completed["status"], completed["model"]) == ("completed", "gpt-4o")

    tooled = ok(east.post("assistants" + PREVIEW, json={"model": "gpt-4o", "tools": [FUNCTION_TOOL]}))["id"]
    thread = ok(east.post("threads" + PREVIEW, json={"messages": [{"role": "user", "content": "q"}]}))["id"]
    streamed = events(east.post(f"threads/{thread}/runs" + PREVIEW, json={"assistant_id": tooled, "stream": True}))
    assert [name for name, _ in streamed][-2:] == ["thread.run.requires_action", "done"]
    run = orjson.loads(streamed[-2][1])
    call_id = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"]
    outputs = {"tool_outputs": [{"tool_call_id": call_id, "output": "x"}], "stream": True}
    streamed = events(east.post(f"threads/{thread}/runs/{run['id']}/submit_tool_outputs" + PREVIEW, json=outputs))
    names = [name for name, _ in streamed]
    assert names[:3] == ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"]
    assert names[-3:] == ["thread.run.step.completed", "thread.run.completed", "done"]
    with pytest.raises(httpx.RemoteProtocolError):  # x-sim-fail: abort cuts the stream after two deltas
        east.post("threads/runs" + PREVIEW, json=body, headers={"x-sim-fail": "abort"})


def test_responses_json_stream_chain_and_input_items(east: httpx.Client) -> None:
    first = ok(east.post("responses" + PREVIEW, json={"model": "gpt-4o", "input": "hello world"}))
    assert first["id"].startswith("resp_") and (first["object"], first["status"]) == ("response", "completed")
    assert first["output"][0]["content"][0] == {"type": "output_text", "text": "Echo: hello world", "annotations": []}
    assert first["usage"] == {**first["usage"], "input_tokens": 2, "output_tokens": 3, "total_tokens": 5}
    r = east.post("v1/responses", json={"model": "gpt-4o", "input": "x", "previous_response_id": "resp_nope"})
    assert r.status_code == 404
    messages = [{"role": "user", "content": [{"type": "input_text", "text": "again"}]}]
    body = {"model": "gpt-4o", "input": messages, "previous_response_id": first["id"], "stream": True}
    streamed = events(east.post("v1/responses", json=body, headers={"x-sim-chunks": "2"}))
    assert [name for name, _ in streamed] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    payloads = [orjson.loads(data) for _, data in streamed]
    assert [p["sequence_number"] for p in payloads] == list(range(10))
    assert all(p["type"] == name for p, (name, _) in zip(payloads, streamed, strict=True))
    assert "".join(p["delta"] for p in payloads if "delta" in p) == "Echo: again"
    second = payloads[-1]["response"]
    assert (second["model"], second["previous_response_id"]) == ("gpt-4o", first["id"])
    assert ok(east.get(f"responses/{second['id']}" + PREVIEW))["output"][0]["content"][0]["text"] == "Echo: again"
    items = ok(east.get(f"responses/{first['id']}/input_items" + PREVIEW))
    assert [i["content"] for i in items["data"]] == [[{"type": "input_text", "text": "hello world"}]]
    assert east.post("responses" + PREVIEW, json={"model": "gpt-5", "input": "x"}).status_code == 400
    assert ok(east.delete(f"responses/{first['id']}" + PREVIEW))["deleted"]
    assert east.get(f"responses/{first['id']}" + PREVIEW).status_code == 404
    unstored = ok(east.post("responses" + PREVIEW, json={"model": "gpt-4o", "input": "x", "store": False}))
    assert east.get(f"responses/{unstored['id']}" + PREVIEW).status_code == 404


def test_files_batches_and_vector_stores(
    east: httpx.Client, west: httpx.Client, sims: tuple[AzureSimulator, AzureSimulator]
) -> None:
    data = bytes(range(256)) * 1000  # several download chunks
    r = east.post("files" + GA, files={"file": ("in.jsonl", data)}, data={"purpose": "batch"})
    file = ok(r, 201)
    assert (file["object"], file["bytes"], file["filename"], file["purpose"], file["status"]) == (
        "file",
        len(data),
        "in.jsonl",
        "batch",
        "processed",
    )
    seen = sims[0].requests[-1]
    assert (seen.upload_bytes, seen.upload_sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert seen.form == {"purpose": "batch"}
    assert seen.body == b"" and seen.json is None
    with east.stream("GET", f"files/{file['id']}/content" + GA) as download:
        assert download.headers["content-type"] == "application/octet-stream"
        assert hashlib.sha256(download.read()).hexdigest() == seen.upload_sha256
    no_file = east.post("files" + GA, data={"purpose": "batch"}, files={"x": ("a", b"")})
    assert no_file.json()["error"]["param"] == "file"
    assert east.post("files" + GA, files={"file": ("a", b"1")}).json()["error"]["param"] == "purpose"
    other = ok(east.post("files" + GA, files={"file": ("doc.txt", b"text")}, data={"purpose": "assistants"}), 201)
    assert [f["id"] for f in ok(east.get("files" + GA + "&purpose=batch"))["data"]] == [file["id"]]

    body = {"input_file_id": file["id"], "endpoint": "/chat/completions", "completion_window": "24h"}
    batch = ok(east.post("batches" + GA, json=body))
    assert (batch["object"], batch["status"]) == ("batch", "validating")
    assert west.post("batches" + GA, json=body).status_code == 404  # the file lives in east
    assert ok(east.get(f"batches/{batch['id']}" + GA))["id"] == batch["id"]
    assert ok(east.post(f"batches/{batch['id']}/cancel" + GA))["status"] == "cancelling"
    assert [b["id"] for b in ok(east.get("v1/batches"))["data"]] == [batch["id"]]

    store = ok(east.post("vector_stores" + PREVIEW, json={"name": "kb", "file_ids": [other["id"]]}))
    assert store["file_counts"]["completed"] == 1 and store["usage_bytes"] == 4
    base = f"vector_stores/{store['id']}"
    added = ok(east.post(f"{base}/files" + PREVIEW, json={"file_id": file["id"]}))
    assert (added["object"], added["vector_store_id"]) == ("vector_store.file", store["id"])
    assert east.post(f"{base}/files" + PREVIEW, json={"file_id": "file-nope"}).status_code == 404
    assert len(ok(east.get(f"{base}/files" + PREVIEW))["data"]) == 2
    assert ok(east.delete(f"{base}/files/{file['id']}" + PREVIEW))["object"] == "vector_store.file.deleted"
    assert east.get(f"{base}/files/{file['id']}" + PREVIEW).status_code == 404
    search = ok(east.post(f"{base}/search" + PREVIEW, json={"query": "q"}))
    assert (search["object"], search["data"], search["search_query"]) == ("vector_store.search_results.page", [], ["q"])
    fb = ok(east.post(f"{base}/file_batches" + PREVIEW, json={"file_ids": [file["id"]]}))
    assert (fb["object"], fb["status"]) == ("vector_store.files_batch", "in_progress")
    assert ok(east.get(f"{base}/file_batches/{fb['id']}" + PREVIEW))["status"] == "completed"
    assert [f["id"] for f in ok(east.get(f"{base}/file_batches/{fb['id']}/files" + PREVIEW))["data"]] == [file["id"]]
    fb2 = ok(east.post(f"v1/{base}/file_batches", json={"file_ids": [other["id"]]}))
    assert ok(east.post(f"v1/{base}/file_batches/{fb2['id']}/cancel"))["status"] == "cancelled"
    assert ok(east.delete(base + PREVIEW))["deleted"] and east.get(base + PREVIEW).status_code == 404
    assert ok(east.delete(f"files/{file['id']}" + GA)) == {"id": file["id"], "object": "file", "deleted": True}
    assert east.get(f"files/{file['id']}/content" + GA).status_code == 404


AUDIO = "deployments/whisper/audio/{}" + GA


def test_audio_transcriptions_record_the_upload(
    east: httpx.Client, sims: tuple[AzureSimulator, AzureSimulator]
) -> None:
    audio = b"RIFF" + bytes(5000)
    r = east.post(AUDIO.format("transcriptions"), files={"file": ("speech.wav", audio)}, data={"language": "en"})
    assert ok(r) == {"text": "Transcribed 5004 bytes of speech.wav"}
    seen = sims[0].requests[-1]
    assert (seen.upload_bytes, seen.upload_filename) == (5004, "speech.wav")
    assert seen.upload_sha256 == hashlib.sha256(audio).hexdigest()
    assert seen.form == {"language": "en"} and seen.body == b""
    for fmt, expected in (("text", "Translated 5004 bytes of speech.wav"), ("vtt", "WEBVTT\n\n00:00:00.000")):
        upload = {"file": ("speech.wav", audio)}
        r = east.post(AUDIO.format("translations"), files=upload, data={"response_format": fmt})
        assert r.headers["content-type"].startswith("text/plain") and r.text.startswith(expected)
    verbose_json = {"response_format": "verbose_json"}
    verbose = ok(east.post(AUDIO.format("transcriptions"), files={"file": ("a.mp3", b"x")}, data=verbose_json))
    assert verbose["task"] == "transcribe" and verbose["segments"][0]["text"] == verbose["text"]
    assert east.post(AUDIO.format("transcriptions"), data={"language": "en"}).status_code == 400  # not multipart
    missing = east.post(AUDIO.format("transcriptions"), files={"other": ("a", b"1")}, data={"x": "y"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "file"


def test_speech_bytes(east: httpx.Client) -> None:
    url = "deployments/tts/audio/speech" + PREVIEW
    first = east.post(url, json={"model": "tts-1", "input": "hello", "voice": "alloy"})
    assert first.headers["content-type"] == "audio/mpeg" and len(first.content) == 65536
    assert first.content == east.post(url, json={"input": "hello", "voice": "alloy"}).content  # deterministic
    body = {"input": "hi", "voice": "echo", "response_format": "wav"}
    wav = east.post(url, json=body, headers={"x-sim-audio-bytes": "1000"})
    assert wav.headers["content-type"] == "audio/wav" and len(wav.content) == 1000 and wav.content[:4] == b"RIFF"
    assert east.post(url, json={"input": "hello"}).json()["error"]["param"] == "voice"


def test_images(east: httpx.Client, sims: tuple[AzureSimulator, AzureSimulator]) -> None:
    url = "deployments/dalle/images/generations" + GA
    by_url = ok(east.post(url, json={"prompt": "a cat", "n": 2}))
    assert [d["url"].startswith("https://sim.invalid/img/") for d in by_url["data"]] == [True, True]
    assert by_url["data"][0]["revised_prompt"] == "a cat" and by_url["created"] > 0
    inline = ok(east.post(url, json={"prompt": "a cat", "response_format": "b64_json"}))
    assert base64.b64decode(inline["data"][0]["b64_json"]).startswith(b"\x89PNG")
    blocked = east.post(url, json={"prompt": "a cat"}, headers={"x-sim-fail": "content_filter"})
    assert blocked.status_code == 400 and blocked.json()["error"]["code"] == "content_filter"
    edits = "deployments/dalle/images/edits" + PREVIEW
    edited = ok(east.post(edits, files={"image": ("in.png", b"\x89PNG....")}, data={"prompt": "add a hat"}))
    assert edited["data"][0]["revised_prompt"] == "add a hat"
    assert sims[0].requests[-1].upload_bytes == 8
    assert east.post(edits, files={"image": ("in.png", b"x")}).json()["error"]["param"] == "prompt"
    assert east.post("deployments/nope/images/generations" + GA, json={"prompt": "x"}).status_code == 404


def test_v1_deployment_operations_take_the_model_from_the_body(east: httpx.Client) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "yo"}]}
    chat = ok(east.post("v1/chat/completions", json=body))
    assert (chat["model"], chat["choices"][0]["message"]["content"]) == ("gpt-4o", "Echo: yo")
    assert ok(east.post("v1/embeddings?api-version=preview", json={"model": "ada", "input": "x"}))["model"] == "ada"
    assert ok(east.post("v1/completions", json={"model": "gpt-4o", "prompt": "p"}))["model"] == "gpt-4o"
    r = east.post("v1/chat/completions", json={"model": "gpt-35", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "DeploymentNotFound"
    assert east.post("v1/chat/completions", json={"messages": []}).json()["error"]["param"] == "model"
    r = east.post("v1/assistants", json={"model": "gpt-4o"}, headers={"x-sim-fail": "429"})
    assert r.status_code == 429 and "Assistants_Create" in r.json()["error"]["message"]
