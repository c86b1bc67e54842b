"""The running event loop, known without a system call each time it is asked.

asyncio's C `get_running_loop` calls `getpid` every time (to tell a forked child), and glibc no longer caches it:
a system call for each ask, which the guard and the log handler would make on every call. The loop found last is
kept with its thread, and is the answer while it runs in that thread: a thread runs one loop at a time, so a loop
running in the asking thread is its running loop.
"""

from __future__ import annotations

import asyncio
import threading

# The loop found last and the thread running it, as one tuple: set in one assignment, so that a thread never reads
# one thread's loop with another's id.
_last: tuple[asyncio.AbstractEventLoop, int] | None = None


def running_loop() -> asyncio.AbstractEventLoop | None:
    """This thread's running event loop; None outside one."""
    global _last
    last = _last
    if last is not None and last[1] == threading.get_ident() and last[0].is_running():
        return last[0]
    loop = asyncio._get_running_loop()
    if loop is not None:
        _last = (loop, threading.get_ident())
    return loop
