"""The running event loop, kept rather than asked of asyncio each time (core/eventloop.py): the answer is always the
asking thread's own running loop, or None outside one."""

from __future__ import annotations

import asyncio
import threading

import uvloop

from core.eventloop import running_loop


async def own_loop_found() -> bool:
    return running_loop() is asyncio.get_running_loop()


def test_each_thread_gets_its_own_running_loop_and_none_outside_one() -> None:
    async def here_and_in_another_thread() -> list[bool]:
        here = await own_loop_found()
        # Another thread's loop, while this one runs and was the last found.
        elsewhere = await asyncio.to_thread(asyncio.run, own_loop_found())
        outside: list[object] = []
        await asyncio.to_thread(lambda: outside.append(running_loop()))  # a thread without a loop
        return [here, elsewhere, outside == [None], await own_loop_found()]

    assert running_loop() is None
    results = [asyncio.run(own_loop_found()), asyncio.run(own_loop_found()), uvloop.run(own_loop_found())]
    results += asyncio.run(here_and_in_another_thread())
    assert results == [True] * 7
    assert running_loop() is None  # the last loop found has stopped


def test_a_loop_found_in_one_thread_is_not_another_threads_though_it_still_runs() -> None:
    started, release = threading.Event(), threading.Event()

    async def hold() -> None:
        assert await own_loop_found()
        started.set()
        await asyncio.to_thread(release.wait)

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    started.wait(5)
    try:
        assert running_loop() is None  # this thread runs no loop, though the one found last runs
        assert asyncio.run(own_loop_found())
    finally:
        release.set()
        holder.join(5)
