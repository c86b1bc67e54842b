"""The process's heap once the gateway has loaded (core/heap.py): what it holds is frozen out of the
collector's sight, and the youngest generation is collected less often. In a fresh interpreter: settling
changes the whole process's collector."""

from __future__ import annotations

import subprocess
import sys

from core.heap import YOUNG_THRESHOLD


def test_settling_freezes_what_is_loaded_and_collects_the_young_less_often() -> None:
    code = (
        "import gc; from core import heap; before = gc.get_threshold(); heap.settle();"
        "print(gc.get_freeze_count() > 1000, before[1:] == gc.get_threshold()[1:], gc.get_threshold()[0])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["True", "True", str(YOUNG_THRESHOLD)]
