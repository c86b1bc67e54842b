"""`python -m bench.estimate`: how well cheap prompt-token estimates track the real count, and what each costs.

A per-key token budget reserves a request's cost when it is admitted (an estimate of its prompt tokens plus its output
cap) and settles it later with Azure's reported usage. This measures candidate estimates of the prompt part against
the real count on the corpus in bench/estimate_corpus/ (chat-completions and Responses bodies written for this
repository), then times each candidate and bpe-openai's tokenizer. See bench/README.md, "Prompt-token estimate".

The real count is o200k_base (bpe-openai's embedded copy, checked here against the SHA-256 OpenAI publishes for
o200k_base.tiktoken) over what the model reads, with OpenAI's cookbook overheads for gpt-4o-family chat: 3 tokens per
message, 1 more when a message has a `name`, 3 to prime the reply. Tool definitions, tool calls and JSON schemas are
counted as their compact JSON text, tool call ids included: a stand-in, since OpenAI does not publish how the service
renders them. A `detail: low` image is 85 tokens (gpt-4o). `--verify` re-counts every text with a pure-Python BPE over
the same vocabulary and OpenAI's o200k_base split pattern, independent of bpe-openai's Rust code.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
import timeit
from base64 import b64decode
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import orjson
import yaml

from bench.latency import percentile
from bench.report import write_json
from core.translation.usage import estimate_prompt_tokens

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "estimate_corpus"
RESULTS = HERE / "results" / "estimate.json"

ENCODING = "o200k_base"
# What tiktoken checks o200k_base.tiktoken against (tiktoken_ext/openai_public.py): the vocabulary OpenAI publishes.
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
# OpenAI's o200k_base pre-tokenizer split pattern (tiktoken_ext/openai_public.py), for --verify.
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
# OpenAI cookbook, "How to count tokens with tiktoken", for gpt-4o and gpt-4o-mini.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
IMAGE_LOW_DETAIL = 85  # OpenAI's vision pricing for gpt-4o: a low-detail image is 85 tokens, whatever its size

WIRE_FORMS: dict[str, Callable[[Any], bytes]] = {
    # What the openai Python SDK and httpx's json= send, and JavaScript's JSON.stringify: compact, raw UTF-8.
    "compact UTF-8": lambda body: json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
    # Python's json.dumps defaults (requests' json=, hand-rolled clients): spaces, \\uXXXX escapes.
    "json.dumps default": lambda body: json.dumps(body).encode(),
    # A hand-written file sent with curl -d @body.json.
    "pretty (indent 2)": lambda body: json.dumps(body, ensure_ascii=False, indent=2).encode(),
}
PRIMARY_FORM = "compact UTF-8"


class Counter(Protocol):
    def count(self, text: str) -> int: ...


class Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    kind: str  # the corpus file it comes from
    body: dict[str, Any]


def _check_keys(node: Any, where: str) -> None:
    """YAML 1.1 reads some bare words as booleans (`on`, `no`): every mapping key must have stayed a string."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: non-string key {key!r} (quote it in the YAML)")
            _check_keys(value, where)
    elif isinstance(node, list):
        for item in node:
            _check_keys(item, where)


