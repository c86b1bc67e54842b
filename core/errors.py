"""OpenAI-shaped errors: `{"error": {"message", "type", "param", "code"}}`.

Every failure the gateway itself decides on is a GatewayError; the endpoint
that serves the request turns it into a response, so no handler ever leaks a traceback.
"""

from __future__ import annotations

import orjson


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        return error_body(self.message, type=self.type, code=self.code, param=self.param)


def error_body(
    message: str, *, type: str | None, code: str | None = None, param: str | None = None, **extra: object
) -> bytes:
    error: dict[str, object] = {"message": message, "type": type, "param": param, "code": code}
    error.update(extra)
    return orjson.dumps({"error": error})


ECHO_LIMIT = 256


def truncated(value: str, limit: int = ECHO_LIMIT) -> str:
    """A client-supplied value as the gateway echoes it in a message or a log line: cut
    after `limit` characters, so a huge model id or path cannot inflate either."""
    return value if len(value) <= limit else f"{value[:limit]}..."


def invalid_api_key() -> GatewayError:
    return GatewayError(
        401,
        "Incorrect or missing API key. Send it as 'Authorization: Bearer KEY' or 'api-key: KEY'.",
        code="invalid_api_key",
    )


def model_not_found(model: str) -> GatewayError:
    return GatewayError(
        404,
        f"The model `{truncated(model)}` does not exist or you do not have access to it.",
        code="model_not_found",
        param="model",
    )


def body_too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"Request body exceeds the gateway's limit of {limit} bytes.", code="request_too_large")


def body_too_slow(seconds: float) -> GatewayError:
    return GatewayError(
        408, f"The request body did not arrive within the gateway's {seconds:g} seconds.", code="request_timeout"
    )


def upstream_unreachable(group: str) -> GatewayError:
    return GatewayError(
        502,
        f"The upstream for group `{group}` could not be reached.",
        type="api_error",
        code="upstream_unreachable",
    )


def upstream_closed(group: str) -> GatewayError:
    """The upstream answered, then its connection broke before the answer was complete."""
    return GatewayError(
        502,
        f"The upstream for group `{group}` closed the connection before its answer was complete.",
        type="api_error",
        code="upstream_closed_connection",
    )


def upstream_timeout(group: str, what: str = "did not answer in time") -> GatewayError:
    return GatewayError(504, f"The upstream for group `{group}` {what}.", type="api_error", code="upstream_timeout")


def upstream_bad_response(group: str, what: str) -> GatewayError:
    """An answer no client could use (an invalid status, an undecodable body, garbage JSON)."""
    return GatewayError(
        502, f"The upstream for group `{group}` {what}.", type="api_error", code="upstream_bad_response"
    )


def upstream_response_too_large(group: str, limit: int) -> GatewayError:
    return GatewayError(
        502,
        f"The upstream for group `{group}` answered with more than the gateway's limit of {limit} bytes "
        "(gateway.maxResponseBytes).",
        type="api_error",
        code="upstream_response_too_large",
    )


class ClientDisconnected(GatewayError):
    """The caller went away before the answer was ready; logged as 499 (nginx's
    convention), never sent."""

    def __init__(self) -> None:
        super().__init__(499, "Client closed the request.", code="client_closed_request")
