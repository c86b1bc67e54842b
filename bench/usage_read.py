"""What reading a whole answer's usage costs (core/translation/usage.py) against parsing the answer.

`python -m bench.usage_read`: times read_usage and orjson.loads, best of 7, on a chat completion as Azure writes
one (short, and two long ones: one decoded whole, one past that bound, read from its tail), on embeddings answers of
10, 100 and 1000 inputs (1536 floats each) and on an answer built to make the tail read try hardest (200 nested
`usage` keys around a 200 kB string after its usage). Prints a markdown table.
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


def chat_answer(content: str = "Hello! How can I help you today?") -> bytes:
    """A chat completion as Azure writes one: its keys sorted, content-filter results for the choice and the prompt."""
    severity = {"filtered": False, "severity": "safe"}
    detected = {"filtered": False, "detected": False}
    choice_filters = {"hate": severity, "protected_material_code": detected, "protected_material_text": detected,
                      "self_harm": severity, "sexual": severity, "violence": severity}  # fmt: skip
    prompt_filters = {"hate": severity, "jailbreak": detected, "self_harm": severity, "sexual": severity,
                      "violence": severity}  # fmt: skip
    message = {"content": content, "refusal": None, "role": "assistant"}
    return orjson.dumps(
        {
            "choices": [
                {
                    "content_filter_results": choice_filters,
                    "finish_reason": "stop",
                    "index": 0,
                    "logprobs": None,
                    "message": message,
                }
            ],
            "created": 1796633496,
            "id": "chatcmpl-AbCdEf0123456789",
            "model": "gpt-4o-2024-08-06",
            "object": "chat.completion",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": prompt_filters}],
            "system_fingerprint": "fp_0123456789",
            "usage": {
                "completion_tokens": 9,
                "completion_tokens_details": {"reasoning_tokens": 0},
                "prompt_tokens": 12,
                "prompt_tokens_details": {"cached_tokens": 0},
                "total_tokens": 21,
            },
        }
    )


def nested_keys_answer(depth: int = 200) -> bytes:
    nested: dict[str, Any] = {"pad": "x" * 200_000}
    for _ in range(depth):
        nested = {"usage": 0, "inner": nested}
    return orjson.dumps({"model": "gpt-4o", "usage": {"total_tokens": 12}, "metadata": nested})


def best_of(work: Callable[[], object], runs: int = 7, number: int = 1) -> float:
    """The fastest of `runs` timings of `number` calls of `work`, per call."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(number):
            work()
        best = min(best, (time.perf_counter() - started) / number)
    return best


def main() -> int:
    print("| answer | size | read_usage | orjson.loads (whole) |")
    print("|---|---:|---:|---:|")
    bodies = [("chat completion", chat_answer())]
    # A long answer decoded whole, near the bound (core/translation/usage.py), and one past it, read from its tail.
    bodies += [(f"chat completion, {n:,} words", chat_answer("word " * n)) for n in (3000, 4000)]
    bodies += [(f"embeddings, {n} inputs", embeddings_answer(n)) for n in (10, 100, 1000)]
    bodies.append(("200 nested `usage` keys after the usage", nested_keys_answer()))
    for name, body in bodies:
        number = 1000 if len(body) < 100_000 else 1  # a small answer's read takes microseconds: time a thousand
        tail = best_of(lambda: read_usage(body), number=number)  # noqa: B023 - timed at once, in this iteration
        whole = best_of(lambda: orjson.loads(body), number=number)  # noqa: B023
        size = f"{len(body) / 1e3:.1f} kB" if len(body) < 100_000 else f"{len(body) / 1e6:.2f} MB"
        print(f"| {name} | {size} | {tail * 1e6:,.1f} us | {whole * 1e6:,.1f} us |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
