"""URLs as they may be printed: in `check`'s output, source labels and log lines."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact(url: str) -> str:
    """`url` with its user name and password masked as `***` and without its query and
    fragment (a blob URL's query may hold a SAS signature)."""
    parts = urlsplit(url)
    _, at, host = parts.netloc.rpartition("@")
    return urlunsplit((parts.scheme, f"***@{host}" if at else host, parts.path, "", ""))
