"""``Store``: one region's stateful objects (assistants, threads, files, ...), which the resource handlers read and
change and a test may inspect.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

# Azure's prompt caching: a prompt of at least this many tokens whose start the deployment saw recently reads
# its first PROMPT_CACHE_MINIMUM tokens, then each further PROMPT_CACHE_STEP, from the cache.
PROMPT_CACHE_MINIMUM = 1024
PROMPT_CACHE_STEP = 128
_PROMPTS_KEPT = 1000


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
        self.prompts: OrderedDict[str, None] = OrderedDict()  # the prompts seen, by deployment: Azure's prompt cache

    def cached_tokens(self, deployment: str, prompt: str, prompt_tokens: int) -> int:
        """Of a prompt's tokens, those Azure's prompt cache serves: none the first time (or below
        PROMPT_CACHE_MINIMUM); a prompt the deployment saw before, in steps of PROMPT_CACHE_STEP (the simulator
        remembers whole prompts, where Azure matches their longest cached start)."""
        if prompt_tokens < PROMPT_CACHE_MINIMUM:
            return 0
        key = hashlib.sha256(f"{deployment}\n{prompt}".encode()).hexdigest()
        with self.lock:
            seen = key in self.prompts
            self.prompts[key] = None
            self.prompts.move_to_end(key)
            while len(self.prompts) > _PROMPTS_KEPT:
                self.prompts.popitem(last=False)
        if not seen:
            return 0
        return PROMPT_CACHE_MINIMUM + (prompt_tokens - PROMPT_CACHE_MINIMUM) // PROMPT_CACHE_STEP * PROMPT_CACHE_STEP

    def clear(self) -> None:
        with self.lock:
            for value in vars(self).values():
                if isinstance(value, dict):  # an OrderedDict too
                    value.clear()
