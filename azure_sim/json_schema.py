"""An instance of a JSON Schema, made up the way a model would fill it in: what structured outputs, JSON mode and
tool arguments answer with.

Covers what tool parameters and the SDKs' generated schemas use (types, required and optional properties, enums,
const, nesting, arrays and their bounds, anyOf / oneOf / allOf, ``$defs`` / ``definitions`` ``$ref``s, string
formats, numeric bounds). Anything else (a pattern, a malformed schema) still gets a value of the right type, never
an exception: the schema comes from the client. So does a schema that always comes back to itself (an ``anyOf`` of
``{"$ref": "#"}``), with a value bounded in depth and size however the schema nests and widens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

# Below SHALLOW, arrays get only the items they must have and anyOf takes null where it may: that is how a
# recursive schema ($ref to an ancestor) ends. MAX_DEPTH stops a schema that allows neither (an anyOf, allOf or
# minItems that always comes back to itself), and MAX_VALUES one whose every level must hold many.
SHALLOW = 3
MAX_DEPTH = 32
MAX_VALUES = 1000
MAX_ITEMS = 16  # a client's minItems / minLength never makes the answer huge
MAX_LENGTH = 4096
FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
TYPE_ORDER = ("object", "array", "string", "integer", "number", "boolean", "null")


class _Walk:
    """One instance in the making: the schema's root (what ``$ref``s point into), and how many more values the
    instance may hold."""

    __slots__ = ("root", "left")

    def __init__(self, root: Any) -> None:
        self.root = root
        self.left = MAX_VALUES


def instance_of(schema: Any) -> Any:
    """A value valid for ``schema`` (for the schemas it covers; see the module docstring)."""
    return _value(schema, _Walk(schema), 0, "value")


def _value(schema: Any, walk: _Walk, depth: int, name: str) -> Any:
    if not isinstance(schema, Mapping):
        return None if schema is False else {}
    schema = _resolved(schema, walk.root)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    walk.left -= 1
    if depth >= MAX_DEPTH or walk.left < 0:
        return _leaf(schema, name)
    for key in ("anyOf", "oneOf"):
        listed = schema.get(key)
        choices = [c for c in listed if isinstance(c, Mapping)] if isinstance(listed, list) else []
        if choices:
            return _value(_choice(choices, walk, depth), walk, depth + 1, name)
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            if isinstance(part, Mapping):
                merged.update(_resolved(part, walk.root))
        return _value({**merged, **{k: v for k, v in schema.items() if k != "allOf"}}, walk, depth + 1, name)
    kind = _type(schema)
    if kind == "object":
        return _object(schema, walk, depth, name)
    if kind == "array":
        return _array(schema, walk, depth, name)
    return _leaf(schema, name)


def _leaf(schema: Mapping[str, Any], name: str) -> Any:
    """A value of the schema's type that holds no other: any scalar, and an empty object or array where the schema
    would nest deeper or grow larger than any answer does (a schema that always comes back to itself has no finite
    instance to find)."""
    kind = _type(schema)
    if kind in ("object", "array"):
        return {} if kind == "object" else []
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    return None if kind == "null" else _string(schema, name)


def _resolved(schema: Mapping[str, Any], root: Any) -> Mapping[str, Any]:
    """Follow local ``$ref``s (``#/$defs/X``, ``#/definitions/X``, ``#``); an unknown one resolves to ``{}``."""
    for _ in range(MAX_DEPTH):
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return schema
        target: Any = root
        for part in ref.removeprefix("#").strip("/").split("/") if ref != "#" else ():
            target = target.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(target, Mapping) else None
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **rest} if isinstance(target, Mapping) else rest
    return schema


def _choice(choices: list[Mapping[str, Any]], walk: _Walk, depth: int) -> Mapping[str, Any]:
    """The first alternative that is not null; deep in a recursive schema, null when it is allowed (ends the
    recursion)."""
    non_null = [c for c in choices if _type(_resolved(c, walk.root)) != "null"]
    if depth >= SHALLOW and len(non_null) < len(choices):
        return {"type": "null"}
    return (non_null or choices)[0]


def _type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if isinstance(k, str)]
        kind = next((k for k in kinds if k != "null"), kinds[0] if kinds else None)
    if isinstance(kind, str) and kind in TYPE_ORDER:
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _object(schema: Mapping[str, Any], walk: _Walk, depth: int, name: str) -> dict[str, Any]:
    """Every declared property (strict schemas require them all), each named after itself where it is a string."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    return {str(key): _value(sub, walk, depth + 1, str(key)) for key, sub in properties.items()}


def _array(schema: Mapping[str, Any], walk: _Walk, depth: int, name: str) -> list[Any]:
    prefix = schema.get("prefixItems")
    items = [_value(sub, walk, depth + 1, name) for sub in prefix] if isinstance(prefix, list) else []
    low = schema.get("minItems")
    wanted = max(low if _is_int(low) else 0, len(items), 1 if depth < SHALLOW else 0)
    high = schema.get("maxItems")
    if _is_int(high):
        wanted = min(wanted, max(high, 0))
    wanted = min(wanted, MAX_ITEMS)
    while len(items) < wanted:
        items.append(_value(schema.get("items", {}), walk, depth + 1, name))
    return items[:wanted]


def _number(schema: Mapping[str, Any], integer: bool) -> int | float:
    """Zero, moved into the bounds when they exclude it."""
    low = _bound(schema, "minimum", "exclusiveMinimum", integer, 1)
    high = _bound(schema, "maximum", "exclusiveMaximum", integer, -1)
    value: int | float = 0
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high
    return int(value) if integer else float(value)


def _bound(schema: Mapping[str, Any], inclusive: str, exclusive: str, integer: bool, side: int) -> float | None:
    bound = schema.get(inclusive)
    if _is_number(bound):
        return (bound // 1 + (1 if bound % 1 and side > 0 else 0)) if integer else bound
    bound = schema.get(exclusive)
    if _is_number(bound):
        step = 1 if integer else 0.5
        return (bound // 1 if integer else bound) + side * step
    return None


def _string(schema: Mapping[str, Any], name: str) -> str:
    kind = schema.get("format")
    value = FORMATS.get(kind, name) if isinstance(kind, str) else name
    low, high = schema.get("minLength"), schema.get("maxLength")
    if _is_int(low) and len(value) < low:
        value = value.ljust(min(low, MAX_LENGTH), "x")
    if _is_int(high) and len(value) > high:
        value = value[: max(high, 0)]
    return value


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
