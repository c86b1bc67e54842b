"""Keep-alives on a silent stream: while the upstream says nothing (a reasoning model thinking), the client gets an
SSE comment every `gateway.timeouts.keepAlive` seconds, between whole events only, so a front end that cuts silent
responses (Azure Functions': 230 s) never sees one; the SDK reads the same answer as without them."""

from __future__ import annotations

import asyncio
import gc
from itertools import pairwise

import openai
from starlette.types import Message

from core.keepalive import KeepAlive
from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG
from tests.support.streams import CHAT, stream_events

KEEP_ALIVE = b": keep-alive"


def config(keep_alive: float) -> str:
    assert "    read: 2\n" in STANDARD_CONFIG
    return STANDARD_CONFIG.replace("    read: 2\n", f"    read: 2\n    keepAlive: {keep_alive}\n")


def test_a_silent_upstream_gets_the_client_comments_between_events(sim, start_gateway) -> None:
    gateway = start_gateway(config(0.2), {**SECRETS, "SIM_URL": sim.url})
    events = stream_events(gateway.url, CHAT, **{"x-sim-chunk-delay-ms": "700"})
    comments = [at for at, event in events if event == KEEP_ALIVE]
    answer = [(at, event) for at, event in events if event != KEEP_ALIVE]
    assert answer[-1][1] == b"data: [DONE]"
    assert all(event.startswith(b"data: ") for _, event in answer)  # every other event whole, as it was
    # Every silence of 0.7 s (before the first event too) is broken by comments about 0.2 s apart, where the client
    # would otherwise wait 0.7 s; none comes after the answer's end.
    assert comments and max(comments) < answer[-1][0]
    arrivals = [at for at, _ in events]
    assert max(later - earlier for earlier, later in pairwise(arrivals)) < 0.5
    assert len(comments) >= 2 * (len(answer) - 1)


def test_the_sdk_reads_the_same_answer_and_without_silence_there_is_none(sim, start_gateway) -> None:
    gateway = start_gateway(config(0.2), {**SECRETS, "SIM_URL": sim.url})
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ALICE, max_retries=0)
    slow = client.chat.completions.create(**CHAT, extra_headers={"x-sim-chunk-delay-ms": "500"})
    text = "".join(chunk.choices[0].delta.content or "" for chunk in slow if chunk.choices)
    fast = client.chat.completions.create(**CHAT)
    assert text == "".join(chunk.choices[0].delta.content or "" for chunk in fast if chunk.choices) != ""
    assert not [event for _, event in stream_events(gateway.url, CHAT) if event == KEEP_ALIVE]


def test_zero_turns_them_off(sim, start_gateway) -> None:
    gateway = start_gateway(config(0), {**SECRETS, "SIM_URL": sim.url})
    events = stream_events(gateway.url, CHAT, **{"x-sim-chunk-delay-ms": "400"})
    assert KEEP_ALIVE not in [event for _, event in events]


def comments_sent(
    *, heard_every: float | None, interval: float = 0.2, lasting: float = 0.7, waiting: bool = True
) -> int:
    """Keep-alives sent over `lasting` seconds of an upstream heard every `heard_every` seconds (None: silent
    throughout), while the relay waits for it (`waiting`) or sends something else."""

    async def scenario() -> int:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        keep_alive = KeepAlive(send, interval)
        keep_alive.waiting = waiting
        loop = asyncio.get_running_loop()
        end = loop.time() + lasting
        while loop.time() < end:
            await asyncio.sleep(heard_every or lasting)
            if heard_every is not None:
                keep_alive.heard()
        keep_alive.stop()
        assert all(message["body"] == b": keep-alive\n\n" for message in sent)
        return len(sent)

    return asyncio.run(scenario())


def test_an_upstream_heard_more_often_than_the_interval_gets_no_comment_in_between() -> None:
    assert comments_sent(heard_every=0.05) == 0


def test_an_upstream_silent_throughout_gets_a_comment_every_interval() -> None:
    assert 2 <= comments_sent(heard_every=None) <= 3  # at 0.2, 0.4 and 0.6 s, but for a loop running late


def test_no_comment_is_sent_while_the_relay_is_sending_something_else() -> None:
    assert comments_sent(heard_every=None, waiting=False) == 0


def test_a_client_gone_while_a_comment_is_sent_is_left_for_the_relays_next_write() -> None:
    async def scenario() -> tuple[int, list[dict[str, object]]]:
        reported: list[dict[str, object]] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        tries: list[Message] = []

        async def send(message: Message) -> None:
            tries.append(message)
            raise OSError("the client is gone")

        keep_alive = KeepAlive(send, 0.05)
        keep_alive.waiting = True
        await asyncio.sleep(0.2)
        keep_alive.stop()
        del keep_alive
        gc.collect()  # a task whose exception nobody retrieved says so when it goes
        await asyncio.sleep(0)
        return len(tries), reported

    tries, reported = asyncio.run(scenario())
    assert tries >= 2 and reported == []  # each comment tried, no error left unhandled


def test_a_keep_alive_not_told_the_relay_waits_sends_nothing() -> None:
    async def scenario() -> list[Message]:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        keep_alive = KeepAlive(send, 0.05)
        await asyncio.sleep(0.2)
        keep_alive.stop()
        return sent

    assert asyncio.run(scenario()) == []


def test_stop_cancels_a_comment_still_being_sent() -> None:
    async def scenario() -> list[str]:
        happened: list[str] = []

        async def send(message: Message) -> None:
            happened.append("sending")
            try:
                await asyncio.sleep(1)  # a client slow to take it
            except asyncio.CancelledError:
                happened.append("cancelled")
                raise
            happened.append("sent")

        keep_alive = KeepAlive(send, 0.05)
        keep_alive.waiting = True
        await asyncio.sleep(0.08)
        keep_alive.stop()
        await asyncio.sleep(0.01)
        return list(happened)  # as it was then: asyncio.run cancels what still runs when it ends

    assert asyncio.run(scenario()) == ["sending", "cancelled"]
