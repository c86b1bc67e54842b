"""The call guard (core/guard.py), fed the ASGI receive events a server would give it: deadlines,
a client gone, a watch that only starts after the grace period, and one timer per call."""

from __future__ import annotations

import asyncio
import gc
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
import uvloop
from starlette.requests import Request
from starlette.types import Message, Receive

from core.errors import ClientDisconnected, GatewayError
from core.guard import CallGuard, GraceSweep

LATE = GatewayError(504, "late")


async def waiting() -> Message:
    await asyncio.Event().wait()  # the client neither sends nor leaves
    return {"type": "http.disconnect"}


async def gone() -> Message:
    return {"type": "http.disconnect"}


def guarded(
    receive: Receive,
    work: Callable[[CallGuard], Awaitable[object]],
    run: Callable[[Coroutine[Any, Any, Any]], Any] = asyncio.run,
) -> tuple[object, list[dict[str, Any]], CallGuard]:
    """Run `work` under a guard whose request reads from `receive`; its result (or exception), what the
    event loop reported as unhandled once the guard is closed, and the guard. `run`: the event loop's runner
    (uvloop's is what `python -m core serve` uses)."""

    async def scenario() -> tuple[object, list[dict[str, Any]], CallGuard]:
        reported: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
        request = Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)
        guard = CallGuard(request)
        try:
            outcome: object = await guard.run(work(guard))
        except Exception as exc:  # the outcome is what the test checks
            outcome = exc
        finally:
            guard.close()
        for _ in range(3):
            await asyncio.sleep(0)  # the closed watcher's callbacks run
        return outcome, reported, guard

    result: tuple[object, list[dict[str, Any]], CallGuard] = run(scenario())
    return result


def sleeping(seconds: float, *, deadline_in: float = 60.0, watch: bool = True) -> Callable[[CallGuard], Awaitable[str]]:
    async def work(guard: CallGuard) -> str:
        guard.expect(asyncio.get_running_loop().time() + deadline_in, lambda: LATE, watch=watch)
        return await asyncio.sleep(seconds, "answer")

    return work


def test_a_call_within_its_deadline_ends_quietly_when_the_client_stays() -> None:
    outcome, reported, _ = guarded(waiting, sleeping(0.2))  # watching began (after 0.05 s)
    assert (outcome, reported) == ("answer", [])


def test_a_failed_watch_does_not_abandon_the_request() -> None:
    async def failing() -> Message:
        raise RuntimeError("the server's receive failed")

    outcome, reported, _ = guarded(failing, sleeping(0.2))
    assert outcome == "answer"  # not cancelled as if the client had gone
    assert reported == []


def test_a_client_gone_abandons_the_request_as_a_499() -> None:
    outcome, reported, _ = guarded(gone, sleeping(5))
    assert isinstance(outcome, ClientDisconnected) and outcome.status == 499
    assert reported == []


def test_a_deadline_passed_ends_the_call_with_its_error() -> None:
    outcome, reported, guard = guarded(waiting, sleeping(5, deadline_in=0.1))
    assert outcome is LATE and guard.reason is LATE and reported == []


def test_a_deadline_before_the_grace_period_ends_is_kept() -> None:
    outcome, _, _ = guarded(waiting, sleeping(5, deadline_in=0.01))
    assert outcome is LATE


def test_the_client_is_not_watched_while_its_body_is_read() -> None:
    outcome, _, _ = guarded(gone, sleeping(0.2, watch=False))
    assert outcome == "answer"  # receive() was never called: it would have taken the body


def test_a_deadline_set_after_the_grace_period_while_the_body_is_read_watches_no_client() -> None:
    async def work(guard: CallGuard) -> str:
        loop = asyncio.get_running_loop()
        guard.expect(loop.time() + 60, lambda: LATE, watch=False)
        await asyncio.sleep(0.1)  # the grace period is over, the body still being read
        guard.expect(loop.time() + 60, lambda: LATE, watch=False)
        return await asyncio.sleep(0.1, "answer")

    outcome, _, _ = guarded(gone, work)
    assert outcome == "answer"


def test_watching_starts_when_allowed_after_the_grace_period() -> None:
    async def work(guard: CallGuard) -> str:
        loop = asyncio.get_running_loop()
        guard.expect(loop.time() + 60, lambda: LATE, watch=False)
        await asyncio.sleep(0.1)  # the body took longer than the grace period
        guard.expect(loop.time() + 60, lambda: LATE, watch=True)
        return await asyncio.sleep(5, "answer")

    outcome, _, _ = guarded(gone, work)
    assert isinstance(outcome, ClientDisconnected)


