"""azure_sim/json_schema.py: an instance of any schema a client sends, found without an exception and of a bounded
size, whatever the schema: the simulator answers tool calls and structured outputs with one."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azure_sim.json_schema import MAX_DEPTH, instance_of

# Schemas that always come back to themselves: no finite instance follows them to the end.
SELF_REFERRING: list[tuple[dict[str, Any], type]] = [
    ({"type": None, "$ref": "#", "allOf": []}, str),  # found by tests/test_model_shapes.py's fuzzing
    ({"anyOf": [{"$ref": "#"}]}, str),
    ({"oneOf": [{"$ref": "#"}]}, str),
    ({"allOf": [{"$ref": "#"}]}, str),
    ({"type": "array", "items": {"$ref": "#"}, "minItems": 1}, list),
    ({"type": "array", "prefixItems": [{"$ref": "#"}, {"$ref": "#"}]}, list),
    ({"$defs": {"x": {"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}}}, "$ref": "#/$defs/x"}, dict),
]
# Schemas whose every level must hold many values: followed naively, their instance doubles (or grows sixteenfold)
# with every level of MAX_DEPTH.
WIDENING: list[dict[str, Any]] = [
    {"type": "object", "properties": {"a": {"$ref": "#"}, "b": {"$ref": "#"}}},
    {"type": "array", "items": {"$ref": "#"}, "minItems": 16},
    {"type": "array", "prefixItems": [{"$ref": "#"}] * 8},
]
# Far more than any instance of these holds at MAX_VALUES values, far less than 2**MAX_DEPTH.
BOUND_BYTES = 256 * 1024


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@pytest.mark.parametrize(("schema", "kind"), SELF_REFERRING)
def test_a_schema_that_comes_back_to_itself_gets_a_value_of_its_type(schema: dict[str, Any], kind: type) -> None:
    value = instance_of(schema)
    assert isinstance(value, kind)
    assert _depth(value) <= MAX_DEPTH + 1


@pytest.mark.parametrize("schema", WIDENING)
def test_a_schema_that_widens_at_every_level_gets_a_bounded_value(schema: dict[str, Any]) -> None:
    assert len(orjson.dumps(instance_of(schema))) < BOUND_BYTES


def test_what_a_finite_schema_asks_for_is_still_there() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 3},
            "tags": {"type": "array", "items": {"type": "integer", "minimum": 2}, "minItems": 2},
            "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]},
        },
    }
    value = instance_of(schema)
    assert value["name"] == "name" and value["tags"] == [2, 2]
    assert _depth(value) <= MAX_DEPTH + 1  # the recursion through `next` ends in null


_KEYS = ("type", "properties", "items", "prefixItems", "anyOf", "oneOf", "allOf", "$ref", "$defs", "minItems", "x")
_schemas = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 20) | st.sampled_from(("object", "array", "string", "#", "#/$defs/x")),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=5),
    max_leaves=24,
)


@settings(max_examples=400, deadline=None)
@given(schema=_schemas)
def test_any_schema_gets_a_bounded_value_without_an_exception(schema: Any) -> None:
    assert len(orjson.dumps(instance_of(schema))) < BOUND_BYTES
