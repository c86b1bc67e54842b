"""A minimal blocking HTTP/1.1 keep-alive client for the concurrency-1 latency phases.

Why not httpx or aiohttp: at concurrency 1 the client's own per-request cost and jitter land in every sample, for
every target. A blocking socket with pre-built request bytes adds a few microseconds and no event loop, so the
difference between targets is the proxy, not the client. It speaks just enough HTTP/1.1 for these servers:
Content-Length or chunked bodies, keep-alive.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

MODEL = "gpt-4o"
API_VERSION = "2024-10-21"
UPSTREAM_KEY = "bench-upstream-key"
GATEWAY_KEY = "bench-gateway-key"
_MESSAGES = [{"role": "user", "content": "Hello benchmark"}]
CHAT_BODY = orjson.dumps({"model": MODEL, "messages": _MESSAGES})
STREAM_BODY = orjson.dumps({"model": MODEL, "messages": _MESSAGES, "stream": True})
_MAX_CHUNKS = 100_000  # a bound on one chunked body, so a misbehaving server cannot keep a loop going


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send a chat completion and how to authenticate; `name` is "direct", "naive" or "gateway"."""

    name: str
    host: str
    port: int
    path: str  # with query string
    auth_header: tuple[str, str]
    extra_headers: tuple[tuple[str, str], ...] = ()  # more request headers (a bench tenant's x-sim-*)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    def request(self, body: bytes) -> bytes:
        """The whole request, built once and re-sent as-is."""
        headers = [self.auth_header, *self.extra_headers]
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers)
            + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


def direct_target(sim_url: str) -> Target:
    parts = urlsplit(sim_url)
    path = f"/openai/deployments/{MODEL}/chat/completions?api-version={API_VERSION}"
    return Target("direct", parts.hostname or "127.0.0.1", parts.port or 80, path, ("api-key", UPSTREAM_KEY))


def gateway_target(gateway_url: str) -> Target:
    parts = urlsplit(gateway_url)
    auth = ("Authorization", f"Bearer {GATEWAY_KEY}")
    return Target("gateway", parts.hostname or "127.0.0.1", parts.port or 80, "/v1/chat/completions", auth)


def naive_target(naive_url: str) -> Target:
    """The naive proxy (bench/naive.py), sent the gateway's very request: same path, same Authorization header
    (which it ignores), so the bytes on the wire are the same for both proxies."""
    parts = urlsplit(naive_url)
    auth = ("Authorization", f"Bearer {GATEWAY_KEY}")
    return Target("naive", parts.hostname or "127.0.0.1", parts.port or 80, "/v1/chat/completions", auth)


class Connection:
    """One keep-alive connection; `last_recv` is when the most recent bytes arrived (perf_counter)."""

    __slots__ = ("_sock", "_buf", "last_recv")

    def __init__(self, target: Target, timeout: float = 10.0) -> None:
        self._sock = socket.create_connection((target.host, target.port), timeout=timeout)
        # Nagle would hold the small request back waiting for an ACK: pure added latency for both targets.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()
        self.last_recv = 0.0

    def close(self) -> None:
        self._sock.close()

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def _fill(self) -> None:
        data = self._sock.recv(262144)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.last_recv = time.perf_counter()
        self._buf += data

    def _take_until(self, separator: bytes) -> bytes:
        while (end := self._buf.find(separator)) < 0:
            self._fill()
        out = bytes(self._buf[:end])
        del self._buf[: end + len(separator)]
        return out

    def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_head(self) -> tuple[int, dict[str, str]]:
        """Status code and lower-cased headers."""
        lines = self._take_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def iter_body(self, headers: dict[str, str]) -> Iterator[bytes]:
        """The body as it arrives: one piece per chunk (chunked) or the whole body (Content-Length)."""
        if "content-length" in headers:
            yield self._take(int(headers["content-length"]))
            return
        if headers.get("transfer-encoding", "").lower() != "chunked":
            raise ValueError("response has neither Content-Length nor chunked framing; keep-alive impossible")
        for _ in range(_MAX_CHUNKS):
            size = int(self._take_until(b"\r\n").split(b";", 1)[0], 16)
            if size == 0:
                while self._take_until(b"\r\n"):  # trailers, then the empty line
                    pass
                return
            yield self._take(size)
            self._take(2)
        raise ValueError("chunked body longer than the benchmark allows")


class BadStatus(RuntimeError):
    pass


def timed_request(conn: Connection, request: bytes) -> float:
    """Seconds from sending the request to having the whole response body."""
    started = time.perf_counter()
    conn.send(request)
    status, headers = conn.read_head()
    body = b"".join(conn.iter_body(headers))
    elapsed = time.perf_counter() - started
    if status != 200:
        raise BadStatus(f"HTTP {status}: {body[:300]!r}")
    return elapsed


def timed_first_content(conn: Connection, request: bytes) -> float:
    """Seconds from sending a streaming request to the arrival of the first SSE event with non-empty content.

    The rest of the stream is read too (the connection is reused); its time is not part of the sample.
    """
    started = time.perf_counter()
    conn.send(request)
    status, headers = conn.read_head()
    if status != 200:
        raise BadStatus(f"HTTP {status}: {b''.join(conn.iter_body(headers))[:300]!r}")
    scanner = FirstContent()
    first = 0.0
    for piece in conn.iter_body(headers):
        if not first and scanner.feed(piece):
            first = conn.last_recv - started  # when the bytes carrying that event arrived
    if not first:
        raise BadStatus("the stream ended without a content event")
    return first


class FirstContent:
    """Finds the first SSE event whose choices carry a non-empty delta.content (the filter-only and role-only
    events before it do not count, which is what a user sees as 'first token')."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> bool:
        self._pending += data
        while (end := self._pending.find(b"\n\n")) >= 0:
            event, self._pending = self._pending[:end], self._pending[end + 2 :]
            if _has_content(event):
                return True
        return False


def _has_content(event: bytes) -> bool:
    for line in event.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            return False
        choices = orjson.loads(data).get("choices") or []
        if any(isinstance(c, dict) and (c.get("delta") or {}).get("content") for c in choices):
            return True
    return False
