"""The process's heap, set up for a long-running server once the gateway has loaded.

Almost everything the gateway keeps lives as long as the process (the configuration, the imported
SDKs, the shared clients). gc.freeze() takes it out of the collector's sight, so that a full
collection no longer walks tens of thousands of objects that never die: each such walk paused the
event loop for tens of milliseconds under load. And since a call leaves no garbage that only the
collector can free (tests/test_exchange.py), the youngest generation is collected every 10,000 net
allocations instead of 700: collected that often, it kept promoting the objects of the calls in
flight, only for the next generation to walk them again.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Freeze what the process holds now; collect the young less often. Once per process."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
