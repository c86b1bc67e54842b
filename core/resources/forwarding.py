"""A resource-scoped call sent to the group that serves it, or for a new response to a pool's id, to
each member's group in turn: the public model id replaced by that group's deployment, and the answer's
deployment names mapped back (core/translation/objects.py)."""

from __future__ import annotations

from functools import partial
from urllib.parse import urlencode

import orjson
from starlette.responses import Response

from core.config.model import Pool, PoolMember, ResourceBackend
from core.errors import GatewayError, truncated
from core.exchange import UpstreamReply
from core.models.prices import Price
from core.resources.call import ResourceCall
from core.resources.targeting import deployment_in
from core.translation.objects import Counting, ObjectsTranslator
from core.uploads import Upload


async def forward(call: ResourceCall, resource: ResourceBackend) -> Response:
    model = (call.payload or {}).get("model")
    deployment = None
    if isinstance(model, str):  # checked against the caller's key when the body was read
        deployment = deployment_in(call, resource, model)
        if deployment is None:
            raise GatewayError(
                400,
                f"The model `{truncated(model)}` is not deployed in group `{resource.group}`, where this object lives.",
                param="model",
                code="model_not_available",
            )
    upload = call.body if isinstance(call.body, Upload) else None
    if isinstance(model, str) and deployment is not None:
        call.exchange.priced(_price(call, resource, model))

    async def attempt() -> UpstreamReply:
        body = upload.chunks() if upload is not None else _with_deployment(call, deployment)
        url = resource.url(call.path.segments, urlencode(call.query))
        translator = _translator(call, resource, deployment)
        return await call.exchange.attempt(
            call.method, url, call.headers_for(resource), body, resource.group, translator
        )

    reply = await call.exchange.send(attempt, streams_body=upload is not None)
    return await call.exchange.answer(reply)


async def forward_pooled(call: ResourceCall, pool_id: str, pool: Pool) -> Response:
    """POST /v1/responses for a pool: each attempt goes to a member's group with that member's deployment."""
    by_group = {resource.group: resource for resource in call.candidates}
    if any(member.backend.group not in by_group for member in pool.members):
        raise GatewayError(
            400,
            f"The model `{truncated(pool_id)}` is not enabled for the Responses API on this gateway.",
            param="model",
            code="model_not_available",
        )
    query = urlencode(call.query)
    route = call.exchange.state.config.routes.get(pool_id)
    call.exchange.priced(route.price if route is not None else None)  # what the call reserves of a cost limit

    async def attempt(member: PoolMember) -> UpstreamReply:
        call.exchange.priced(member.backend.price)
        resource = by_group[member.backend.group]
        deployment = resource.deployments[member.model]
        translator = _translator(call, resource, deployment)
        url = resource.url(call.path.segments, query)
        body = _with_deployment(call, deployment)
        return await call.exchange.attempt("POST", url, call.headers_for(resource), body, resource.group, translator)

    reply = await call.exchange.send_pooled(pool_id, pool, attempt, streams_body=False)
    return await call.exchange.answer(reply)


def _price(call: ResourceCall, resource: ResourceBackend, model: str) -> Price | None:
    """The price of `model` in the group serving the call; a call that names no model, or a run that uses its
    assistant's, is unpriced."""
    route = call.exchange.state.config.routes.get(model)
    for backend in route.backends if route is not None else ():
        if backend.group == resource.group:
            return backend.price
    return None


def _with_deployment(call: ResourceCall, deployment: str | None) -> bytes | None:
    """The JSON body with its public model id replaced by the group's deployment name."""
    if call.payload is None or deployment is None:
        return call.body if isinstance(call.body, bytes) else None
    return orjson.dumps({**call.payload, "model": deployment})


def _translator(call: ResourceCall, resource: ResourceBackend, deployment: str | None) -> ObjectsTranslator:
    """Answers name deployments: each goes back to its public id, and the deployment this call named
    answers to the id the client sent (several ids, a pool's among them, may share one deployment)."""
    public_models = resource.public_models
    model = (call.payload or {}).get("model")
    if deployment is not None and isinstance(model, str):
        public_models = {**public_models, deployment: model}
    gateway = call.exchange.gateway
    return ObjectsTranslator(
        resource.group,
        public_models,
        partial(gateway.locator.remember, group=resource.group),
        as_bytes=call.path.shape == "files/{id}/content",  # file content: bytes as they come, whatever its type
        counting=_counting(call),
    )


def _counting(call: ResourceCall) -> Counting:
    """What the call's answers count (core/translation/objects.py). A new response's stream cut short counts an
    estimate when usage is counted at all, as a chat stream does; not a background one, which goes on at Azure
    and counts when first read done."""
    exchange = call.exchange
    creates = call.method == "POST" and call.path.shape == "responses"
    payload = call.payload or {}
    prompt = None
    if (
        creates
        and payload.get("stream") is True
        and payload.get("background") is not True
        and isinstance(call.body, bytes)
        and exchange.gateway.counts_usage(exchange.state)
    ):
        prompt = call.body
    return Counting(exchange.gateway.counted, creates_response=creates, prompt=prompt)
