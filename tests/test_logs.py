"""The local host's log handler (core/logs.py): the lines of one turn of the event loop go out in one
write, in order; a warning, and anything logged outside the loop, at once."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import threading

from core.logs import TurnBatchingHandler


class RecordingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def logger_writing_to(stream: RecordingStream) -> logging.Logger:
    handler = TurnBatchingHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"test-logs-{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger


def test_the_lines_of_one_turn_go_out_in_one_write_at_its_end() -> None:
    stream = RecordingStream()
    log = logger_writing_to(stream)

    async def calls() -> list[str]:
        log.info("one")
        log.info("two")
        written_during_the_turn = list(stream.writes)
        await asyncio.sleep(0)  # the turn ends
        await asyncio.sleep(0)
        log.info("three")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return written_during_the_turn

    assert asyncio.run(calls()) == []
    assert stream.writes == ["one\ntwo\n", "three\n"]


def test_a_warning_goes_out_at_once_after_what_waited() -> None:
    stream = RecordingStream()
    log = logger_writing_to(stream)

    async def calls() -> None:
        log.info("served")
        log.warning("the usage table is unreachable")
        assert stream.getvalue() == "served\nthe usage table is unreachable\n"

    asyncio.run(calls())
    assert stream.writes == ["served\nthe usage table is unreachable\n"]


def test_outside_an_event_loop_each_line_goes_out_at_once() -> None:
    stream = RecordingStream()
    log = logger_writing_to(stream)
    log.info("loaded")
    worker = threading.Thread(target=lambda: log.info("from the loader thread"))
    worker.start()
    worker.join()
    assert stream.writes == ["loaded\n", "from the loader thread\n"]


def test_nothing_waiting_is_lost_when_logging_shuts_down() -> None:
    stream = RecordingStream()
    log = logger_writing_to(stream)

    async def last_call() -> None:
        log.info("the last line")  # the loop stops before its turn ends

    loop = asyncio.new_event_loop()
    loop.run_until_complete(last_call())
    loop.close()
    for handler in log.handlers:
        handler.flush()  # what logging.shutdown does at exit
    assert stream.getvalue() == "the last line\n"


def test_a_line_written_without_a_record_joins_the_turn_in_order() -> None:
    """The access log's path (core/accesslog.py, under `serve`): the message alone, batched with what is logged."""
    stream = RecordingStream()
    log = logger_writing_to(stream)
    handler = log.handlers[0]
    assert isinstance(handler, TurnBatchingHandler)

    async def calls() -> None:
        handler.write_line('{"request_id":"a"}')
        log.info("logged")
        handler.write_line('{"request_id":"b"}')
        assert stream.writes == []
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(calls())
    handler.write_line("outside the loop")
    assert stream.writes == ['{"request_id":"a"}\nlogged\n{"request_id":"b"}\n', "outside the loop\n"]


def test_each_loop_writes_its_own_turns_lines_whichever_thread_and_loop_wrote_last() -> None:
    """The handler keeps the loop of the last line rather than asking asyncio for each: a new loop in the same thread,
    another thread's loop running meanwhile, or a thread without one each still get their lines written (at their
    turn's end, or at once)."""
    stream = RecordingStream()
    log = logger_writing_to(stream)

    async def turn(name: str) -> tuple[list[str], list[str]]:
        """What was written as `name` was logged, and once its turn ended."""
        log.info(name)
        waiting = list(stream.writes)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return waiting, list(stream.writes)

    async def beside_another_threads_loop() -> tuple[tuple[list[str], list[str]], list[str]]:
        log.info("this loop")
        await asyncio.sleep(0)  # its turn ends
        await asyncio.sleep(0)
        elsewhere = await asyncio.to_thread(asyncio.run, turn("another thread's loop"))
        await asyncio.to_thread(log.info, "a thread without a loop")
        return elsewhere, list(stream.writes)

    first = asyncio.run(turn("first loop"))
    second = asyncio.run(turn("a new loop in the same thread"))  # the first loop is closed: not this one
    elsewhere, meanwhile = asyncio.run(beside_another_threads_loop())
    assert first == ([], ["first loop\n"])
    assert second == (["first loop\n"], ["first loop\n", "a new loop in the same thread\n"])
    before = ["first loop\n", "a new loop in the same thread\n", "this loop\n"]
    assert elsewhere == (before, [*before, "another thread's loop\n"])  # written by its own loop, at its turn's end
    assert (
        meanwhile
        == stream.writes
        == [
            "first loop\n",
            "a new loop in the same thread\n",
            "this loop\n",
            "another thread's loop\n",
            "a thread without a loop\n",
        ]
    )


def test_no_line_is_lost_when_another_thread_logs_while_the_loop_does() -> None:
    """A loader's or a refresher's thread logs while the loop's thread adds its own lines and writes them: every line
    of both is written, once. (Before what waits was guarded by a lock, a thread switch between the loop's writing
    and its emptying of what waited lost the other thread's lines: some 20 in 40,000 here.)"""
    stream = RecordingStream()
    handler = TurnBatchingHandler(stream)
    count = 10_000

    def other_thread() -> None:
        for index in range(count):
            handler.write_line(f"thread {index}")

    async def loop_thread() -> None:
        worker = threading.Thread(target=other_thread)
        worker.start()
        for index in range(count):
            handler.write_line(f"loop {index}")
            if index % 5 == 0:
                await asyncio.sleep(0)  # a turn ends: what waited is written
        await asyncio.to_thread(worker.join)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between nearly any two bytecodes, as they may under load
    try:
        asyncio.run(loop_thread())
    finally:
        sys.setswitchinterval(interval)
    handler.flush()
    lines = stream.getvalue().splitlines()
    assert sorted(lines) == sorted([f"loop {i}" for i in range(count)] + [f"thread {i}" for i in range(count)])
