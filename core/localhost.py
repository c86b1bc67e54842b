"""A local stand-in for the Functions host: serves exactly the routes function_app.py declares.

Core Tools (`func start`) cannot be installed offline, and tests must talk to the
same route table Azure indexes, so this host reads `app.get_functions()` and
mounts each HTTP trigger on a Starlette app under host.json's routePrefix.
"""

from __future__ import annotations

import hmac
import importlib
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route, Router
from starlette.types import Receive, Scope, Send

from core.errors import error_body

ROOT = Path(__file__).resolve().parent.parent
Endpoint = Callable[[Request], Awaitable[Response]]


def route_prefix(host_json: Path = ROOT / "host.json") -> str:
    """host.json's extensions.http.routePrefix; the Functions default is "api"."""
    config = json.loads(host_json.read_text())
    prefix: str = config.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    return prefix.strip("/")


def starlette_path(prefix: str, route: str) -> str:
    """A Functions route template as a Starlette path: `{*rest}` -> `{rest:path}`,
    and constraints such as `{id:int}` or `{id?}` reduced to plain parameters."""
    path = re.sub(r"\{\*(\w+)\}", r"{\1:path}", route.strip("/"))
    path = re.sub(r"\{(\w+)(?::(?!path\})[^}]*|\?)\}", r"{\1}", path)
    return "/" + "/".join(part for part in (prefix, path) if part)


_functions: dict[int, tuple[Any, list[Any]]] = {}


def app_functions(app: Any) -> list[Any]:
    """`app.get_functions()`, which may run only once per FunctionApp: cached."""
    if id(app) not in _functions:
        _functions[id(app)] = (app, app.get_functions())  # the app is kept so its id stays unique
    return _functions[id(app)][1]


def function_routes(app: Any, prefix: str) -> list[Route]:
    """One Starlette route per HTTP-triggered function."""
    routes = []
    for function in app_functions(app):
        trigger = function.get_trigger().get_dict_repr()
        if trigger.get("type") != "httpTrigger":
            continue
        endpoint: Endpoint = function.get_user_function()
        auth_level = str(getattr(trigger.get("authLevel"), "value", trigger.get("authLevel") or "function")).lower()
        if auth_level != "anonymous":
            endpoint = _require_function_key(endpoint)
        methods = [str(getattr(m, "value", m)).upper() for m in trigger.get("methods") or []] or None
        path = starlette_path(prefix, trigger.get("route") or function.get_function_name())
        routes.append(Route(path, endpoint, methods=methods, name=function.get_function_name()))
    return routes


def _require_function_key(endpoint: Endpoint) -> Endpoint:
    """What the Functions host does for non-anonymous routes; the key comes from LOCAL_FUNCTION_KEY."""
    expected = os.environ.get("LOCAL_FUNCTION_KEY", "")

    async def guarded(request: Request) -> Response:
        key = request.headers.get("x-functions-key") or request.query_params.get("code") or ""
        if not expected or not hmac.compare_digest(key.encode(), expected.encode()):
            body = error_body("A function key is required.", type="invalid_request_error", code="invalid_api_key")
            return Response(body, 401, media_type="application/json")
        return await endpoint(request)

    return guarded


class RouteTable(Router):
    """Starlette's Router, with the busiest routes found in one dict lookup.

    A route without parameters (`/v1/chat/completions`) is looked up by its path, when no route before it in
    the table matches that path too; its endpoint is then called directly. Everything else (parameters, a
    method the route does not take, lifespan) goes the Router's way: each route's pattern in turn, with its
    405 and its precedence. The handlers turn every error into a response themselves, so the wrapping
    Starlette puts around each endpoint (its exception handling) would only add per-request cost, as would
    Starlette's error and exception middleware, which a bare Router goes without.
    """

    def __init__(self, routes: list[Route], **kwargs: Any) -> None:
        super().__init__(routes=routes, **kwargs)
        self._exact: dict[str, Route] = {}
        for index, route in enumerate(routes):
            if route.param_convertors or route.path in self._exact:
                continue
            probe: Scope = {"type": "http", "path": route.path, "method": "GET", "root_path": ""}
            if not any(earlier.matches(probe)[0] is not Match.NONE for earlier in routes[:index]):
                self._exact[route.path] = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The server calls this; the Router's own __call__ would only hand over to its middleware stack, which, the
        # table having no middleware, is its `app`: a coroutine more per request for nothing.
        if scope["type"] == "http" and not scope.get("root_path"):  # (uvicorn sets none unless told)
            route = self._exact.get(scope["path"])
            if route is not None and (route.methods is None or scope["method"] in route.methods):
                scope["router"] = self
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = {}
                endpoint: Endpoint = route.endpoint
                response = await endpoint(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.middleware_stack(scope, receive, send)


def build_app(module_name: str = "function_app") -> Router:
    """The function routes in a RouteTable."""
    from core import gateway

    module = importlib.import_module(module_name)

    @asynccontextmanager
    async def lifespan(_: Router) -> AsyncIterator[None]:
        yield
        await gateway.current().aclose()

    return RouteTable(function_routes(module.app, route_prefix()), lifespan=lifespan)