def test_in_its_grace_period_a_call_has_no_timer_of_its_own_unless_a_deadline_comes_before_it_ends() -> None:
    async def work(guard: CallGuard) -> list[float]:
        loop = asyncio.get_running_loop()
        now = loop.time()
        guard.expect(now + 10, lambda: LATE, watch=True)
        guard.expect(now + 20, lambda: LATE, watch=True)
        armed = [guard._timer_at]  # none: the sweep ends the grace period, and arms the timer then
        guard.expect(now + 0.01, lambda: LATE, watch=True)
        armed.append(guard._timer_at)
        guard.expect(now + 0.02, lambda: LATE, watch=True)  # a later deadline moves no timer
        armed.append(guard._timer_at)
        return [round(when - now, 2) for when in armed]

    outcome, _, _ = guarded(waiting, work)
    assert outcome == [math.inf, 0.01, 0.01]


def test_calls_in_their_grace_period_share_one_sweep_and_leave_it_when_over() -> None:
    async def calls() -> tuple[int, int, int, bool]:
        request = Request({"type": "http", "method": "POST", "path": "/", "headers": []}, waiting)
        quick, slow = CallGuard(request), CallGuard(request)
        sweep = quick._sweep
        together = len(sweep.guards)
        quick.close()
        left = len(sweep.guards)
        slow.expect(asyncio.get_running_loop().time() + 10, lambda: LATE, watch=False)
        await asyncio.sleep(CallGuard.GRACE_SECONDS + GraceSweep.EVERY + 0.02)
        after_grace = len(sweep.guards)
        own_timer = slow._timer is not None
        slow.close()
        return together, left, after_grace, own_timer and slow._sweep is sweep

    assert asyncio.run(calls()) == (2, 1, 0, True)


def test_past_the_grace_period_the_timer_waits_for_the_deadline() -> None:
    async def work(guard: CallGuard) -> float:
        now = asyncio.get_running_loop().time()
        guard.expect(now + 10, lambda: LATE, watch=True)
        await asyncio.sleep(0.1)  # the grace period's timer fired
        return round(guard._timer_at - now, 2)

    outcome, _, _ = guarded(waiting, work)
    assert outcome == 10.0  # not the grace period's moment again, which would fire at every turn of the loop


def test_a_guard_closed_twice_stays_closed_quietly() -> None:
    """The relay closes it when the stream ends, and again on its way out."""

    async def work(guard: CallGuard) -> str:
        guard.expect(asyncio.get_running_loop().time() + 0.15, lambda: LATE, watch=True)
        await asyncio.sleep(0.1)  # the client is watched
        guard.close()
        guard.close()
        return await asyncio.sleep(0.1, "answer")  # past the deadline: no timer left to end it

    outcome, reported, _ = guarded(waiting, work)
    assert (outcome, reported) == ("answer", [])


def test_a_cancellation_that_is_not_the_guards_goes_on_and_stays_counted_on_the_task() -> None:
    """asyncio.timeout and TaskGroup read the task's count of cancellations asked for to tell their own from someone
    else's: the guard takes back only a cancellation it asked for."""

    async def scenario() -> tuple[bool, int]:
        request = Request({"type": "http", "method": "POST", "path": "/", "headers": []}, waiting)
        counted: list[int] = []

        async def call() -> None:
            guard = CallGuard(request)
            guard.expect(asyncio.get_running_loop().time() + 60, lambda: LATE, watch=True)
            try:
                await guard.run(asyncio.sleep(5))
            except asyncio.CancelledError:
                task = asyncio.current_task()
                assert task is not None
                counted.append(task.cancelling())
                raise
            finally:
                guard.close()

        task = asyncio.ensure_future(call())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled(), counted[0]

    assert asyncio.run(scenario()) == (True, 1)


def test_a_held_call_only_notes_the_client_gone_until_it_resumes() -> None:
    async def work(guard: CallGuard) -> str:
        guard.expect(asyncio.get_running_loop().time() + 60, lambda: LATE, watch=True)
        guard.hold()
        await asyncio.sleep(0.2)  # the client leaves meanwhile: nothing is cancelled
        try:
            guard.resume()
        except ClientDisconnected:
            return "gone, said at resume"
        return "not told"

    outcome, _, _ = guarded(gone, work)
    assert outcome == "gone, said at resume"


