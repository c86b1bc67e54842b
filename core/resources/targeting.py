"""Which group serves a resource-scoped call. In order: the group holding an object the call names (in
the path, or referenced from the body: an assistant for a new run, a file for a batch, a previous
response), the group serving the body's `model`, a group named by the `x-gateway-group` header, else the
primary (first) assistants group. A new response for a pool's id is the pool's to place.

The body fields read here are checked first: the documented type (a 400 naming the field, never a 500),
ids that are plain tokens, and a model the caller key may use.
"""

from __future__ import annotations

from typing import Any

from core.config.model import Pool, ResourceBackend
from core.errors import GatewayError, model_not_found, truncated
from core.resources import paths
from core.resources.call import ResourceCall

GROUP_HINT = "x-gateway-group"
# Body fields naming one object, and the family it belongs to.
_ID_FIELDS = (("assistants", "assistant_id"), ("responses", "previous_response_id"), ("files", "input_file_id"))


def check_body(call: ResourceCall, payload: dict[str, Any]) -> None:
    model = payload.get("model")
    if model is not None:
        if not isinstance(model, str):
            raise GatewayError(400, "`model` must be a string.", param="model", code="invalid_type")
        call.record.model = model
        call.caller.check_model(model)
    for _, field in _ID_FIELDS:
        _check_id(payload.get(field), field)
    _referenced_ids(payload)


def _check_id(value: Any, param: str) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise GatewayError(400, f"`{param}` must be a string.", param=param, code="invalid_type")
    if not paths.is_valid_id(value):
        raise paths.invalid_id(param)


async def target(call: ResourceCall) -> ResourceBackend:
    payload = call.payload or {}
    if call.path.object_id is not None:
        return await call.locate(call.family, call.path.object_id)
    for family, field in _ID_FIELDS:
        if isinstance(payload.get(field), str):
            return await call.locate(family, payload[field])
    referenced = _referenced_ids(payload)
    if referenced:
        return await call.locate(*referenced[0])
    model = payload.get("model")
    if isinstance(model, str):
        return _resource_for_model(call, model)
    hint = call.exchange.request.headers.get(GROUP_HINT)
    if hint:
        for resource in call.candidates:
            if resource.group == hint:
                return resource
        raise GatewayError(
            400, f"No assistants group named `{truncated(hint)}`.", param=GROUP_HINT, code="unknown_group"
        )
    return call.candidates[0]


def _referenced_ids(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """Files and vector stores a new thread or vector store is built from; a 400 naming
    the field when one is not a list of ids."""
    found = [("files", i) for i in _id_list(payload.get("file_ids"), "file_ids")]
    tool_resources = payload.get("tool_resources")
    if tool_resources is None:
        return found
    if not isinstance(tool_resources, dict):
        raise GatewayError(400, "`tool_resources` must be an object.", param="tool_resources", code="invalid_type")
    for name, resource in tool_resources.items():
        where = f"tool_resources.{name}"
        if resource is None:
            continue
        if not isinstance(resource, dict):
            raise GatewayError(400, f"`{where}` must be an object.", param=where, code="invalid_type")
        found += [("vector_stores", i) for i in _id_list(resource.get("vector_store_ids"), f"{where}.vector_store_ids")]
        found += [("files", i) for i in _id_list(resource.get("file_ids"), f"{where}.file_ids")]
    return found


def _id_list(value: Any, param: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise GatewayError(400, f"`{param}` must be an array of id strings.", param=param, code="invalid_type")
    for item in value:
        _check_id(item, param)
    return value


def _resource_for_model(call: ResourceCall, model: str) -> ResourceBackend:
    for resource in call.candidates:
        if model in resource.deployments:
            return resource
    if model in call.config.routes:
        what = "the Responses API" if call.family == "responses" else "assistants"
        raise GatewayError(
            400,
            f"The model `{truncated(model)}` is not enabled for {what} on this gateway.",
            param="model",
            code="model_not_available",
        )
    raise model_not_found(model)


def deployment_in(call: ResourceCall, resource: ResourceBackend, model: str) -> str | None:
    """The deployment serving `model` in `resource`: its own, or for a pool id, the member's in that group."""
    deployment = resource.deployments.get(model)
    route = call.config.routes.get(model)
    if deployment is not None or route is None or route.pool is None:
        return deployment
    members = (member.model for member in route.pool.members if member.backend.group == resource.group)
    return next((resource.deployments[m] for m in members if m in resource.deployments), None)


def pool_for(call: ResourceCall) -> tuple[str, Pool] | None:
    """A new response for a pool's id, continuing no earlier one: the pool picks the group."""
    payload = call.payload or {}
    model = payload.get("model")
    if call.path.shape != "responses" or not isinstance(model, str) or "previous_response_id" in payload:
        return None
    route = call.config.routes.get(model)
    return None if route is None or route.pool is None else (model, route.pool)
