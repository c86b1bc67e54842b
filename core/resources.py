"""Resource-scoped APIs: assistants, threads (messages, runs, steps), vector stores,
files, batches and responses.

There is no deployment in these URLs. The group that serves a call is, in order:
the group holding an object the call names (in the path, or referenced from the
body: an assistant for a new run, a file for a batch, a previous response), the
group serving the body's `model`, a group named by the `x-gateway-group` header,
else the primary (first) assistants group. Lists aggregate across groups.

The Responses API is a model call like chat: any group serving the model serves it
(assistants or not), and a pool's id fails over between its members' groups.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from core import resource_paths
from core.accesslog import AccessRecord
from core.answer import Deadlines, Relaying, client_response
from core.auth import Caller
from core.config.model import Pool, PoolMember, ResourceBackend
from core.errors import GatewayError, model_not_found, truncated, upstream_bad_response
from core.gateway import Gateway, State
from core.inbound import forwarded_request_headers, parse_json_object, read_body
from core.isolation import check_batch_input, check_resources_allowed, check_run_model, is_restricted
from core.proxy import upstream_headers
from core.relay import JSON, DisconnectWatch, check_status, error_response, json_object, within
from core.resource_paths import ResourcePath
from core.translation.objects import ObjectStreamTransform, object_ids, rewrite_models
from core.transport import UpstreamResponse
from core.uploads import Upload, read_upload
from core.upstream import failover

LISTED = frozenset({"assistants", "vector_stores", "files", "batches"})  # GET /v1/{family} aggregates
GROUP_HINT = "x-gateway-group"
_DEFAULT_LIMIT, _MAX_LIMIT = 20, 100
# Body fields naming one object, and the family it belongs to.
_ID_FIELDS = (("assistants", "assistant_id"), ("responses", "previous_response_id"), ("files", "input_file_id"))


class ResourceCall:
    """One resource-scoped request, authorised and parsed."""

    def __init__(
        self, request: Request, gateway: Gateway, state: State, caller: Caller, record: AccessRecord, path: ResourcePath
    ) -> None:
        self.request = request
        self.gateway = gateway
        self.config = state.config  # the snapshot this request started with, to its end
        self.caller = caller
        self.record = record
        # Responses go to any group serving the model; the other families to assistants groups.
        self.resources = self.config.responses if path.family == "responses" else self.config.resources
        self.path = path
        self.family = path.family
        self.method = request.method
        self.client_headers = forwarded_request_headers(request, self.config.settings.forward_headers)
        self.body: bytes | Upload | None = None
        self.payload: dict[str, Any] | None = None
        self.bearer: str | None = None  # the Entra ID token, when some group needs one

    @property
    def query(self) -> list[tuple[str, str]]:
        """The client's query parameters, less any api-version (the group's is added)."""
        return [(k, v) for k, v in self.request.query_params.multi_items() if k != "api-version"]

    def headers_for(self, resource: ResourceBackend) -> list[tuple[str, str]]:
        headers = upstream_headers(resource, self.caller, self.client_headers, self.record.request_id, self.bearer)
        if isinstance(self.body, Upload):
            headers += self.body.headers()
        elif self.body is not None:
            headers.append(("content-type", JSON))
        return headers

    async def probe(self, resource: ResourceBackend, path: str) -> int:
        """The status of a GET on `path` ("{family}/{id}") in `resource` (where does this object live?).
        Every id the locator is given was checked to be a plain token, so splitting is exact."""
        headers = upstream_headers(resource, self.caller, [], self.record.request_id, self.bearer)
        url = resource.url(tuple(path.split("/")))
        upstream = await self.gateway.transport.send("GET", url, headers, None)
        upstream.release()
        return upstream.status


async def handle(request: Request, gateway: Gateway, state: State, caller: Caller, record: AccessRecord) -> Response:
    path = resource_paths.parse(request.method, _raw_path(request), request.scope["path"])
    call = ResourceCall(request, gateway, state, caller, record, path)
    if not call.resources:
        if path.family == "responses":
            raise GatewayError(
                404,
                "No group on this gateway can serve the Responses API (serverless groups do not).",
                code="not_configured",
            )
        raise GatewayError(
            404,
            "The assistants, files and batches APIs are not enabled on this gateway: "
            "set `assistants: true` on the azureOpenAI endpoint and on at least one group.",
            code="not_configured",
        )
    check_resources_allowed(caller)
    for cursor in ("after", "before"):  # list cursors are ids the locator looks up
        value = request.query_params.get(cursor)
        if value and not resource_paths.is_valid_id(value):
            raise resource_paths.invalid_id(cursor)
    if any(resource.auth == "entra" for resource in call.resources):
        call.bearer = await gateway.tokens.token()
    settings = call.config.settings
    if call.method == "POST" and path.shape == "files":
        call.body = await read_upload(
            request, settings.max_body_bytes, settings.total_timeout, fields=("purpose",), file_part="file"
        )
    elif call.method == "POST":
        raw = await read_body(request, settings.max_body_bytes, settings.total_timeout)
        call.payload = parse_json_object(raw) if raw.strip() else {}
        call.body = raw
        _check_body(call, call.payload)
        record.stream = call.payload.get("stream") is True
    if call.method == "GET" and path.shape in LISTED:
        return await _aggregate_list(call)
    pool = _pool_for(call)
    if pool is not None:
        return await _forward_pooled(call, *pool)
    resource = await _target(call)
    record.group = resource.group
    if is_restricted(caller):
        await check_run_model(call, resource)
        if call.method == "POST" and path.shape == "batches":
            await check_batch_input(call, resource)
    if call.payload is not None and isinstance(call.payload.get("model"), str):
        call.body = _with_deployment(call, resource)
    return await _forward(call, resource)


def _raw_path(request: Request) -> bytes:
    """The path as sent, still percent-encoded. ASGI servers may omit it: then the decoded
    path, encoded again, whose segments are checked the same way."""
    raw: bytes | None = request.scope.get("raw_path")
    return raw if raw is not None else quote(request.scope["path"]).encode()


def _check_body(call: ResourceCall, payload: dict[str, Any]) -> None:
    """The fields the gateway reads must have their documented types (a 400 naming the
    field, never a 500), ids must be plain tokens, and a model must be one the key may use."""
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
    if not resource_paths.is_valid_id(value):
        raise resource_paths.invalid_id(param)


async def _target(call: ResourceCall) -> ResourceBackend:
    locator = call.gateway.locator
    payload = call.payload or {}
    if call.path.object_id is not None:
        return await locator.locate(call.family, call.path.object_id, call.resources, call.probe)
    for family, field in _ID_FIELDS:
        if isinstance(payload.get(field), str):
            return await locator.locate(family, payload[field], call.resources, call.probe)
    referenced = _referenced_ids(payload)
    if referenced:
        family, object_id = referenced[0]
        return await locator.locate(family, object_id, call.resources, call.probe)
    model = payload.get("model")
    if isinstance(model, str):
        return _resource_for_model(call, model)
    hint = call.request.headers.get(GROUP_HINT)
    if hint:
        for resource in call.resources:
            if resource.group == hint:
                return resource
        raise GatewayError(
            400, f"No assistants group named `{truncated(hint)}`.", param=GROUP_HINT, code="unknown_group"
        )
    return call.resources[0]


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
    for resource in call.resources:
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


def _deployment_in(call: ResourceCall, resource: ResourceBackend, model: str) -> str | None:
    """The deployment serving `model` in `resource`: its own, or for a pool id, the member's in that group."""
    deployment = resource.deployments.get(model)
    route = call.config.routes.get(model)
    if deployment is not None or route is None or route.pool is None:
        return deployment
    members = (member.model for member in route.pool.members if member.backend.group == resource.group)
    return next((resource.deployments[m] for m in members if m in resource.deployments), None)


