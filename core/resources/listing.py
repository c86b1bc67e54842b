"""A list (GET /v1/{assistants,vector_stores,files,batches}) over every assistants group, in group order:
a page is filled from the group holding the `after` cursor onwards, so cursors page through all groups."""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.responses import Response

from core.config.model import ResourceBackend
from core.errors import GatewayError, upstream_bad_response
from core.inbound import is_ascii_digits
from core.resources.call import ResourceCall
from core.translation.objects import ObjectsTranslator, object_ids, rewrite_models
from core.translation.translator import answer_object

LISTED = frozenset({"assistants", "vector_stores", "files", "batches"})
_DEFAULT_LIMIT, _MAX_LIMIT = 20, 100


async def aggregate(call: ResourceCall) -> Response:
    params = dict(call.query)
    limit = _limit(params.get("limit"))
    resources = list(call.candidates)
    start = 0
    if params.get("after"):
        owner = await call.locate(call.family, params["after"])
        start = resources.index(owner)
    if params.get("before"):  # paging backwards stays within the cursor's group
        owner = await call.locate(call.family, params["before"])
        resources, start = [owner], 0
    data: list[Any] = []
    has_more = False
    exchange = call.exchange
    await exchange.reserve()  # once: a list is one call, however many groups it reads
    exchange.going_upstream()
    locator = exchange.gateway.locator
    for index in range(start, len(resources)):
        resource = resources[index]
        query = {**params, "limit": str(limit - len(data))}
        if index != start:
            query.pop("after", None)
        page = await exchange.awaited(_page(call, resource, query))
        if isinstance(page, Response):  # an upstream error
            return page
        items = page.get("data") or []
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise upstream_bad_response(resource.group, "answered with a list whose data is not a list of objects")
        rewrite_models(items, resource.public_models)
        locator.remember(object_ids(items), resource.group)
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
    return exchange.response(orjson.dumps(answer), json=True)


async def _page(call: ResourceCall, resource: ResourceBackend, query: dict[str, str]) -> dict[str, Any] | Response:
    """One group's page of a list, or its error as the client's response."""
    exchange = call.exchange
    url = resource.url((call.family,), urlencode(query))
    translator = ObjectsTranslator(
        resource.group, resource.public_models, partial(exchange.gateway.locator.remember, group=resource.group)
    )
    reply = await exchange.attempt("GET", url, call.headers_for(resource), None, resource.group, translator)
    if not 200 <= reply.status < 300:  # an error, relayed; or a status no client can act on, a 502
        return await exchange.answer(reply)
    return answer_object(await reply.response.read(call.config.settings.max_response_bytes), resource.group)


def _limit(value: str | None) -> int:
    if value is None:
        return _DEFAULT_LIMIT
    if not is_ascii_digits(value) or not 1 <= int(value) <= _MAX_LIMIT:
        raise GatewayError(
            400, f"limit must be an integer from 1 to {_MAX_LIMIT}.", param="limit", code="invalid_limit"
        )
    return int(value)
