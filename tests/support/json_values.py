"""Parsed JSON checked to be the shape a test expects, so that the rest of the test is typed against it."""

from __future__ import annotations

from typing import Any


def json_object(value: object) -> dict[str, Any]:
    """`value` (parsed JSON: `response.json()`, `orjson.loads(...)`), which must be an object."""
    assert isinstance(value, dict), value
    return value
