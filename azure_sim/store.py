"""``Store``: one region's stateful objects (assistants, threads, files, ...), which the resource handlers read and
change and a test may inspect.
"""

from __future__ import annotations

import threading
from typing import Any


class Store:
    """One region's objects. Handlers run on the simulator's event loop and take ``lock`` while they read or change
    the store; a test thread that inspects it directly should take it too."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.assistants: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}  # thread id -> message id -> message
        self.runs: dict[str, dict[str, dict[str, Any]]] = {}  # thread id -> run id -> run
        self.steps: dict[str, dict[str, dict[str, Any]]] = {}  # run id -> step id -> step
        self.vector_stores: dict[str, dict[str, Any]] = {}
        self.vector_store_files: dict[str, dict[str, dict[str, Any]]] = {}  # store id -> file id -> file
        self.file_batches: dict[str, dict[str, dict[str, Any]]] = {}  # store id -> batch id -> batch
        self.files: dict[str, dict[str, Any]] = {}
        self.file_contents: dict[str, bytearray] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.responses: dict[str, dict[str, Any]] = {}
        self.response_inputs: dict[str, list[dict[str, Any]]] = {}  # response id -> its input items

    def clear(self) -> None:
        with self.lock:
            for value in vars(self).values():
                if isinstance(value, dict):
                    value.clear()
