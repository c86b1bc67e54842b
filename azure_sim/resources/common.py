"""The helpers every resource family shares: ids, lookups, OpenAI's cursor pages, common fields (the objects
themselves are in ``azure_sim.store``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiohttp import web

from ..routing import Call
from ..wire import ERR_DEPLOYMENT, Reject, invalid, missing, no_such

ACTIVE_RUN_STATES = frozenset({"queued", "in_progress", "requires_action", "cancelling"})
CHUNKING_STRATEGY = {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}


def unix_now() -> int:
    return int(time.time())


def random_id(prefix: str) -> str:
    """Random (not a counter): ids stay unique across simulator instances and processes, as across Azure regions."""
    return prefix + os.urandom(12).hex()


def lookup(table: Mapping[str, dict[str, Any]], kind: str, object_id: str) -> dict[str, Any]:
    found = table.get(object_id)
    if found is None:
        raise no_such(kind, object_id)
    return found


def by_creation(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """By created_at; the sort is stable, so ties keep creation order (the dicts' insertion order)."""
    return sorted(objects, key=lambda o: o["created_at"])


def list_page(request: web.Request, ascending: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """OpenAI's cursor list: ``limit`` (1-100, default 20), ``order`` (default desc), ``after`` / ``before`` ids."""
    query = request.query
    raw_limit = query.get("limit", "20")
    limit = int(raw_limit) if raw_limit.isdigit() else 0
    if not 1 <= limit <= 100:
        raise invalid("Invalid 'limit': integer below minimum value or above maximum value (1-100).", "limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid("Invalid 'order': must be one of 'asc', 'desc'.", "order")
    items = list(ascending) if order == "asc" else list(reversed(ascending))
    after, before = query.get("after"), query.get("before")
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    if before:
        ids = [item["id"] for item in items]
        items = items[: ids.index(before)] if before in ids else []
        page = items[-limit:]  # the page just before the cursor
    else:
        page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


def metadata_field(body: Mapping[str, Any], default: Any = None) -> dict[str, Any]:
    metadata = body.get("metadata")
    if metadata is None:
        return {} if default is None else default
    if not isinstance(metadata, dict):
        raise invalid("Invalid type for 'metadata': expected an object.", "metadata")
    return metadata


def required_string(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise missing(name)
    return value


def string_list(body: Mapping[str, Any], name: str, required: bool = False) -> list[str]:
    value = body.get(name)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or (required and not value):
        raise invalid(f"Invalid '{name}': expected a non-empty array of strings.", name)
    return value


def check_deployment(call: Call, model: str) -> None:
    """A body ``model`` names a deployment: unknown ones fail the way Azure fails them (400 DeploymentNotFound)."""
    if call.deployments is not None and model not in call.deployments:
        raise Reject(400, ERR_DEPLOYMENT)


def deleted_answer(object_id: str, object_name: str) -> dict[str, Any]:
    return {"id": object_id, "object": object_name, "deleted": True}


def apply_fields(target: dict[str, Any], body: Mapping[str, Any], names: Iterable[str]) -> None:
    """Copy the fields the body sets (null leaves a field alone), checking the few that have a shape."""
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if name == "tools" and not (isinstance(value, list) and all(isinstance(t, dict) for t in value)):
            raise invalid("Invalid 'tools': expected an array of objects.", "tools")
        if name in ("metadata", "tool_resources") and not isinstance(value, dict):
            raise invalid(f"Invalid type for '{name}': expected an object.", name)
        target[name] = value
