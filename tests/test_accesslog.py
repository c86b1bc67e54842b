"""The access record's own parts (core/accesslog.py): its id and its time. Its line as a whole is checked
through the gateway (tests/test_relay.py, tests/test_proxy.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import orjson

from core.accesslog import AccessRecord, new_request_id
from core.errors import ECHO_LIMIT


def record_of(request_id: str, method: str, path: str) -> AccessRecord:
    return AccessRecord(request_id=request_id, method=method, path=path, stream=False, status=0)


def test_request_ids_are_128_random_bits_in_hex() -> None:
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)
    # Every hex digit varies: no fixed prefix or counter.
    assert all(len({request_id[i] for request_id in ids}) == 16 for i in range(32))


def test_the_time_is_when_the_line_is_written_in_utc_to_the_millisecond() -> None:
    record = record_of(new_request_id(), "POST", "/v1/chat/completions")
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


def test_the_line_has_every_field_in_the_records_order_and_leaves_out_none() -> None:
    logged = AccessRecord.__struct_fields__
    assert logged[:4] == ("request_id", "time", "method", "path")
    record = record_of("id", "POST", "/v1/chat/completions")
    for index, name in enumerate(logged[4:], start=1):  # request_id, method and path are set; time is the line's
        setattr(record, name, f"value-{index}")
    line = orjson.loads(record.line())
    assert list(line) == list(logged)
    assert all(line[name] == f"value-{index}" for index, name in enumerate(logged[4:], start=1))
    bare = orjson.loads(record_of("id", "GET", "/v1/models").line())
    assert list(bare) == ["request_id", "time", "method", "path", "stream", "status"]  # None is left out


def test_client_text_in_the_line_is_bounded() -> None:
    long = "m" * (ECHO_LIMIT + 50)
    record = record_of("id", long, "/" + long)
    record.operation, record.model, record.response_model = long, long, long
    line = orjson.loads(record.line())
    for name in ("method", "path", "operation", "model", "response_model"):
        assert len(line[name]) == ECHO_LIMIT + 3 and line[name].endswith("...")
    short = orjson.loads(record_of("id", "m" * ECHO_LIMIT, "/").line())
    assert short["method"] == "m" * ECHO_LIMIT  # at the limit: kept whole