def load_corpus() -> list[Sample]:
    samples = []
    for path in sorted(CORPUS.glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")):
            _check_keys(entry["body"], entry["name"])
            samples.append(Sample(entry["name"], path.stem, entry["body"]))
    names = [s.name for s in samples]
    if len(set(names)) != len(names):
        raise ValueError("duplicate sample names in the corpus")
    return samples


# --- the real count ---------------------------------------------------------------------------------------------


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _image_tokens(part: dict[str, Any]) -> int:
    image = part.get("image_url", part)
    detail = image.get("detail") if isinstance(image, dict) else part.get("detail")
    if detail != "low":
        raise ValueError("corpus images say detail: low (a high-detail image's tokens depend on its size)")
    return IMAGE_LOW_DETAIL


def _content(content: Any, texts: list[str]) -> int:
    """Texts of a message's content into `texts`; returns the fixed tokens (images) it adds."""
    if content is None:
        return 0
    if isinstance(content, str):
        texts.append(content)
        return 0
    fixed = 0
    for part in content:
        if part["type"] in ("text", "input_text", "output_text"):
            texts.append(part["text"])
        elif part["type"] in ("image_url", "input_image"):
            fixed += _image_tokens(part)
        else:
            raise ValueError(f"content part {part['type']!r} is not counted")
    return fixed


def _message(message: dict[str, Any], texts: list[str]) -> int:
    texts.append(message["role"])
    fixed = TOKENS_PER_MESSAGE + _content(message.get("content"), texts)
    if "name" in message:
        texts.append(message["name"])
        fixed += TOKENS_PER_NAME
    if "tool_calls" in message:
        texts.append(_compact(message["tool_calls"]))
    if "tool_call_id" in message:
        texts.append(message["tool_call_id"])
    return fixed


def prompt_parts(body: dict[str, Any]) -> tuple[list[str], int]:
    """What the model reads of a chat-completions or Responses body: (texts to tokenize, fixed tokens)."""
    texts: list[str] = []
    fixed = REPLY_PRIMING
    if "messages" in body:
        for message in body["messages"]:
            fixed += _message(message, texts)
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            texts.append(_compact(response_format["json_schema"]))
    else:
        if "instructions" in body:
            fixed += _message({"role": "system", "content": body["instructions"]}, texts)
        items = body["input"]
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
        for item in items:
            kind = item.get("type", "message")
            if kind == "message":
                fixed += _message(item, texts)
            elif kind == "function_call":
                texts += [item["call_id"], item["name"], item["arguments"]]
                fixed += TOKENS_PER_MESSAGE
            elif kind == "function_call_output":
                texts += [item["call_id"], item["output"]]
                fixed += TOKENS_PER_MESSAGE
            else:
                raise ValueError(f"input item {kind!r} is not counted")
        text_format = (body.get("text") or {}).get("format") or {}
        if text_format.get("type") == "json_schema":
            texts.append(_compact(text_format))
    if "tools" in body:
        texts.append(_compact(body["tools"]))
    return texts, fixed


def real_tokens(body: dict[str, Any], counter: Counter) -> int:
    texts, fixed = prompt_parts(body)
    return fixed + sum(counter.count(text) for text in texts)


# --- the candidates ---------------------------------------------------------------------------------------------

_HIGH_BYTES = bytes(range(0x80, 0x100))  # deleting these leaves a body's ASCII bytes
_ASCII_AND_CONTINUATION = bytes(range(0xC0))  # deleting these leaves one UTF-8 lead byte per non-ASCII code point


def body_over(divisor: float) -> Callable[[bytes, Any], int]:
    return lambda body, _parsed: math.ceil(len(body) / divisor)


def utf8_aware(ascii_divisor: int) -> Callable[[bytes, Any], int]:
    """ASCII bytes / divisor + one token per non-ASCII code point (its UTF-8 lead bytes)."""

    def estimate(body: bytes, _parsed: Any) -> int:
        if body.isascii():
            return -(-len(body) // ascii_divisor)
        ascii_bytes = len(body.translate(None, _HIGH_BYTES))
        return -(-ascii_bytes // ascii_divisor) + len(body.translate(None, _ASCII_AND_CONTINUATION))

    return estimate


def ascii_quarter_high_half(body: bytes, _parsed: Any) -> int:
    """ASCII bytes / 4 + non-ASCII bytes / 2, i.e. (body + non-ASCII bytes) / 4."""
    if body.isascii():
        return -(-len(body) // 4)
    return -(-(2 * len(body) - len(body.translate(None, _HIGH_BYTES))) // 4)


# The estimate the gateway uses (core/translation/usage.py): a quarter token per byte, plus one per byte of the kinds
# o200k_base packs densely (digits, capitals, backslashes, UTF-8 4-byte leads).
def quarter_plus_tally(body: bytes, _parsed: Any = None) -> int:
    return estimate_prompt_tokens(body)


TALLIED = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\\" + bytes(range(0xF0, 0xF5))
_NOT_TALLIED_FIRST = bytes(sorted(set(range(256)) - set(TALLIED) | {0x5C}))


def quarter_plus_first_tally(body: bytes, _parsed: Any = None) -> int:
    """The first form of the above, before the held-out LaTeX body: no backslashes."""
    return -(-len(body) // 4) + len(body.translate(None, _NOT_TALLIED_FIRST))


def _strings(node: Any) -> Iterator[str]:
    """Every key and string value of a parsed body."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _messages(parsed: Any) -> int:
    items = parsed.get("messages", parsed.get("input"))
    return len(items) if isinstance(items, list) else 1


def content_over(divisor: int) -> Callable[[bytes, Any], int]:
    """UTF-8 bytes of every key and string value / divisor, + 4 per message."""

    def estimate(_body: bytes, parsed: Any) -> int:
        size = sum(len(s) if s.isascii() else len(s.encode()) for s in _strings(parsed))
        return -(-size // divisor) + 4 * _messages(parsed)

    return estimate


def content_utf8_aware(_body: bytes, parsed: Any) -> int:
    """ASCII characters of every key and string value / 4 + their non-ASCII characters, + 4 per message."""
    ascii_chars = other = 0
    for s in _strings(parsed):
        if s.isascii():
            ascii_chars += len(s)
        else:
            n = len(s.encode("ascii", "ignore"))
            ascii_chars += n
            other += len(s) - n
    return -(-ascii_chars // 4) + other + 4 * _messages(parsed)


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    formula: str
    estimate: Callable[[bytes, Any], int]


CANDIDATES = [
    Candidate("body/4", "ceil(len(body) / 4)", body_over(4)),
    Candidate("body/3.5", "ceil(len(body) / 3.5)", body_over(3.5)),
    Candidate("body/3", "ceil(len(body) / 3)", body_over(3)),
    Candidate("body/2.5", "ceil(len(body) / 2.5)", body_over(2.5)),
    Candidate("utf8 body, ascii/4", "ceil(ascii bytes / 4) + non-ASCII code points", utf8_aware(4)),
    Candidate("utf8 body, ascii/3", "ceil(ascii bytes / 3) + non-ASCII code points", utf8_aware(3)),
    Candidate("body, high bytes/2", "ceil((ascii bytes + 2 x non-ASCII bytes) / 4)", ascii_quarter_high_half),
    Candidate(
        "body/4 + tally (first)", "ceil(len(body) / 4) + bytes that are 0-9, A-Z or 0xF0-0xF4", quarter_plus_first_tally
    ),
    Candidate(
        "body/4 + tally", "ceil(len(body) / 4) + bytes that are 0-9, A-Z, backslash or 0xF0-0xF4", quarter_plus_tally
    ),
    Candidate("content/4", "ceil(key+string bytes / 4) + 4 x messages", content_over(4)),
    Candidate("content/3", "ceil(key+string bytes / 3) + 4 x messages", content_over(3)),
    Candidate("utf8 content", "ceil(key+string ASCII chars / 4) + other chars + 4 x messages", content_utf8_aware),
]


# --- bpe-openai ---------------------------------------------------------------------------------------------------


def rust_counter() -> Counter:
    """bpe-openai's Rust tokenizer itself (the module under its tiktoken-compatible wrapper)."""
    bindings = importlib.import_module("bpe_openai._bindings")
    return cast(Counter, bindings.tokenizer_for_encoding(ENCODING))


def wrapper_encoding() -> Encoding:
    """bpe-openai's tiktoken-compatible Encoding (loads the vocabulary into Python as well)."""
    return cast(Encoding, importlib.import_module("bpe_openai").get_encoding(ENCODING))


def vocabulary() -> dict[bytes, int]:
    """bpe-openai's embedded o200k_base.tiktoken, checked against the hash OpenAI publishes."""
    spec = importlib.import_module("bpe_openai.data").__spec__
    assert spec is not None and spec.submodule_search_locations
    raw = gzip.decompress((Path(spec.submodule_search_locations[0]) / f"{ENCODING}.tiktoken.gz").read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != O200K_SHA256:
        raise SystemExit(f"bpe-openai's {ENCODING} is not OpenAI's: sha256 {digest}")
    ranks = {}
    for line in raw.splitlines():
        token, rank = line.split()
        ranks[b64decode(token)] = int(rank)
    return ranks


class ReferenceBpe:
    """Byte-pair encoding as tiktoken does it, in plain Python: slow, only to check the Rust counts."""

    def __init__(self, ranks: dict[bytes, int]) -> None:
        self._ranks = ranks
        self._split = cast(Any, importlib.import_module("regex")).compile(O200K_PATTERN).findall

    def _piece(self, piece: bytes) -> int:
        if piece in self._ranks:
            return 1
        parts = [piece[i : i + 1] for i in range(len(piece))]
        while len(parts) > 1:
            ranked = [(self._ranks.get(parts[i] + parts[i + 1]), i) for i in range(len(parts) - 1)]
            best = min(((rank, i) for rank, i in ranked if rank is not None), default=None)
            if best is None:
                break
            i = best[1]
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        return len(parts)

    def count(self, text: str) -> int:
        return sum(self._piece(piece.encode()) for piece in self._split(text))


# --- measuring ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stats:
    n: int
    minimum: float
    p10: float
    median: float
    p90: float
    maximum: float
    under: int  # estimates below the real count
    under_10pct: int  # estimates more than 10% below it
    worst: str  # the sample with the lowest ratio
    total_ratio: float  # sum of estimates / sum of real counts


def stats(ratios: dict[str, float], estimates: Sequence[int], reals: Sequence[int]) -> Stats:
    ordered = sorted(ratios.values())
    return Stats(
        n=len(ordered),
        minimum=ordered[0],
        p10=percentile(ordered, 10),
        median=statistics.median(ordered),
        p90=percentile(ordered, 90),
        maximum=ordered[-1],
        under=sum(r < 1 for r in ordered),
        under_10pct=sum(r < 0.9 for r in ordered),
        worst=min(ratios, key=lambda name: ratios[name]),
        total_ratio=sum(estimates) / sum(reals),
    )


def per_call_us(call: Callable[[], object], quick: bool) -> float:
    """Best of a few timeit repeats, microseconds per call, the call's own overhead included (the empty-call row)."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=2 if quick else 5, number=number)) / number * 1e6


def timing_bodies(samples: Sequence[Sample]) -> dict[str, tuple[bytes, Any]]:
    """Chat bodies of about 1 KB, 6 KB and 100 KB, from the corpus' own message texts: ASCII-only and mixed."""
    texts = [
        text
        for sample in samples
        if "messages" in sample.body
        for text in prompt_parts(sample.body)[0]
        if len(text) > 20 and not text.startswith("[{")
    ]
    ascii_texts = [t for t in texts if t.isascii()]
    bodies = {}
    for size in (1_000, 6_000, 100_000):
        for flavour, pool in (("ASCII", ascii_texts), ("mixed", texts)):
            messages: list[dict[str, str]] = [{"role": "system", "content": "You are a helpful assistant."}]
            i = 0
            while len(WIRE_FORMS[PRIMARY_FORM]({"model": "gpt-4o", "messages": messages})) < size:
                messages.append({"role": ("user", "assistant")[i % 2], "content": pool[(i * 7) % len(pool)]})
                i += 1
            last = messages[-1]["content"]
            while len(WIRE_FORMS[PRIMARY_FORM]({"model": "gpt-4o", "messages": messages})) > size and last:
                last = last[: len(last) - max(1, len(last) // 8)]
                messages[-1]["content"] = last
            body = {"model": "gpt-4o", "messages": messages}
            wire = WIRE_FORMS[PRIMARY_FORM](body)
            bodies[f"{size // 1000} KB {flavour}"] = (wire, orjson.loads(wire))
    return bodies


LOAD_SCRIPT = """
import importlib, json, sys, time
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024
t0, m0 = time.perf_counter(), rss()
import bpe_openai
t1, m1 = time.perf_counter(), rss()
tok = importlib.import_module("bpe_openai._bindings").tokenizer_for_encoding("o200k_base")
tok.count("warm")
t2, m2 = time.perf_counter(), rss()
enc = bpe_openai.get_encoding("o200k_base")
enc.encode_ordinary("warm")
t3, m3 = time.perf_counter(), rss()
print(json.dumps({"import": [t1 - t0, m1 - m0], "rust tokenizer": [t2 - t1, m2 - m1],
                  "tiktoken-style Encoding": [t3 - t2, m3 - m2]}))
"""


def load_costs(runs: int) -> dict[str, tuple[float, float]]:
    """Median seconds and RSS MiB of each loading step, each run in a fresh interpreter."""
    results = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", LOAD_SCRIPT], capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out))
    return {
        step: (statistics.median(r[step][0] for r in results), statistics.median(r[step][1] for r in results))
        for step in results[0]
    }


# --- output -------------------------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _r(value: float) -> str:
    return f"{value:.2f}"


def _us(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def _stats_dict(s: Stats) -> dict[str, Any]:
    return {name: getattr(s, name) for name in Stats.__slots__}


@dataclass(frozen=True, slots=True)
class Accuracy:
    reals: dict[str, int]  # sample name -> real count
    estimates: dict[str, dict[str, dict[str, int]]]  # wire form -> estimate name -> sample name -> estimate
    wire_bytes: dict[str, dict[str, int]]  # wire form -> sample name -> body bytes

    def of(self, form: str, estimate: str, samples: Sequence[Sample]) -> Stats:
        chosen = self.estimates[form][estimate]
        return stats(
            {s.name: chosen[s.name] / self.reals[s.name] for s in samples},
            [chosen[s.name] for s in samples],
            [self.reals[s.name] for s in samples],
        )


def measure_accuracy(samples: Sequence[Sample], counter: Counter) -> Accuracy:
    reals = {s.name: real_tokens(s.body, counter) for s in samples}
    estimates: dict[str, dict[str, dict[str, int]]] = {}
    wire_bytes = {}
    for form, encode in WIRE_FORMS.items():
        wires = {s.name: encode(s.body) for s in samples}
        wire_bytes[form] = {name: len(wire) for name, wire in wires.items()}
        estimates[form] = {c.name: {s.name: c.estimate(wires[s.name], s.body) for s in samples} for c in CANDIDATES}
        # The tokenizer itself over the raw body text: no walk, no overhead rules.
        estimates[form][TOKENIZED_BODY] = {name: counter.count(wire.decode()) for name, wire in wires.items()}
    return Accuracy(reals, estimates, wire_bytes)


TOKENIZED_BODY = "o200k(body)"


def measure_cost(
    samples: Sequence[Sample], counter: Counter, quick: bool
) -> tuple[dict[str, int], dict[str, dict[str, float]]]:
    """Body sizes, and call -> body label -> microseconds per call."""
    bodies = timing_bodies(samples)
    encoding = wrapper_encoding()
    calls: dict[str, Callable[[bytes, Any], object]] = {
        "empty call (baseline)": lambda wire, parsed: None,
        "orjson.loads(body) (the gateway parses anyway)": lambda wire, parsed: orjson.loads(wire),
        **{f"`{c.name}`": c.estimate for c in CANDIDATES},
        f"{TOKENIZED_BODY}: Rust count": lambda wire, parsed: counter.count(wire.decode()),
        f"{TOKENIZED_BODY}: Encoding.encode_ordinary": lambda wire, parsed: len(
            encoding.encode_ordinary(wire.decode())
        ),
        "real count: walk + Rust count": lambda wire, parsed: real_tokens(parsed, counter),
    }
    timings: dict[str, dict[str, float]] = {name: {} for name in calls}
    for label, (wire, parsed) in bodies.items():
        for name, call in calls.items():
            timings[name][label] = per_call_us(functools.partial(call, wire, parsed), quick)
    return {label: len(wire) for label, (wire, _) in bodies.items()}, timings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.estimate", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer timing repeats and load runs (not a measurement)")
    parser.add_argument("--verify", action="store_true", help="re-count every text with a pure-Python BPE")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)

    samples = load_corpus()
    counter = rust_counter()
    vocab = vocabulary()  # checks the embedded vocabulary's hash
    print(f"corpus: {len(samples)} bodies in {CORPUS.relative_to(HERE.parent)}/", file=sys.stderr)
    if args.verify:
        reference = ReferenceBpe(vocab)
        texts = [text for sample in samples for text in prompt_parts(sample.body)[0]]
        mismatches = [t[:40] for t in texts if reference.count(t) != counter.count(t)]
        print(
            f"verify: {len(texts) - len(mismatches)}/{len(texts)} texts count the same in pure Python", file=sys.stderr
        )
        if mismatches:
            raise SystemExit(f"bpe-openai differs from the reference BPE on: {mismatches}")
    del vocab

    accuracy = measure_accuracy(samples, counter)
    print("timing...", file=sys.stderr)
    sizes, timings = measure_cost(samples, counter, args.quick)
    print("loading bpe-openai in fresh interpreters...", file=sys.stderr)
    loads = load_costs(1 if args.quick else 3)

    names = [c.name for c in CANDIDATES] + [TOKENIZED_BODY]
    held_out = [s for s in samples if s.kind.startswith("holdout")]
    kinds = sorted({s.kind for s in samples})

    print(f"## estimate / real, {len(samples)} bodies, {PRIMARY_FORM}\n")
    rows = []
    for name in names:
        s = accuracy.of(PRIMARY_FORM, name, samples)
        worst = f"{s.worst} ({_r(s.minimum)})" if s.minimum < 1 else "-"
        cells = [s.minimum, s.p10, s.median, s.p90, s.maximum]
        rows.append(
            [f"`{name}`", *map(_r, cells), f"{s.under}/{s.n}", f"{s.under_10pct}/{s.n}", worst, _r(s.total_ratio)]
        )
    print(_table(["estimate", "min", "p10", "median", "p90", "max", "under", "under >10%", "lowest", "sum"], rows))

    print(f"\n## held out: {len(held_out)} bodies written after the tally formulas, {PRIMARY_FORM}\n")
    rows = []
    for name in names:
        s = accuracy.of(PRIMARY_FORM, name, held_out)
        rows.append([f"`{name}`", _r(s.minimum), _r(s.median), _r(s.maximum), f"{s.under}/{s.n}", s.worst])
    print(_table(["estimate", "min", "median", "max", "under", "lowest"], rows))

    print("\n## other serializations of the same bodies: min ratio, under, under >10%\n")
    rows = []
    for name in names:
        per_form = [accuracy.of(form, name, samples) for form in WIRE_FORMS]
        rows.append([f"`{name}`", *(f"{_r(s.minimum)}, {s.under}, {s.under_10pct}" for s in per_form)])
    print(_table(["estimate", *WIRE_FORMS], rows))

    print(f"\n## per kind (corpus file), {PRIMARY_FORM}: min / median ratio\n")
    rows = []
    for name in names:
        per_kind = [accuracy.of(PRIMARY_FORM, name, [s for s in samples if s.kind == kind]) for kind in kinds]
        rows.append([f"`{name}`", *(f"{_r(s.minimum)} / {_r(s.median)}" for s in per_kind)])
    print(_table(["estimate", *(f"{k} ({sum(s.kind == k for s in samples)})" for k in kinds)], rows))

    print("\n## CPU per call, microseconds (best of repeats)\n")
    header = ["call", *(f"{label} ({size:,} B)" for label, size in sizes.items())]
    print(_table(header, [[name, *(_us(t[label]) for label in sizes)] for name, t in timings.items()]))

    print("\n## loading bpe-openai (fresh interpreter, median)\n")
    print(_table(["step", "seconds", "RSS MiB"], [[step, f"{s:.3f}", f"{m:.0f}"] for step, (s, m) in loads.items()]))

    write_json(
        args.output,
        {
            "encoding": ENCODING,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "candidates": {c.name: c.formula for c in CANDIDATES},
            "accuracy": {
                form: {name: _stats_dict(accuracy.of(form, name, samples)) for name in names} for form in WIRE_FORMS
            },
            "timing_us": timings,
            "timing_body_bytes": sizes,
            "load": {step: {"seconds": s, "rss_mib": m} for step, (s, m) in loads.items()},
            "bodies": {
                s.name: {
                    "kind": s.kind,
                    "real": accuracy.reals[s.name],
                    "bytes": {form: accuracy.wire_bytes[form][s.name] for form in WIRE_FORMS},
                    "estimates": {
                        form: {name: accuracy.estimates[form][name][s.name] for name in names} for form in WIRE_FORMS
                    },
                }
                for s in samples
            },
        },
    )
    print(f"\nwrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
