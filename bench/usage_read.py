"""What reading a whole answer's usage costs: the tail read (core/translation/usage.py) against parsing the answer.

`python -m bench.usage_read`: times read_usage and orjson.loads, best of 7, on embeddings answers of 10, 100 and
1000 inputs (1536 floats each) and on an answer built to make the tail read try hardest (200 nested `usage` keys
around a 200 kB string after its usage). Prints a markdown table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from core.translation.usage import read_usage


def embeddings_answer(inputs: int, dimensions: int = 1536) -> bytes:
    vector = [0.0123456789 * (i % 7 - 3) for i in range(dimensions)]
    data = [{"object": "embedding", "index": i, "embedding": vector} for i in range(inputs)]
    return orjson.dumps(
        {"object": "list", "data": data, "model": "text-embedding-3-small", "usage": {"prompt_tokens": 80}}
    )


def nested_keys_answer(depth: int = 200) -> bytes:
    nested: dict[str, Any] = {"pad": "x" * 200_000}
    for _ in range(depth):
        nested = {"usage": 0, "inner": nested}
    return orjson.dumps({"model": "gpt-4o", "usage": {"total_tokens": 12}, "metadata": nested})


def best_of(work: Callable[[], object], runs: int = 7) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    print("| answer | size | read_usage | orjson.loads (whole) |")
    print("|---|---:|---:|---:|")
    bodies = [(f"embeddings, {n} inputs", embeddings_answer(n)) for n in (10, 100, 1000)]
    bodies.append(("200 nested `usage` keys after the usage", nested_keys_answer()))
    for name, body in bodies:
        tail = best_of(lambda: read_usage(body))  # noqa: B023 - timed at once, in this iteration
        whole = best_of(lambda: orjson.loads(body))  # noqa: B023
        print(f"| {name} | {len(body) / 1e6:.2f} MB | {tail * 1e6:,.1f} us | {whole * 1e6:,.0f} us |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