def _with_deployment(call: ResourceCall, resource: ResourceBackend) -> bytes:
    """The body with its public model id replaced by the resource's deployment name."""
    assert call.payload is not None
    model = call.payload["model"]  # checked against the caller's key in _check_body
    deployment = _deployment_in(call, resource, model)
    if deployment is None:
        raise GatewayError(
            400,
            f"The model `{truncated(model)}` is not deployed in group `{resource.group}`, where this object lives.",
            param="model",
            code="model_not_available",
        )
    return orjson.dumps({**call.payload, "model": deployment})


async def _forward(call: ResourceCall, resource: ResourceBackend) -> Response:
    record = call.record
    settings = call.config.settings
    body = call.body.chunks() if isinstance(call.body, Upload) else call.body
    url = resource.url(call.path.segments, urlencode(call.query))
    watch = DisconnectWatch(call.request, enabled=not isinstance(call.body, Upload))
    deadlines = Deadlines.starting_now(settings)
    try:
        started = time.perf_counter()
        upstream = await within(
            deadlines.answer_by,
            watch.run(call.gateway.transport.send(call.method, url, call.headers_for(resource), body)),
            record,
        )
        relaying = _relaying(call, resource, _public_models(call, resource))
        return await client_response(upstream, resource.group, record, watch, deadlines, settings, relaying, started)
    finally:
        watch.close()


def _public_models(call: ResourceCall, resource: ResourceBackend) -> dict[str, str]:
    """Deployment -> public id for answers; the deployment this call names answers to the id the client sent
    (several ids, a pool's among them, may share one deployment)."""
    model = (call.payload or {}).get("model")
    if not isinstance(model, str):
        return resource.public_models
    deployment = _deployment_in(call, resource, model)
    return resource.public_models if deployment is None else {**resource.public_models, deployment: model}


def _relaying(call: ResourceCall, resource: ResourceBackend, public_models: dict[str, str]) -> Relaying:
    """`public_models`: deployment -> the model id the client sees in answers."""
    remember = partial(call.gateway.locator.remember, group=resource.group)
    return Relaying(
        events=partial(ObjectStreamTransform, public_models, remember),
        translate=partial(_translated, resource=resource, public_models=public_models, call=call),
        as_bytes=call.path.shape == "files/{id}/content",  # file content: bytes as they come, whatever its type
    )


