"""The errors the gateway decides on itself: OpenAI's error shape, and what each one tells the client."""

from __future__ import annotations

import orjson
import pytest

from core.errors import (
    ClientDisconnected,
    GatewayError,
    body_too_large,
    body_too_slow,
    error_body,
    invalid_api_key,
    model_not_found,
    truncated,
    upstream_bad_response,
    upstream_closed,
    upstream_response_too_large,
    upstream_timeout,
    upstream_unreachable,
)


def test_an_error_body_has_openais_four_fields_even_when_null_and_any_extra_ones() -> None:
    assert orjson.loads(error_body("Nope.", type=None)) == {
        "error": {"message": "Nope.", "type": None, "param": None, "code": None}
    }
    assert orjson.loads(error_body("Nope.", type="api_error", code="c", param="p", status=502)) == {
        "error": {"message": "Nope.", "type": "api_error", "param": "p", "code": "c", "status": 502}
    }


def test_a_gateway_error_is_an_invalid_request_without_headers_unless_told_otherwise() -> None:
    error = GatewayError(400, "Bad.")
    assert (error.status, error.message, str(error), error.type, error.code, error.param, error.headers) == (
        400,
        "Bad.",
        "Bad.",
        "invalid_request_error",
        None,
        None,
        {},
    )
    assert orjson.loads(error.body()) == {
        "error": {"message": "Bad.", "type": "invalid_request_error", "param": None, "code": None}
    }
    told = GatewayError(429, "Slow down.", type="rate_limit_error", code="c", param="p", headers={"retry-after": "1"})
    assert (told.type, told.code, told.param, told.headers) == ("rate_limit_error", "c", "p", {"retry-after": "1"})
    assert orjson.loads(told.body()) == {
        "error": {"message": "Slow down.", "type": "rate_limit_error", "param": "p", "code": "c"}
    }


def test_a_value_echoed_is_cut_after_256_characters() -> None:
    assert truncated("m" * 256) == "m" * 256
    assert truncated("m" * 257) == "m" * 256 + "..."
    assert truncated("model", limit=3) == "mod..."


@pytest.mark.parametrize(
    ("error", "status", "type", "code", "param", "message"),
    [
        (
            invalid_api_key(),
            401,
            "invalid_request_error",
            "invalid_api_key",
            None,
            "Incorrect or missing API key. Send it as 'Authorization: Bearer KEY' or 'api-key: KEY'.",
        ),
        (
            model_not_found("gpt-5x"),
            404,
            "invalid_request_error",
            "model_not_found",
            "model",
            "The model `gpt-5x` does not exist or you do not have access to it.",
        ),
        (
            model_not_found("m" * 300),
            404,
            "invalid_request_error",
            "model_not_found",
            "model",
            f"The model `{'m' * 256}...` does not exist or you do not have access to it.",
        ),
        (
            body_too_large(1024),
            413,
            "invalid_request_error",
            "request_too_large",
            None,
            "Request body exceeds the gateway's limit of 1024 bytes.",
        ),
        (
            body_too_slow(2.5),
            408,
            "invalid_request_error",
            "request_timeout",
            None,
            "The request body did not arrive within the gateway's 2.5 seconds.",
        ),
        (
            body_too_slow(30.0),
            408,
            "invalid_request_error",
            "request_timeout",
            None,
            "The request body did not arrive within the gateway's 30 seconds.",
        ),
        (
            upstream_unreachable("east"),
            502,
            "api_error",
            "upstream_unreachable",
            None,
            "The upstream for group `east` could not be reached.",
        ),
        (
            upstream_closed("east"),
            502,
            "api_error",
            "upstream_closed_connection",
            None,
            "The upstream for group `east` closed the connection before its answer was complete.",
        ),
        (
            upstream_timeout("east"),
            504,
            "api_error",
            "upstream_timeout",
            None,
            "The upstream for group `east` did not answer in time.",
        ),
        (
            upstream_timeout("east", "sent nothing for 30 seconds"),
            504,
            "api_error",
            "upstream_timeout",
            None,
            "The upstream for group `east` sent nothing for 30 seconds.",
        ),
        (
            upstream_bad_response("east", "answered with a body that is not JSON"),
            502,
            "api_error",
            "upstream_bad_response",
            None,
            "The upstream for group `east` answered with a body that is not JSON.",
        ),
        (
            upstream_response_too_large("east", 4096),
            502,
            "api_error",
            "upstream_response_too_large",
            None,
            (
                "The upstream for group `east` answered with more than the gateway's limit of 4096 bytes "
                "(gateway.maxResponseBytes)."
            ),
        ),
        (
            ClientDisconnected(),
            499,
            "invalid_request_error",
            "client_closed_request",
            None,
            "Client closed the request.",
        ),
    ],
)
def test_each_error_the_gateway_decides_on_says_what_happened(error, status, type, code, param, message) -> None:
    assert (error.status, error.type, error.code, error.param, error.message) == (status, type, code, param, message)
    assert orjson.loads(error.body()) == {"error": {"message": message, "type": type, "param": param, "code": code}}
