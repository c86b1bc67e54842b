"""The access record's own parts (core/accesslog.py): its id and its time. Its line as a whole is checked
through the gateway (tests/test_relay.py, tests/test_proxy.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from core.accesslog import AccessRecord, new_request_id


def test_request_ids_are_128_random_bits_in_hex() -> None:
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)
    # Every hex digit varies: no fixed prefix or counter.
    assert all(len({request_id[i] for request_id in ids}) == 16 for i in range(32))


def test_the_time_is_when_the_line_is_written_in_utc_to_the_millisecond() -> None:
    record = AccessRecord(new_request_id(), "POST", "/v1/chat/completions")
    seconds: set[int] = set()
    while len(seconds) < 3:  # across two turns of the second (the clock formats each second once)
        before = datetime.now(UTC)
        written = record.line()
        after = datetime.now(UTC)
        stamp = re.search(r'"time":"([^"]+)"', written)
        assert stamp is not None
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", stamp.group(1))
        at = datetime.fromisoformat(stamp.group(1))
        assert before - timedelta(milliseconds=1) < at <= after
        seconds.add(at.second)
