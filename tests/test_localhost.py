"""The local host mounts a FunctionApp's HTTP triggers the way the Functions host does."""

from collections.abc import Awaitable, Callable

import azure.functions as func
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from core.localhost import RouteTable, function_routes, route_prefix, starlette_path


def test_route_templates_become_starlette_paths() -> None:
    assert starlette_path("", "v1/models/{id}") == "/v1/models/{id}"
    assert starlette_path("api", "files/{*rest}") == "/api/files/{rest:path}"
    assert starlette_path("", "items/{id:int}/{name?}") == "/items/{id}/{name}"
    assert starlette_path("", "/health/") == "/health"


def test_project_host_json_serves_at_the_root() -> None:
    assert route_prefix() == ""


def test_function_routes_serve_triggers_and_enforce_function_keys(monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_FUNCTION_KEY", "fkey")
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="things/{id}", methods=["GET"])
    async def thing(req: Request) -> Response:
        return Response(f"thing {req.path_params['id']}".encode())

    @app.route(route="admin", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
    async def admin(req: Request) -> Response:
        return Response(b"admin")

    client = TestClient(Starlette(routes=function_routes(app, "")))
    assert client.get("/things/7").text == "thing 7"
    assert client.post("/things/7").status_code == 405
    denied = client.post("/admin")
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
    assert client.post("/admin", headers={"x-functions-key": "fkey"}).text == "admin"
    assert client.post("/admin?code=fkey").text == "admin"


def test_the_route_table_keeps_the_routers_precedence_for_paths_it_looks_up() -> None:
    """A path looked up in one step is served as the Router would: a route before it that matches the
    path too still wins, a method the route does not take goes on to the next routes, then to a 405."""

    def answering(name: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return Response(f"{name} {sorted(request.path_params.items())}".encode())

        return endpoint

    table = RouteTable(
        [
            Route("/{name}", answering("named"), methods=["GET"]),
            Route("/things", answering("things"), methods=["GET", "POST"]),
            Route("/fast", answering("fast"), methods=["POST"]),
            Route("/{rest:path}", answering("any"), methods=["GET", "POST", "PUT"]),
        ]
    )
    client = TestClient(table)
    assert client.get("/things").text == "named [('name', 'things')]"  # the earlier route
    assert client.post("/things").text == "things []"
    assert client.post("/fast").text == "fast []"
    assert client.get("/fast").text == "named [('name', 'fast')]"
    assert client.put("/fast").text == "any [('rest', 'fast')]"
    assert client.delete("/fast").status_code == 405
