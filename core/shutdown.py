"""Flushing what must not be lost when the Functions host stops this process.

At scale-in (and on a restart or deploy) the Functions host ends its Python worker with SIGTERM, and the worker
has no handler of its own: the process dies at once, and nothing the gateway holds in memory reaches the usage
table (azure-functions-python-worker#578). The local host needs none of this: uvicorn catches the signal and runs
the app's shutdown (core/localhost.py), which flushes the same way.

So on the worker's event loop, SIGTERM first runs a bounded flush, then stops the process as the signal would have
(the previous handler, or the default: exit by SIGTERM), so the host sees the exit it expects.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("aoai_gateway")


def flush_on_terminate(flush: Callable[[], Awaitable[None]]) -> bool:
    """Run `flush` (bounded by its own deadline) when SIGTERM arrives, then let the signal do what it did before.

    Installed on the running event loop, which must be the main thread's (only it receives signals); False, and
    nothing installed, when there is none."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGTERM)

    def terminate() -> None:
        loop.remove_signal_handler(signal.SIGTERM)  # a second SIGTERM acts at once
        _restore(previous)
        task = loop.create_task(_flush_then(flush))
        task.add_done_callback(lambda _: signal.raise_signal(signal.SIGTERM))

    try:
        loop.add_signal_handler(signal.SIGTERM, terminate)
    except (NotImplementedError, RuntimeError, ValueError):  # Windows' loops take no signal handlers
        return False
    return True


def _restore(previous: Any) -> None:
    # None: a handler not installed from Python; the default then, which ends the process as the host expects.
    signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


async def _flush_then(flush: Callable[[], Awaitable[None]]) -> None:
    try:
        await flush()
    except Exception:  # the process stops either way; say why the counts may be short
        logger.exception("flushing before the process stops failed")
