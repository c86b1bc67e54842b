"""The call guard: every wait of a call is bounded, and a call nobody waits for any more stops.

A call waits on its client (the request body) and on its upstream (the answer, which can run for
minutes, a stream for half an hour). When a wait passes its deadline, or the client goes away, the
guard cancels the request's task, which drops the upstream call, and `run` turns that cancellation
into the call's error: the deadline's, or ClientDisconnected.

A call answered within a short grace period (most are) costs no timer of its own: the guards of one
event loop still in their grace period are looked at together, a few times per grace period (GraceSweep).
Past its grace period a guard watches the client (a task and a pending receive()), never while the
request body is still being read (receive() would take body chunks away), and waits for its deadline
with one timer. Each phase of a call sets its own deadline; a later one moves no timer until the timer
fires, so a slow call costs one timer, not one per wait.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request

from core.errors import ClientDisconnected, GatewayError
from core.eventloop import running_loop

T = TypeVar("T")


class CallGuard:
    __slots__ = (
        "_request",
        "loop",
        "_task",
        "_grace_at",
        "_deadline",
        "_expired",
        "_watching",
        "_watcher",
        "_timer",
        "_timer_at",
        "_grace_over",
        "_held",
        "_sweep",
        "reason",
    )
    GRACE_SECONDS = 0.05

    def __init__(self, request: Request) -> None:
        loop = self.loop = running_loop() or asyncio.get_running_loop()  # (which raises outside a loop)
        self._request = request
        self._task = asyncio.current_task(loop)
        self._grace_at = loop.time() + self.GRACE_SECONDS
        self._deadline = math.inf  # event loop time
        self._expired: Callable[[], GatewayError] | None = None  # the error for a deadline passed
        self._watching = False  # the client may be watched: its body is not being read
        self._watcher: asyncio.Task[None] | None = None
        self._held = False  # the response is with the server: a cancellation must not land in its code
        self.reason: GatewayError | None = None  # why the guard ended the call
        self._grace_over = False
        # The guard's own timer, once it needs one, and when it is due. (uvloop answers call_at for a moment already
        # come with a plain Handle, which has no when(): the guard keeps the time itself.)
        self._timer: asyncio.Handle | None = None
        self._timer_at = math.inf
        sweep = _sweep
        if sweep is None or sweep.loop is not loop:
            sweep = _new_sweep(loop)
        self._sweep = sweep
        sweep.add(self)

    def expect(self, deadline: float, expired: Callable[[], GatewayError], *, watch: bool) -> None:
        """From now on the call must be through by `deadline` (event loop time), else it ends in
        `expired()`; `watch`: the client may be watched (no request body is being read)."""
        self._deadline, self._expired, self._watching = deadline, expired, watch
        if watch and self._watcher is None and self._grace_over:
            self._watch()
        if self._timer_at <= deadline:
            return  # a later deadline waits for the timer to fire
        if not self._grace_over and deadline > self._grace_at + GraceSweep.EVERY:
            return  # the sweep ends the grace period before it comes, and arms the timer then
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = self.loop.call_at(deadline, self._tick), deadline

    def _tick(self) -> None:
        """The grace period over (the sweep), or the timer due."""
        if self._timer is not None:
            self._timer.cancel()  # (the sweep came first: it is armed again below, when still needed)
        self._timer, self._timer_at = None, math.inf
        now = self.loop.time()
        if not self._grace_over and now >= self._grace_at:
            self._grace_over = True
            self._sweep.guards.discard(self)
            if self._watching and self._watcher is None:
                self._watch()
        if now >= self._deadline:
            assert self._expired is not None
            self._end(self._expired())
            return
        if self._grace_over and self._deadline != math.inf:  # (in its grace period, the sweep comes back)
            self._timer, self._timer_at = self.loop.call_at(self._deadline, self._tick), self._deadline

    def _watch(self) -> None:
        self._watcher = asyncio.ensure_future(_wait_for_disconnect(self._request))
        self._watcher.add_done_callback(self._on_disconnect)

    def _on_disconnect(self, watcher: asyncio.Task[None]) -> None:
        if not watcher.cancelled() and watcher.exception() is None:
            self._end(ClientDisconnected())

    def _end(self, reason: GatewayError) -> None:
        if self.reason is not None:
            return
        self.reason = reason
        if not self._held and self._task is not None:
            self._task.cancel()

    async def run(self, work: Awaitable[T]) -> T:
        """`work`, or the guard's reason once it ended the call."""
        try:
            return await work
        except asyncio.CancelledError as cancelled:
            raise self.cancelled(cancelled) from None

    def cancelled(self, cancelled: asyncio.CancelledError) -> BaseException:
        """What a wait of the call that was cancelled raises: the guard's reason when the guard ended the call (the
        cancellation is then taken back), else the cancellation itself (someone else cancelled the task: let it go
        on)."""
        if self.reason is not None and self._task is not None and self._task.uncancel() == 0:
            return self.reason
        return cancelled

    def hold(self) -> None:
        """A streamed answer goes to the server, which starts it when it is ready: until `resume`,
        the guard only notes a client gone. No deadline runs meanwhile: nothing is read until the
        stream starts and sets its own."""
        self._held = True
        self._deadline = math.inf

    def resume(self) -> None:
        """The stream starts in the current task; the guard's reason if it ended the call meanwhile."""
        self._held = False
        self._task = asyncio.current_task(self.loop)
        if self.reason is not None:
            raise self.reason

    def close(self) -> None:
        """The call is over: no more timer, no more watching. What the guard held of the call goes, so
        that no reference cycle (the call holds its guard) is left for the garbage collector to find."""
        self._sweep.guards.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        self._deadline = math.inf
        self._expired = None


class GraceSweep:
    """The guards of one event loop in their grace period, looked at together every EVERY seconds while there are
    any: a guard's grace period ends within EVERY of its due time, and a call over before it costs a set's add and
    discard instead of a timer's start and cancel."""

    EVERY = CallGuard.GRACE_SECONDS / 2

    __slots__ = ("loop", "guards", "_timer", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.guards: set[CallGuard] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, guard: CallGuard) -> None:
        self.guards.add(guard)
        if self._timer is None:
            self._arm()

    def sweep(self) -> None:
        self._timer = None
        now = self.loop.time()
        for guard in [guard for guard in self.guards if guard._grace_at <= now]:
            guard._tick()  # (which takes it out of the set)
        if self.guards:
            self._arm()

    def _arm(self) -> None:
        # The timer holds the sweep weakly: the loop holds its timers, and a sweep held back by its loop's timer
        # would be a reference cycle (sweep, loop, timer) for the collector to find once a new loop's replaced it.
        self._timer = self.loop.call_later(self.EVERY, _sweep_if_alive, weakref.ref(self))


def _sweep_if_alive(sweep: weakref.ref[GraceSweep]) -> None:
    alive = sweep()
    if alive is not None:
        alive.sweep()


# The sweep of the event loop that made the last guard. A process runs one loop; tests run one after another,
# each given a new sweep when its first guard is made (a sweep of a loop gone holds nothing that runs).
_sweep: GraceSweep | None = None


def _new_sweep(loop: asyncio.AbstractEventLoop) -> GraceSweep:
    global _sweep
    _sweep = GraceSweep(loop)
    return _sweep


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
