"""The worker threads behind asyncio.to_thread, held so that a test chooses the order in which calls reach a store
and in which their answers reach the event loop, as a busy store or a busy machine may order them.

core/usage_table.py runs each call to the table in a worker thread; with this executor as the loop's default, the
calls submitted while it holds wait, and `release` runs them (for real: Azurite answers them) in the order a test
asks for, then hands their answers to the loop.

    held = HeldThreads()
    asyncio.get_running_loop().set_default_executor(held)
    held.hold()
    ...  # the code under test submits its calls, then waits for them
    await held.release(together=True)
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

# Rounds of the event loop `quiet` runs: far more than any chain of tasks the tests start takes to reach a wait.
QUIET_ROUNDS = 50


async def quiet() -> None:
    """Let every task run until it waits for something outside the loop: a thread, a held call, a timer. Nothing
    is timed: the loop runs its ready callbacks QUIET_ROUNDS times."""
    for _ in range(QUIET_ROUNDS):
        await asyncio.sleep(0)


class HeldThreads(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self._holding = False
        self.held: list[tuple[Future[Any], Callable[[], Any]]] = []

    def hold(self) -> None:
        """From now on, the calls submitted wait for `release`."""
        self._holding = True

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if not self._holding:
            return super().submit(fn, *args, **kwargs)
        future: Future[Any] = Future()
        self.held.append((future, functools.partial(fn, *args, **kwargs)))
        return future

    async def release(self, *, together: bool, newest: int | None = None) -> None:
        """Run the held calls one after the other, the newest first (it reaches the store first), then hand their
        answers to the loop in the same order: `together`, all of them before the loop runs again (a loop too
        busy to run between them); otherwise one at a time, the loop quiet between them. `newest`: only that many
        of the newest, the others still held (and the calls submitted meanwhile too); else all, and stop
        holding."""
        if newest is None:
            self._holding = False
            held, self.held = self.held, []
        else:
            held, self.held = self.held[len(self.held) - newest :], self.held[: len(self.held) - newest]
        answers: list[tuple[Future[Any], Any, BaseException | None]] = []
        for future, call in reversed(held):
            try:
                answers.append((future, call(), None))
            except Exception as failure:  # handed to the caller, as a worker thread would
                answers.append((future, None, failure))
        for future, result, raised in answers:
            if future.set_running_or_notify_cancel():
                if raised is None:
                    future.set_result(result)
                else:
                    future.set_exception(raised)
            if not together:
                await quiet()
