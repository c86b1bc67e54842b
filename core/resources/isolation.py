"""What a caller key may reach through the resource-scoped APIs.

Azure shares assistants, threads, vector stores, files, batches and responses among
everyone who can reach the resource, so a key limited to some models gets these APIs
only with `resources: true`. Even then, what spends tokens must use a model the key
may use: a body's `model` is checked where it is read; here, the models a call would
use without naming one (a run's assistant, a run being continued, a batch's input
lines) are read from the upstream and checked before the call is sent.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from core.auth import Caller
from core.config.model import ResourceBackend
from core.errors import GatewayError, model_not_found
from core.failures import client_error
from core.resources.paths import ResourcePath
from core.upstream.transport import BodyTooLarge, TransportError, UpstreamResponse


class Lookup(Protocol):
    """Reads what a call would use, outside the call itself (core/resources/call.py's ResourceCall)."""

    @property
    def max_bytes(self) -> int: ...

    async def locate(self, family: str, object_id: str) -> ResourceBackend: ...

    async def fetch(self, resource: ResourceBackend, segments: tuple[str, ...]) -> UpstreamResponse: ...


def check_resources_allowed(caller: Caller) -> None:
    if caller.key is not None and not caller.key.resource_apis:
        raise GatewayError(
            403,
            "This API key may not use the assistants, threads, vector stores, files, batches and responses APIs, "
            "whose objects every caller of the Azure resource shares: set `resources: true` on its "
            "gateway.apiKeys entry to allow them.",
            type="permission_error",
            code="resources_not_allowed",
        )


def is_restricted(caller: Caller) -> bool:
    """A key limited to some models: what its calls spend tokens on must be checked."""
    return caller.key is not None and caller.key.models is not None


async def check_run_model(
    caller: Caller, path: ResourcePath, payload: dict[str, Any], resource: ResourceBackend, lookup: Lookup
) -> None:
    """A run created without a `model` uses its assistant's; a run continued with tool
    outputs keeps the model it was started with."""
    shape = path.shape
    if shape in ("threads/{id}/runs", "threads/runs") and payload.get("model") is None:
        assistant_id = payload.get("assistant_id")
        if assistant_id is None:
            return  # Azure refuses a run without an assistant
        holder = await lookup.locate("assistants", assistant_id)
        assistant = await _stored_object(lookup, holder, ("assistants", assistant_id), "assistant_id")
        _check_deployment(caller, holder, assistant.get("model"))
    elif shape == "threads/{id}/runs/{id}/submit_tool_outputs":
        run = await _stored_object(lookup, resource, path.segments[:4], None)
        _check_deployment(caller, resource, run.get("model"))


async def check_batch_input(caller: Caller, payload: dict[str, Any], resource: ResourceBackend, lookup: Lookup) -> None:
    """Every line of a batch's input file names a deployment (Azure requires it); each must
    serve a model the key may use. The file is read whole, within maxBodyBytes."""
    file_id = payload.get("input_file_id")
    if file_id is None:
        return  # Azure refuses a batch without an input file
    content = await _read(lookup, resource, ("files", file_id, "content"), file_id, "input_file_id")
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            request = orjson.loads(line)
        except orjson.JSONDecodeError:
            request = None
        body = request.get("body") if isinstance(request, dict) else None
        deployment = body.get("model") if isinstance(body, dict) else None
        if not isinstance(deployment, str):
            raise GatewayError(
                400,
                f"Line {number} of the batch input file has no `body.model`; this key may use only some models, "
                "so every line must name one of their deployments.",
                param="input_file_id",
                code="invalid_batch_input",
            )
        _check_deployment(caller, resource, deployment)


def _check_deployment(caller: Caller, resource: ResourceBackend, deployment: Any) -> None:
    """A deployment name as Azure stores it, mapped back to the public model id it serves
    in this group; one that serves no configured model is refused like a disallowed one."""
    if not isinstance(deployment, str):
        raise model_not_found(str(deployment))
    model = resource.public_models.get(deployment)
    if model is None:
        raise model_not_found(deployment)
    caller.check_model(model)


async def _stored_object(
    lookup: Lookup, resource: ResourceBackend, segments: tuple[str, ...], param: str | None
) -> dict[str, Any]:
    object_id = segments[-1]
    try:
        stored = orjson.loads(await _read(lookup, resource, segments, object_id, param))
    except orjson.JSONDecodeError:
        stored = None
    if not isinstance(stored, dict):
        raise _unreadable(object_id, "its answer is not a JSON object")
    return stored


async def _read(
    lookup: Lookup, resource: ResourceBackend, segments: tuple[str, ...], object_id: str, param: str | None
) -> bytes:
    """A GET on the upstream, read within maxBodyBytes."""
    try:
        upstream = await lookup.fetch(resource, segments)
    except TransportError as error:
        raise client_error(error, resource.group) from None
    try:
        if upstream.status in (400, 404):
            raise GatewayError(404, f"No object found with id `{object_id}`.", param=param, code="not_found")
        if upstream.status != 200:
            raise _unreadable(object_id, f"the upstream answered {upstream.status}")
        limit = lookup.max_bytes
        try:
            return await upstream.read(limit)
        except BodyTooLarge:
            raise GatewayError(
                400,
                f"`{object_id}` is larger than the gateway's limit of {limit} bytes, so the models it names "
                "cannot be checked for this key.",
                param=param,
                code="batch_input_too_large",
            ) from None
        except TransportError as error:
            raise client_error(error, resource.group) from None
    finally:
        upstream.release()  # a no-op once read; frees the connection after an early refusal


def _unreadable(object_id: str, why: str) -> GatewayError:
    return GatewayError(
        502,
        f"Could not read `{object_id}` to check which model this call would use: {why}.",
        type="api_error",
        code="upstream_unreachable",
    )
