"""How the simulator misbehaves: ``Behaviour`` (defaults, overridden per request by ``x-sim-*`` headers) and the
fail modes it knows.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, fields

from aiohttp import web

# Canned answers, sent instead of the operation's own (see faults.canned_failure).
CANNED_FAIL_MODES = frozenset(
    {
        "429",
        "content_filter",
        "500",
        "503",
        "html",
        "599",
        "302",
        "huge",
        "huge_chunked",
        "huge_error",
        "invalid_json",
        "bad_list",
        "bad_choices",
        "deep_json",
    }
)
# Levels of a deep_json answer: more than orjson encodes (254), fewer than it parses (1024).
DEEP_JSON_LEVELS = 600
# Faults in the middle of an answer the operation writes itself (see streams.send_sse and streams.send_chunks):
#   abort: drop the connection part-way (streams and byte answers; other answers before any byte)
#   truncate_chunked / truncate_length: cut a byte answer (speech, file content) half-way, sent chunked / with its
#     full content-length
#   hang_after_done: write a whole SSE stream, [DONE] included, then hold the connection open, unfinished
#   late_end: write a whole SSE stream and end it LATE_END_SECONDS after its [DONE] (a network can part the two)
WRITER_FAIL_MODES = frozenset({"abort", "truncate_chunked", "truncate_length", "hang_after_done", "late_end"})
LATE_END_SECONDS = 0.3
FAIL_MODES = CANNED_FAIL_MODES | WRITER_FAIL_MODES


AUDIO_BYTES = 65536  # default size of an audio/speech answer                          (x-sim-audio-bytes)


HUGE_BYTES = 32 * 1024 * 1024  # size of a huge answer: more than a localhost socket buffers (x-sim-huge-bytes)
LINE_ENDINGS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}  # SSE allows all three (x-sim-line-ending)


@dataclass(slots=True)
class Behaviour:
    """Defaults applied to every request unless it overrides them with ``x-sim-*`` headers.

    Tests mutate it directly (``sim.behaviour.chunk_delay = 0.2``); ``AzureSimulator.reset()`` restores it in place,
    so references held by tests stay valid.
    """

    chunk_delay: float = 0.0  # seconds between SSE events                    (x-sim-chunk-delay-ms)
    delay: float = 0.0  # seconds before response headers                     (x-sim-delay-ms)
    fail: str | None = None  # one of FAIL_MODES                              (x-sim-fail)
    annotations: bool = False  # add an async-filter annotation event         (x-sim-annotations: 1)
    chunks: int = 5  # content pieces per stream                              (x-sim-chunks)
    audio_bytes: int = AUDIO_BYTES  # size of an audio/speech answer           (x-sim-audio-bytes)
    drip: float = 0.0  # write the body a byte at a time, this long apart     (x-sim-drip-ms)
    encoding: str | None = None  # gzip, deflate, or a label nobody decodes   (x-sim-encoding)
    huge_bytes: int = HUGE_BYTES  # size of a huge / huge_error answer        (x-sim-huge-bytes)
    line_ending: str = "lf"  # SSE line endings: lf, crlf or cr               (x-sim-line-ending)
    retry_after_ms: float | None = None  # a 429's retry-after-ms (and Retry-After rounded up) (x-sim-retry-after-ms)
    fail_rate: float = 1.0  # the share of requests that fail as `fail` says  (x-sim-fail-rate)
    read_delay: float = 0.0  # seconds before reading the request body        (x-sim-read-delay-ms)
    # Every count of a JSON answer's top-level usage, as this JSON text: a misreporting upstream (x-sim-usage)
    usage: str | None = None
    # A 429's Retry-After exactly as given (a date, a negative or absurd number...)   (x-sim-retry-after)
    retry_after: str | None = None
    # x-ratelimit-remaining-tokens on every answer, exactly as given (-5, "lots")      (x-sim-remaining-tokens)
    remaining_tokens: str | None = None

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, f.default)

    def for_request(self, headers: Mapping[str, str]) -> Behaviour:
        """The effective behaviour for one request: these defaults overridden by its ``x-sim-*`` headers.

        Raises ValueError on a malformed header or an unknown fail mode, so a typo in a test fails loudly.
        """
        get = headers.get
        chunk_delay = _ms_header(get("x-sim-chunk-delay-ms"), self.chunk_delay)
        delay = _ms_header(get("x-sim-delay-ms"), self.delay)
        fail = get("x-sim-fail", self.fail) or None
        if fail is not None and fail not in FAIL_MODES:
            raise ValueError(f"x-sim-fail must be one of {sorted(FAIL_MODES)}, got {fail!r}")
        raw_annotations = get("x-sim-annotations")
        annotations = self.annotations if raw_annotations is None else raw_annotations.lower() in ("1", "true", "yes")
        raw_chunks = get("x-sim-chunks")
        chunks = self.chunks if raw_chunks is None else int(raw_chunks)
        if chunks < 1:
            raise ValueError("x-sim-chunks must be >= 1")
        raw_audio_bytes = get("x-sim-audio-bytes")
        audio_bytes = self.audio_bytes if raw_audio_bytes is None else int(raw_audio_bytes)
        if audio_bytes < 0:
            raise ValueError("x-sim-audio-bytes must be >= 0")
        drip = _ms_header(get("x-sim-drip-ms"), self.drip)
        encoding = get("x-sim-encoding", self.encoding) or None
        raw_huge_bytes = get("x-sim-huge-bytes")
        huge_bytes = self.huge_bytes if raw_huge_bytes is None else int(raw_huge_bytes)
        if huge_bytes < 0:
            raise ValueError("x-sim-huge-bytes must be >= 0")
        line_ending = get("x-sim-line-ending", self.line_ending)
        if line_ending not in LINE_ENDINGS:
            raise ValueError(f"x-sim-line-ending must be one of {sorted(LINE_ENDINGS)}, got {line_ending!r}")
        raw_retry_after_ms = get("x-sim-retry-after-ms")
        retry_after_ms = self.retry_after_ms if raw_retry_after_ms is None else float(raw_retry_after_ms)
        read_delay = self.read_delay_for(headers)
        usage = get("x-sim-usage", self.usage)
        if usage is not None:
            json.loads(usage)  # ValueError (a JSONDecodeError) when it is not JSON
        retry_after = get("x-sim-retry-after", self.retry_after)
        remaining_tokens = get("x-sim-remaining-tokens", self.remaining_tokens)
        fail_rate = float(get("x-sim-fail-rate", self.fail_rate))
        if fail is not None and fail_rate < 1.0 and random.random() >= fail_rate:
            fail = None
        return Behaviour(
            chunk_delay,
            delay,
            fail,
            annotations,
            chunks,
            audio_bytes,
            drip,
            encoding,
            huge_bytes,
            line_ending,
            retry_after_ms,
            fail_rate,
            read_delay,
            usage,
            retry_after,
            remaining_tokens,
        )

    def read_delay_for(self, headers: Mapping[str, str]) -> float:
        """How long to leave the request body unread (a slow upstream: what the client sends backs up)."""
        return _ms_header(headers.get("x-sim-read-delay-ms"), self.read_delay)


# Where the server keeps a request's effective behaviour, for the writes after the handler and the answer's headers.
BEHAVIOUR_KEY = web.RequestKey("sim.behaviour", Behaviour)


def _ms_header(raw: str | None, default_seconds: float) -> float:
    if raw is None:
        return default_seconds
    value = float(raw) / 1000.0
    if value < 0:
        raise ValueError("x-sim delays must be >= 0")
    return value
