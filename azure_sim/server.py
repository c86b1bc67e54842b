"""``AzureSimulator``: the aiohttp app (every route under each of its scopes, then an Azure-style 404), the
shared request pipeline around each handler, and the threaded harness tests use.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from .behaviour import BEHAVIOUR_KEY, CANNED_FAIL_MODES, Behaviour
from .deployments import OPERATIONS
from .faults import canned_failure, misreport_usage
from .models import DEFAULT_PROFILE, deployed_profile
from .pipeline import ReadBody, check_api_version, read_body, request_body, request_key
from .resources import RESOURCES
from .routing import (
    JSON_BODY,
    MULTIPART_BODY,
    RESOURCE_SCOPES,
    Call,
    Operation,
    RecordedRequest,
    Resource,
    Route,
    Scope,
)
from .store import Store
from .streams import drip_answer, drop_connection, encode_answer
from .wire import (
    ERR_AUTH,
    ERR_DEPLOYMENT,
    ERR_INVALID_JSON,
    ERR_NOT_FOUND,
    Reject,
    bad_request,
    err_operation_not_supported,
    error_answer,
    wants_stream,
)

try:  # uvloop (requirements-dev.txt) roughly halves the event loop's share of each request; asyncio otherwise
    import uvloop

    new_event_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
except ImportError:  # pragma: no cover - e.g. Windows
    new_event_loop = asyncio.new_event_loop


_BEHAVIOUR = BEHAVIOUR_KEY


class AzureSimulator:
    """An Azure OpenAI look-alike on 127.0.0.1.

    In tests: ``with AzureSimulator(api_keys={"k"}) as sim: ...`` runs it in a background thread with its own event
    loop. The CLI (``python -m azure_sim``) serves the same app in the foreground.
    """

    def __init__(
        self,
        *,
        api_keys: set[str] | None = None,
        deployments: set[str] | None = None,
        models: Mapping[str, str] | None = None,
        record_requests: bool = True,
        name: str = "sim",
    ) -> None:
        self.name = name  # for debugging: thread name, repr, CLI banner
        self.api_keys = api_keys  # None: any key, but one must be present
        self.deployments = deployments  # None: any deployment name (also checks body models: v1, assistants, ...)
        # deployment -> the Azure model it runs (azure_sim.models); a deployment not named here runs the model it is
        # named after, and a name the simulator does not know behaves like gpt-4o
        self.models: dict[str, str] = dict(models or {})
        self.record_requests = record_requests  # the CLI turns this off so a long benchmark does not grow memory
        self.behaviour = Behaviour()
        self.requests: list[RecordedRequest] = []
        self.store = Store()  # this region's assistants, threads, files, ...
        self.url = ""
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ----------------------------------------------------------------------- test-facing API

    def __repr__(self) -> str:
        return f"AzureSimulator(name={self.name!r}, url={self.url!r})"

    def reset(self) -> None:
        """Forget recorded requests and stored objects, and restore default behaviour (all in place)."""
        with self._lock:
            self.requests.clear()
        self.store.clear()
        self.behaviour.reset()

    def start(self) -> AzureSimulator:
        """Serve on an ephemeral 127.0.0.1 port from a daemon thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        loop = new_event_loop()
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                runner = loop.run_until_complete(start_runner(self.make_app(), sock))
            except BaseException as exc:  # surfaced to start()'s caller
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(runner.cleanup())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"azure-sim-{self.name}", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            self._thread = None
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop serving (in-flight handlers get a short grace period) and join the thread."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> AzureSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----------------------------------------------------------------------- server side

    def make_app(self) -> web.Application:
        """The aiohttp app: every operation and resource under each of its scopes, then an Azure-style 404."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for operation in OPERATIONS:
            for scope in operation.scopes:
                handler = self._endpoint(operation, scope)
                for prefix in scope.prefixes:
                    app.router.add_route("POST", prefix + operation.path, handler)
        for resource in RESOURCES:
            for scope in RESOURCE_SCOPES:
                handler = self._endpoint(resource, scope)
                for prefix in scope.prefixes:
                    app.router.add_route(resource.method, prefix + resource.path, handler)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    def _record(self, request: web.Request, read: ReadBody, operation: str = "") -> RecordedRequest:
        first = next(iter(read.uploads.values()), None)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            raw_query=request.query_string,
            headers={k.lower(): v for k, v in request.headers.items()},
            header_list=[(k.lower(), v) for k, v in request.headers.items()],
            body=read.raw,
            json=read.json,
            received_at=time.monotonic(),
            operation=operation,
            form=dict(read.form or {}),
            upload_bytes=first.size if first else 0,
            upload_sha256=first.sha256 if first else "",
            upload_filename=first.filename if first else "",
            peer=_peer(request),
        )
        if self.record_requests:
            with self._lock:
                self.requests.append(record)
        return record

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        """Unknown paths answer like Azure and are recorded, so a test can see the gateway hit a wrong URL."""
        record = self._record(request, await read_body(request, JSON_BODY))
        record.completed = True
        return error_answer(request, 404, ERR_NOT_FOUND)

    def _endpoint(self, route: Route, scope: Scope) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Wrap a route with body reading, recording and disconnect tracking."""

        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                read_delay = self.behaviour.read_delay_for(request.headers)
            except ValueError:
                read_delay = 0.0  # answered with a 400 once the body is read
            if read_delay > 0:
                await asyncio.sleep(read_delay)
            read = await read_body(request, route.body, route.keep_upload)
            record = self._record(request, read, route.azure_name)
            try:
                response = await self._serve(request, record, read, route, scope)
                if record.aborted:
                    return response
                behaviour = request.get(_BEHAVIOUR)
                usage = behaviour.usage if behaviour is not None else None
                if usage is not None and isinstance(response, web.Response) and not response.prepared:
                    misreport_usage(response, usage)
                if not response.prepared:  # write it here so `completed` means "the client has it all"
                    if behaviour is not None and behaviour.drip > 0 and isinstance(response, web.Response):
                        response = await drip_answer(request, response, behaviour)
                    else:
                        encode_answer(response, behaviour)
                        await response.prepare(request)
                        await response.write_eof()
                record.completed = True
                return response
            except asyncio.CancelledError:  # aiohttp cancels the handler when the client disconnects
                record.disconnected = not record.aborted
                raise
            except ConnectionError:  # a write hit a closed socket
                record.disconnected = not record.aborted
                return web.Response()

        handle.__name__ = f"{scope.name}_{route.handler.__name__}"
        return handle

    async def _serve(
        self, request: web.Request, record: RecordedRequest, read: ReadBody, route: Route, scope: Scope
    ) -> web.StreamResponse:
        """The shared checks in Azure's order, then the configured delay and fault, then the route's handler."""
        rejected = check_api_version(request, scope, route.family if isinstance(route, Resource) else None)
        if rejected is not None:
            return rejected
        key = request_key(request)
        if key is None or (self.api_keys is not None and key not in self.api_keys):
            return error_answer(request, 401, ERR_AUTH)
        if (
            scope.deployment_in_path
            and self.deployments is not None
            and request.match_info["deployment"] not in self.deployments
        ):
            return error_answer(request, 404, ERR_DEPLOYMENT)
        try:
            behaviour = self.behaviour.for_request(request.headers)
        except ValueError as exc:
            return error_answer(request, 400, {"code": "SimulatorBadHeader", "message": str(exc)})
        request[_BEHAVIOUR] = behaviour
        if behaviour.delay > 0:
            await asyncio.sleep(behaviour.delay)
        if behaviour.fail in CANNED_FAIL_MODES:
            return await canned_failure(request, behaviour.fail, route.azure_name, behaviour)
        body = request_body(route, read)
        if body is None:
            if route.body != MULTIPART_BODY:
                return error_answer(request, 400, ERR_INVALID_JSON)
            expected = f"Invalid Content-Type header ({request.content_type}), expected multipart/form-data."
            message = read.error or expected
            return bad_request(request, message)
        if behaviour.fail == "abort" and not (route.always_streams or (route.streams and wants_stream(body))):
            return drop_connection(request, record)
        model = ""
        profile = DEFAULT_PROFILE
        if isinstance(route, Operation):
            model = route.model
            deployment = request.match_info["deployment"] if scope.deployment_in_path else None
            if scope.model_is_deployment:
                named = body.get("model")
                if not isinstance(named, str) or not named:
                    return bad_request(request, "Missing required parameter: 'model'.", "model")
                if self.deployments is not None and named not in self.deployments:
                    return error_answer(request, 404, ERR_DEPLOYMENT)
                model = deployment = named
            elif not scope.deployment_in_path and isinstance(body.get("model"), str):
                model = deployment = body["model"]
            if route.model_operation is not None and deployment is not None:
                profile = deployed_profile(self.models, deployment)
                if route.model_operation not in profile.operations:
                    return error_answer(request, 400, err_operation_not_supported(route.model_operation, profile.name))
                if profile is not DEFAULT_PROFILE:
                    model = profile.model_id  # like Azure: the model and its version ("gpt-5-mini-2025-08-07")
        try:
            call = Call(
                request,
                record,
                body,
                model,
                behaviour,
                self.store,
                self.deployments,
                read.uploads,
                self.models,
                profile,
            )
            return await route.handler(call)
        except Reject as exc:
            return error_answer(request, exc.status, exc.error)


async def start_runner(app: web.Application, sock: socket.socket) -> web.AppRunner:
    """Start ``app`` on an already bound socket: no access log (CPU), handlers cancelled on client disconnect."""
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.25)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    return runner


def _peer(request: web.Request) -> str:
    peername = request.transport.get_extra_info("peername") if request.transport is not None else None
    return f"{peername[0]}:{peername[1]}" if peername else ""
