"""How deep a JSON text nests, bounded.

The gateway re-encodes JSON it parsed (orjson refuses to encode more than 254 levels) and walks it recursively (model
ids, object ids), so what it parses is bounded here: a client's body nested deeper than MAX_DEPTH is refused where
the gateway reads it (core/inbound.py), and an upstream answer that deep is relayed as it came, or refused as one no
client can use where the gateway must rewrite it (core/translation/).
"""

from __future__ import annotations

import re
from itertools import accumulate

# Far deeper than any real request or answer (a strict JSON schema allows 10 levels), far below orjson's limits.
MAX_DEPTH = 128

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # brackets in strings do not nest
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_STEP = [0] * 256
for _open, _close in (b"[]", b"{}"):
    _STEP[_open], _STEP[_close] = 1, -1


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text `raw` nests arrays and objects more than `limit` levels deep (a top-level object is one
    level). Linear and in C; nearly free for the usual body, whose brackets are too few to nest that deep."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    structure = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, structure)), default=0) > limit