def test_a_call_that_sets_no_deadline_has_none_and_its_client_is_not_watched() -> None:
    async def work(guard: CallGuard) -> str:
        return await asyncio.sleep(0.2, "answer")  # past the grace period; the body may still be being read

    outcome, reported, guard = guarded(gone, work)
    assert (outcome, reported, guard.reason) == ("answer", [], None)


def test_a_first_deadline_set_after_the_grace_period_ends_the_call() -> None:
    async def work(guard: CallGuard) -> str:
        await asyncio.sleep(0.1)  # the grace period's timer fired, and no other was due
        guard.expect(asyncio.get_running_loop().time() + 0.05, lambda: LATE, watch=False)
        return await asyncio.sleep(2, "answer")

    outcome, _, _ = guarded(waiting, work)
    assert outcome is LATE


def test_a_call_answered_within_the_grace_period_never_watches_its_client() -> None:
    outcome, reported, _ = guarded(gone, sleeping(0.01))
    assert (outcome, reported) == ("answer", [])


def test_a_deadline_set_before_a_hold_passes_quietly_while_held() -> None:
    async def work(guard: CallGuard) -> str:
        guard.expect(asyncio.get_running_loop().time() + 0.05, lambda: LATE, watch=True)
        guard.hold()
        await asyncio.sleep(0.2)  # its timer fires meanwhile
        guard.resume()
        return "answer"

    outcome, reported, guard = guarded(waiting, work)
    assert (outcome, reported, guard.reason) == ("answer", [], None)


def test_a_deadline_set_after_resuming_ends_the_call_again() -> None:
    async def work(guard: CallGuard) -> str:
        guard.hold()
        await asyncio.sleep(0)
        guard.resume()
        guard.expect(asyncio.get_running_loop().time() + 0.05, lambda: LATE, watch=True)
        return await asyncio.sleep(2, "answer")

    outcome, _, _ = guarded(waiting, work)
    assert outcome is LATE


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_a_deadline_already_come_and_then_a_later_one(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    """uvloop answers call_at for a moment already come with a plain Handle, which has no when(): the next
    deadline set (a call that moves on to its answer, under a loop running late) must not fail on it. It did,
    and the call was answered 500."""

    async def work(guard: CallGuard) -> str:
        loop = asyncio.get_running_loop()
        guard.expect(loop.time(), lambda: LATE, watch=False)  # already come: the loop is late
        guard.expect(loop.time() + 60, lambda: LATE, watch=False)  # the call moves on before the timer runs
        return await asyncio.sleep(0.01, "answer")

    outcome, reported, _ = guarded(waiting, work, run)
    assert outcome == "answer" and reported == []

    late, _, guard = guarded(waiting, sleeping(5, deadline_in=-1), run)  # a deadline passed still ends the call
    assert late is LATE and guard.reason is LATE


def test_a_sweep_left_behind_by_its_loop_is_freed_without_the_collector() -> None:
    """A new loop's first guard replaces the last loop's sweep, whose timer may still be pending in that loop: the
    timer holds it weakly, so it goes with its last reference rather than as a cycle for the collector (which
    tests/test_exchange.py's no-cycle checks would count against the calls that happened to run then)."""

    async def one_call() -> None:
        CallGuard(Request({"type": "http", "method": "POST", "path": "/", "headers": []}, waiting)).close()

    asyncio.run(one_call())  # leaves its sweep, its timer pending in a closed loop
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        asyncio.run(one_call())
        gc.collect()
        assert [found for found in gc.garbage if isinstance(found, GraceSweep)] == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_a_guard_runs_on_its_own_threads_running_loop_whatever_loop_made_the_last_guard() -> None:
    """A guard takes the loop from the last guard's sweep when that loop runs in its thread, instead of asking
    asyncio (a system call): a new loop in the same thread, or a loop of another thread running meanwhile, is never
    mistaken for it."""

    async def made() -> tuple[bool, bool]:
        request = Request({"type": "http", "method": "POST", "path": "/", "headers": []}, waiting)
        guard = CallGuard(request)
        guard.close()
        loop = asyncio.get_running_loop()
        return guard.loop is loop, guard._sweep.loop is loop

    async def made_here_and_in_another_threads_loop() -> list[tuple[bool, bool]]:
        here = await made()
        elsewhere = await asyncio.to_thread(asyncio.run, made())  # while this loop runs, its sweep the last made
        return [here, elsewhere, await made()]

    results = [asyncio.run(made()), asyncio.run(made()), uvloop.run(made())]
    results += asyncio.run(made_here_and_in_another_threads_loop())
    assert results == [(True, True)] * 6
