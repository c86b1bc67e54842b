"""Azure Functions entry point (Python v2 model with the HTTP-streams extension).

Thin on purpose: one table of routes, each handed to a handler in core.endpoints.
The local host (`python -m core serve`) serves the same functions, read back with
`app.get_functions()`.
"""

from collections.abc import Awaitable, Callable

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

from core import endpoints, gateway

Handler = Callable[[Request], Awaitable[Response]]

# Never let the import fail: the host would index no functions and every route, /health
# included, would answer 404 until a restart. The configuration loads in the background
# (retried until it succeeds); until then requests get a 503 and /health says why.
gateway.start_in_background()

# Callers authenticate to the gateway itself (gateway.apiKeys), not with function keys.
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

COLLECTION = ["GET", "POST"]
ITEM = ["GET", "POST", "DELETE"]
ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
# Resource-scoped APIs: a collection route and one for everything below it, per family.
RESOURCE_FAMILIES = ("assistants", "threads", "vector_stores", "files", "batches", "responses")

# (function name, route template, methods, handler). The worker identifies a function by
# its name, so each is unique. The catch-all comes last: it has the lowest precedence on
# both hosts, so unknown paths and methods get an OpenAI-shaped 404, not the host's empty one.
ROUTES: list[tuple[str, str, list[str], Handler]] = [
    ("health", "health", ["GET"], endpoints.health),
    ("list_models", "v1/models", ["GET"], endpoints.list_models),
    ("get_model", "v1/models/{id}", ["GET"], endpoints.get_model),
    ("chat_completions", "v1/chat/completions", ["POST"], endpoints.chat_completions),
    ("completions", "v1/completions", ["POST"], endpoints.completions),
    ("embeddings", "v1/embeddings", ["POST"], endpoints.embeddings),
    ("engine_embeddings", "v1/engines/{model}/embeddings", ["POST"], endpoints.engine_embeddings),
    ("image_generations", "v1/images/generations", ["POST"], endpoints.image_generations),
    ("image_edits", "v1/images/edits", ["POST"], endpoints.image_edits),
    ("audio_transcriptions", "v1/audio/transcriptions", ["POST"], endpoints.audio_transcriptions),
    ("audio_translations", "v1/audio/translations", ["POST"], endpoints.audio_translations),
    ("audio_speech", "v1/audio/speech", ["POST"], endpoints.audio_speech),
    *(
        entry
        for family in RESOURCE_FAMILIES
        for entry in (
            (family, f"v1/{family}", COLLECTION, endpoints.resources),
            (f"{family}_item", f"v1/{family}/{{*rest}}", ITEM, endpoints.resources),
        )
    ),
    ("unknown_route", "{*path}", ANY_METHOD, endpoints.unknown_route),
]


def as_function(handler: Handler) -> Handler:
    """The handler as the worker will run it: it binds the trigger to the parameter named `req`,
    reads both annotations (the extension's Request and Response mean an HTTP stream), and awaits
    only a coroutine function. Defined here, without `from __future__ import annotations`, so the
    worker's typing.get_type_hints resolves them."""

    async def run(req: Request) -> Response:
        return await handler(req)

    return run


for name, route, methods, handler in ROUTES:
    app.function_name(name)(app.route(route=route, methods=methods)(as_function(handler)))
