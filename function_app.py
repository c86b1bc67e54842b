"""Azure Functions entry point (Python v2 model with the HTTP-streams extension).

Thin on purpose: every row of the gateway's route table (core/api.py) becomes one HTTP-triggered
function, served by core.endpoints. The local host (`python -m core serve`) serves the same functions,
read back with `app.get_functions()`.
"""

from collections.abc import Awaitable, Callable

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

from core import endpoints, gateway
from core.api import ENDPOINTS, Endpoint

# Never let the import fail: the host would index no functions and every route, /health
# included, would answer 404 until a restart. The configuration loads in the background
# (retried until it succeeds); until then requests get a 503 and /health says why.
gateway.start_in_background()

# Callers authenticate to the gateway itself (gateway.apiKeys), not with function keys.
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def as_function(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint as the worker will run it: it binds the trigger to the parameter named `req`,
    reads both annotations (the extension's Request and Response mean an HTTP stream), and awaits
    only a coroutine function. Defined here, without `from __future__ import annotations`, so the
    worker's typing.get_type_hints resolves them."""

    async def run(req: Request) -> Response:
        return await endpoints.serve(req, endpoint)

    return run


# The worker identifies a function by its name; the catch-all comes last in the table, where
# both hosts give it the lowest precedence.
for endpoint in ENDPOINTS:
    app.function_name(endpoint.name)(
        app.route(route=endpoint.route, methods=list(endpoint.methods))(as_function(endpoint))
    )
