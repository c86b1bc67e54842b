"""How `python -m core serve` writes its log: the message alone, one line each, to stderr, the lines
of one turn of the event loop written together.

Every call logs its access line, and a line written on its own is a system call: under load many
calls end in the same turn of the event loop, so their lines wait for the end of that turn and go out
in one write. A warning or an error is written at once (with whatever waited before it, in order), and
so is anything logged outside the event loop's thread. (On Azure the Functions worker installs its own
handler instead.)
"""

from __future__ import annotations

import logging
import threading
from typing import TextIO

from core.eventloop import running_loop


class TurnBatchingHandler(logging.StreamHandler[TextIO]):
    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        # Held around every use of what waits: a line may come from any thread (a loader's, a refresher's) while the
        # loop's thread adds its own or writes them. (logging's own acquire and release would cost each line a call of
        # each; this is taken in place.)
        self._writing = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.write_line(line, at_once=record.levelno >= logging.WARNING)

    def write_line(self, line: str, *, at_once: bool = False) -> None:
        """`line` as `emit` writes an informational record's message: at the end of the loop's turn. A
        caller with the message alone (the access log) comes here without building a record."""
        if at_once or (loop := running_loop()) is None:
            with self._writing:
                self._pending.append(line)
                self._write_pending()
            return
        with self._writing:
            pending = self._pending
            pending.append(line)
            first = len(pending) == 1
        if first:  # the turn's first line: its end writes them all
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what waits, each line ended, then flush the stream."""
        with self._writing:
            if self._pending:
                self._write_pending()
            elif self.stream and hasattr(self.stream, "flush"):  # what logging's own flush does
                self.stream.flush()

    def _write_pending(self) -> None:
        """Write what waits, each line ended; the caller holds `_writing`."""
        lines, self._pending = self.terminator.join(self._pending) + self.terminator, []
        try:
            self.stream.write(lines)
            self.stream.flush()
        except Exception:  # nowhere left to report it: stderr itself failed
            pass


def configure(level: str, stream: TextIO) -> TurnBatchingHandler:
    """The root logger for `serve`: `level` and up, the message alone, written by the handler returned."""
    handler = TurnBatchingHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    # The format prints the message alone: the caller's file and line, and the thread and process
    # names, which logging would look up for every line (an access line per call), are never shown.
    # (The logging HOWTO's "Optimization" section.)
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    return handler
