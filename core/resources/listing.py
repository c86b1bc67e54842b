"""A list (GET /v1/{assistants,vector_stores,files,batches}) over every assistants group, in group order:
a page is filled from the group holding the `after` cursor onwards, so cursors page through all groups.

A group's page nested too deep to re-encode (core/json_depth.py) is relayed as it came when it is the whole answer
(the usual case: one assistants group); merged with other groups' it would have to be re-encoded, so it is a 502."""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.responses import Response

from core.config.model import ResourceBackend
from core.errors import GatewayError, upstream_bad_response
from core.inbound import is_ascii_digits
from core.json_depth import MAX_DEPTH, too_deep
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
        read = await exchange.awaited(_page(call, resource, query))
        if isinstance(read, Response):  # an upstream error
            return read
        page, raw = read
        items = page.get("data") or []
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise upstream_bad_response(resource.group, "answered with a list whose data is not a list of objects")
        if too_deep(raw):
            if data or not (page.get("has_more") or index == len(resources) - 1):
                raise upstream_bad_response(
                    resource.group,
                    f"answered with a list nested more than {MAX_DEPTH} levels deep, "
                    "which the gateway cannot merge with other groups' lists",
                )
            return exchange.response(raw, json=True)  # the whole answer, as it came
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


async def _page(
    call: ResourceCall, resource: ResourceBackend, query: dict[str, str]
) -> tuple[dict[str, Any], bytes] | Response:
    """One group's page of a list and its bytes, or its error as the client's response."""
    exchange = call.exchange
    url = resource.url((call.family,), urlencode(query))
    translator = ObjectsTranslator(
        resource.group, resource.public_models, partial(exchange.gateway.locator.remember, group=resource.group)
    )
    reply = await exchange.attempt("GET", url, call.headers_for(resource), None, resource.group, translator)
    if not 200 <= reply.status < 300:  # an error, relayed; or a status no client can act on, a 502
        return await exchange.answer(reply)
    raw = await reply.response.read(call.config.settings.max_response_bytes)
    if too_deep(raw):  # read for its size and cursor only; never walked or re-encoded
        try:
            page = orjson.loads(raw)
        except orjson.JSONDecodeError:  # deeper than orjson reads (1024 levels)
            page = None
        if not isinstance(page, dict):
            raise upstream_bad_response(resource.group, f"answered with JSON nested more than {MAX_DEPTH} levels deep")
        return page, raw
    return answer_object(raw, resource.group), raw


def _limit(value: str | None) -> int:
    if value is None:
        return _DEFAULT_LIMIT
    if not is_ascii_digits(value) or not 1 <= int(value) <= _MAX_LIMIT:
        raise GatewayError(
            400, f"limit must be an integer from 1 to {_MAX_LIMIT}.", param="limit", code="invalid_limit"
        )
    return int(value)
