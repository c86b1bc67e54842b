"""The disconnect watch (core/disconnect.py), fed the ASGI receive events a server would give it."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.types import Message, Receive

from core.disconnect import DisconnectWatch
from core.errors import ClientDisconnected


def watched(receive: Receive, work_seconds: float) -> tuple[object, list[dict[str, Any]]]:
    """Run `work_seconds` of work under a DisconnectWatch whose request reads from `receive`; its
    result (or exception) and what the event loop reported as unhandled, once the watch is closed."""

    async def scenario() -> tuple[object, list[dict[str, Any]]]:
        reported: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
        request = Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)
        watch = DisconnectWatch(request)
        try:
            outcome: object = await watch.run(asyncio.sleep(work_seconds, "answer"))
        except Exception as exc:  # the outcome is what the test checks
            outcome = exc
        finally:
            watch.close()
        for _ in range(3):
            await asyncio.sleep(0)  # the closed watcher's callbacks run
        return outcome, reported

    return asyncio.run(scenario())


def test_the_disconnect_watch_closes_quietly_when_the_client_stays() -> None:
    async def waiting() -> Message:
        await asyncio.Event().wait()  # the client neither sends nor leaves
        return {"type": "http.disconnect"}

    assert watched(waiting, 0.2) == ("answer", [])  # watching began (after 0.05 s) and was cancelled without a word


def test_a_failed_disconnect_watch_does_not_abandon_the_request() -> None:
    async def failing() -> Message:
        raise RuntimeError("the server's receive failed")

    outcome, reported = watched(failing, 0.2)
    assert outcome == "answer"  # not cancelled as if the client had gone
    assert reported == []


def test_a_client_gone_abandons_the_request_as_a_499() -> None:
    async def gone() -> Message:
        return {"type": "http.disconnect"}

    outcome, reported = watched(gone, 5)
    assert isinstance(outcome, ClientDisconnected) and outcome.status == 499
    assert reported == []
