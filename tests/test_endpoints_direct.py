"""core.endpoints.serve called directly, with a request whose body cannot be read: the client gone while sending it
is a 499, anything unexpected a generic 500 whose cause is logged with the request's id, never sent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from core import endpoints
from core import gateway as gateway_module
from core.api import ENDPOINTS
from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG

CHAT = next(endpoint for endpoint in ENDPOINTS if endpoint.route == "v1/chat/completions")


@pytest.fixture
def loaded(tmp_path: Path) -> Iterator[gateway_module.Gateway]:
    path = tmp_path / "gateway.yaml"
    path.write_text(STANDARD_CONFIG)
    gateway = gateway_module.load({**SECRETS, "SIM_URL": "http://127.0.0.1:9", "CONFIG_PATH": str(path)})
    yield gateway
    asyncio.run(gateway.aclose())


def post_chat(gateway: gateway_module.Gateway, body: Message | Exception) -> Response:
    """A chat completion whose body's first (and only) receive gives `body`, or raises it."""

    async def receive() -> Message:
        if isinstance(body, Exception):
            raise body
        return body

    async def serve() -> Response:
        gateway_module.bind(gateway)  # this task's context only
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"authorization", f"Bearer {ALICE}".encode()), (b"content-type", b"application/json")],
            "path_params": {},
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
            "scheme": "http",
            "http_version": "1.1",
        }
        return await endpoints.serve(Request(scope, receive), CHAT)

    return asyncio.run(serve())


def test_a_client_gone_while_sending_its_body_is_a_499(loaded) -> None:
    response = post_chat(loaded, {"type": "http.disconnect"})
    assert response.status_code == 499
    assert orjson.loads(response.body)["error"] == {
        "message": "Client closed the request.",
        "type": "invalid_request_error",
        "param": None,
        "code": "client_closed_request",
    }


def test_an_unexpected_error_is_a_generic_500_and_a_logged_traceback_naming_the_request(loaded, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="aoai_gateway"):
        response = post_chat(loaded, RuntimeError("the receive channel broke"))
    assert response.status_code == 500
    assert orjson.loads(response.body)["error"] == {
        "message": "The gateway failed to process the request.",
        "type": "api_error",
        "param": None,
        "code": "internal_error",
    }
    assert b"receive channel" not in response.body
    [record] = [record for record in caplog.records if record.name == "aoai_gateway"]
    request_id = response.headers["x-request-id"]
    assert record.getMessage() == f"unhandled error in POST /v1/chat/completions (request {request_id})"
    assert record.exc_info is not None and str(record.exc_info[1]) == "the receive channel broke"
