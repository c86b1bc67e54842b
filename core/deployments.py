"""The deployment-scoped calls (chat, completions, embeddings, images, audio): the body read, the model
routed to its backends, the request translated for the backend that serves it, and the answer relayed.

The request body is kept until an upstream has answered, and the backend is chosen per attempt, so a
pool can retry elsewhere before the first byte reaches the client. (A streamed upload can be sent only once.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import Response

from core.api import Endpoint
from core.config.model import Backend, ModelRoute
from core.errors import GatewayError
from core.exchange import Exchange, UpstreamReply
from core.inbound import parse_json_object
from core.relay import JSON
from core.translation.translator import ClientRequest, DeploymentTranslator, for_deployment
from core.uploads import Upload

# A chat completion Azure refuses for a parameter the gateway can repair is repaired and sent again; each
# refusal names one parameter, so a call may need a few (max_tokens, temperature, top_p, logprobs...).
_MOST_REPAIRS = 6


async def serve(exchange: Exchange, endpoint: Endpoint) -> Response:
    request, record, settings = exchange.request, exchange.record, exchange.settings
    operation = endpoint.operation
    assert operation is not None  # every deployment row names its operation
    record.operation = operation
    upload: Upload | None = None
    if endpoint.body == "multipart" or (
        endpoint.body == "json-or-multipart" and not exchange.head.get("content-type", "").startswith(JSON)
    ):
        assert endpoint.file_part is not None
        # The `model` form field picks the deployment, unless the path names the model.
        fields = ("model",) if endpoint.model_from == "body" else ()
        upload = await exchange.upload(fields=fields, file_part=endpoint.file_part)
        model: object = upload.fields.get("model") if endpoint.model_from == "body" else request.path_params["model"]
        client = ClientRequest(operation, b"", None, stream=False)
    else:
        raw = await exchange.body()
        payload = parse_json_object(raw)
        model = request.path_params["model"] if endpoint.model_from == "path" else payload.get("model")
        client = ClientRequest(operation, raw, payload, stream=payload.get("stream") is True)
        record.stream = client.stream
        exchange.reserves(operation, raw, payload)
    route = _route_for(exchange, model)
    count_usage = exchange.gateway.counts_usage(exchange.state)

    learned = exchange.gateway.fits

    async def attempt(backend: Backend) -> UpstreamReply:
        record.group = backend.group  # the group a timeout names, the token's wait included
        exchange.priced(backend.price)
        bearer = await exchange.gateway.tokens.token() if backend.auth == "entra" else None
        key = (backend.group, backend.deployment or "")
        fit = None if backend.fit is None else learned.get(key) or backend.fit
        for _ in range(_MOST_REPAIRS + 1):
            translator = for_deployment(
                backend, client, count_usage=count_usage, normalize_streams=settings.normalize_streams, fit=fit
            )
            headers, body = upstream_request(backend, translator, bearer)
            reply = await exchange.attempt("POST", translator.upstream_url(), headers, body, backend.group, translator)
            if reply.status != 400 or fit is None or client.payload is None or operation != "chat/completions":
                break
            # Azure refused something before generating anything: repair it and send again, when it can be.
            repaired = fit.learned_from(await reply.read_error())
            if repaired is None:
                break
            learned.remember(key, repaired)
            if repaired.responses_only and backend.responses_url is None:
                break  # no chat completion will do, and no Responses API to ask: the caller gets Azure's answer
            fit = repaired  # a Responses-only model is asked again through the bridge
        exchange.note_adjusted(translator.adjusted)
        return reply

    def upstream_request(
        backend: Backend, translator: DeploymentTranslator, bearer: str | None
    ) -> tuple[list[tuple[str, str]], bytes | AsyncIterator[bytes]]:
        """The headers and body of an attempt's request to `backend`."""
        headers = exchange.upstream_headers(backend, bearer)
        body: bytes | AsyncIterator[bytes]
        if upload is not None:
            if backend.flavor == "v1" and backend.deployment is not None:
                upload.name_model(backend.deployment)  # Azure's v1 API takes the deployment from the form's model
            # Otherwise multipart goes as it came: Azure takes the deployment from the URL.
            headers += upload.headers()
            body = upload.chunks()
        else:
            headers.append(("content-type", JSON))
            body = translator.body()
        return headers, body

    exchange.priced(route.price)  # what the call reserves of a cost limit
    pool = route.pool
    if pool is None:
        backend = route.backends[0]
        reply = await exchange.send(lambda: attempt(backend), streams_body=upload is not None)
    else:
        reply = await exchange.send_pooled(
            route.model, pool, lambda member: attempt(member.backend), streams_body=upload is not None
        )
    return await exchange.answer(reply)


def _route_for(exchange: Exchange, model: object) -> ModelRoute:
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "You must provide a model parameter.", param="model", code="missing_model")
    exchange.record.model = model
    route = exchange.state.router.route(model)
    exchange.caller.check_model(model)
    return route