def _pool_for(call: ResourceCall) -> tuple[str, Pool] | None:
    """A new response for a pool's id, continuing no earlier one: the pool picks the group."""
    payload = call.payload or {}
    model = payload.get("model")
    if call.path.shape != "responses" or not isinstance(model, str) or "previous_response_id" in payload:
        return None
    route = call.config.routes.get(model)
    return None if route is None or route.pool is None else (model, route.pool)


async def _forward_pooled(call: ResourceCall, pool_id: str, pool: Pool) -> Response:
    """POST /v1/responses for a pool: each attempt goes to a member's group with that member's deployment."""
    assert call.payload is not None
    by_group = {resource.group: resource for resource in call.resources}
    if any(member.backend.group not in by_group for member in pool.members):
        raise GatewayError(
            400,
            f"The model `{truncated(pool_id)}` is not enabled for the Responses API on this gateway.",
            param="model",
            code="model_not_available",
        )
    record, settings, payload = call.record, call.config.settings, call.payload
    url_query = urlencode(call.query)

    async def attempt(member: PoolMember) -> UpstreamResponse:
        resource = by_group[member.backend.group]
        body = orjson.dumps({**payload, "model": resource.deployments[member.model]})
        url = resource.url(call.path.segments, url_query)
        return await call.gateway.transport.send("POST", url, call.headers_for(resource), body)

    watch = DisconnectWatch(call.request)
    deadlines = Deadlines.starting_now(settings)
    try:
        started = time.perf_counter()
        sending = failover.send(call.gateway.upstreams, pool_id, pool, attempt, record)
        member, upstream = await within(deadlines.answer_by, watch.run(sending), record)
        assert isinstance(upstream, UpstreamResponse)
        resource = by_group[member.backend.group]
        public_models = {**resource.public_models, resource.deployments[member.model]: pool_id}
        relaying = _relaying(call, resource, public_models)
        return await client_response(upstream, resource.group, record, watch, deadlines, settings, relaying, started)
    finally:
        watch.close()


def _translated(body: bytes, resource: ResourceBackend, public_models: dict[str, str], call: ResourceCall) -> bytes:
    if not body:  # e.g. a 204
        return body
    answer = json_object(body, resource.group)
    call.gateway.locator.remember(object_ids(answer), resource.group)
    return orjson.dumps(answer) if rewrite_models(answer, public_models) else body


async def _aggregate_list(call: ResourceCall) -> Response:
    """One list over every assistants group, in group order: a page is filled from the
    group holding the `after` cursor onwards, so cursors page through all groups."""
    params = dict(call.query)
    limit = _limit(params.get("limit"))
    resources = list(call.resources)
    start = 0
    if params.get("after"):
        owner = await call.gateway.locator.locate(call.family, params["after"], resources, call.probe)
        start = resources.index(owner)
    if params.get("before"):  # paging backwards stays within the cursor's group
        owner = await call.gateway.locator.locate(call.family, params["before"], resources, call.probe)
        resources, start = [owner], 0
    data: list[Any] = []
    has_more = False
    answer_by = Deadlines.starting_now(call.config.settings).answer_by
    for index in range(start, len(resources)):
        resource = resources[index]
        call.record.group = resource.group
        query = {**params, "limit": str(limit - len(data))}
        if index != start:
            query.pop("after", None)
        page = await within(answer_by, _page(call, resource, query), call.record)
        if isinstance(page, Response):  # an upstream error
            return page
        items = page.get("data") or []
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise upstream_bad_response(resource.group, "answered with a list whose data is not a list of objects")
        rewrite_models(items, resource.public_models)
        call.gateway.locator.remember(object_ids(items), resource.group)
        data += items
        if page.get("has_more"):
            has_more = True
            break
        if len(data) >= limit:
            has_more = index < len(resources) - 1
            break
    answer = {
        "object": "list",
        "data": data,
        "first_id": data[0].get("id") if data else None,
        "last_id": data[-1].get("id") if data else None,
        "has_more": has_more,
    }
    return Response(orjson.dumps(answer), media_type=JSON)  # the endpoint adds x-request-id to every answer


async def _page(call: ResourceCall, resource: ResourceBackend, query: dict[str, str]) -> dict[str, Any] | Response:
    """One group's page of a list, or its error as the client's response."""
    url = resource.url((call.family,), urlencode(query))
    upstream = await call.gateway.transport.send("GET", url, call.headers_for(resource), None)
    check_status(upstream, resource.group)
    if upstream.status >= 400:
        return error_response(upstream, await upstream.read_error(), call.record.request_id)
    return json_object(await upstream.read(call.config.settings.max_response_bytes), resource.group)


def _limit(value: str | None) -> int:
    if value is None:
        return _DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= _MAX_LIMIT:
        raise GatewayError(
            400, f"limit must be an integer from 1 to {_MAX_LIMIT}.", param="limit", code="invalid_limit"
        )
    return int(value)
