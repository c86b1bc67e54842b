import orjson
import pytest

from core.translation.errors import upstream_error


def openai_error_body(status: int, body: bytes) -> bytes:
    return upstream_error(status, body)[0]


CONTENT_FILTER = {
    "error": {
        "message": "The response was filtered",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {}},
    }
}


def test_content_filter_keeps_its_code_and_details_and_gains_a_type() -> None:
    error = orjson.loads(openai_error_body(400, orjson.dumps(CONTENT_FILTER)))["error"]
    assert error["code"] == "content_filter"
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "prompt"
    assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"


def test_azure_numeric_code_and_missing_fields() -> None:
    body = orjson.dumps({"error": {"code": "429", "message": "Rate limit"}})
    error = orjson.loads(openai_error_body(429, body))["error"]
    assert error == {"message": "Rate limit", "type": "rate_limit_error", "param": None, "code": "429"}


def test_html_and_text_bodies_become_openai_errors() -> None:
    html = orjson.loads(openai_error_body(502, b"<html><body>Bad Gateway</body></html>"))["error"]
    assert html["message"] == "Upstream returned HTTP 502." and html["type"] == "api_error"
    text = orjson.loads(openai_error_body(503, b"overloaded"))["error"]
    assert text["message"] == "Upstream returned HTTP 503: overloaded"


@pytest.mark.parametrize(
    ("status", "type_"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (409, "conflict_error"),
        (413, "invalid_request_error"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "api_error"),
    ],
)
def test_the_status_names_the_type_azure_left_out(status: int, type_: str) -> None:
    for body in (orjson.dumps({"error": {"message": "m"}}), b"plain text", b""):
        assert orjson.loads(openai_error_body(status, body))["error"]["type"] == type_


def test_a_message_that_is_not_a_non_empty_string_becomes_the_status_line() -> None:
    for given in ({"text": "structured"}, ["a"], 7, "", None):
        error = orjson.loads(openai_error_body(400, orjson.dumps({"error": {"message": given, "code": "x"}})))["error"]
        assert error["message"] == "Upstream returned HTTP 400.", given
        assert error["code"] == "x"


def test_an_error_that_is_only_text_is_the_message() -> None:
    error = orjson.loads(openai_error_body(403, b'{"error": "Access denied due to invalid subscription key."}'))[
        "error"
    ]
    assert error == {
        "message": "Access denied due to invalid subscription key.",
        "type": "permission_error",
        "param": None,
        "code": None,
    }


def test_a_body_without_an_error_key_is_the_error_itself() -> None:
    body = orjson.dumps({"message": "Resource not found", "code": 404, "type": "custom", "param": "p", "detail": 1})
    error = orjson.loads(openai_error_body(404, body))["error"]
    assert error == {"message": "Resource not found", "type": "custom", "param": "p", "code": "404", "detail": 1}


def test_json_that_is_not_an_object_is_shown_as_text() -> None:
    error = orjson.loads(openai_error_body(500, b"[1, 2]"))["error"]
    assert error == {"message": "Upstream returned HTTP 500: [1, 2]", "type": "api_error", "param": None, "code": "500"}


def test_long_text_is_cut_and_blank_text_says_only_the_status() -> None:
    text = "x" * 400
    message = orjson.loads(openai_error_body(502, f"  {text}  ".encode()))["error"]["message"]
    assert message == "Upstream returned HTTP 502: " + "x" * 300
    assert orjson.loads(openai_error_body(502, b"  \n "))["error"]["message"] == "Upstream returned HTTP 502."
    invalid_utf8 = orjson.loads(openai_error_body(502, b"bad \xff byte"))["error"]["message"]
    assert invalid_utf8 == "Upstream returned HTTP 502: bad \ufffd byte"


def test_the_code_an_upstream_error_is_logged_by_is_azures_when_it_is_an_identifier() -> None:
    assert upstream_error(400, orjson.dumps(CONTENT_FILTER))[1] == "content_filter"
    assert (
        upstream_error(429, b'{"error": {"code": "429", "message": "Requests to the API have exceeded"}}')[1] == "429"
    )
    assert upstream_error(404, b'{"error": {"code": "DeploymentNotFound", "message": "x"}}')[1] == "DeploymentNotFound"
    # Anything else is the upstream's text: the status stands for it.
    assert upstream_error(500, b"<html>oops</html>")[1] == "500"
    assert upstream_error(500, b'{"error": {"code": "a code with spaces", "message": "x"}}')[1] == "500"
    assert upstream_error(500, orjson.dumps({"error": {"code": "x" * 65}}))[1] == "500"
    assert upstream_error(503, b'{"error": {"code": true}}')[1] == "503"
    assert upstream_error(502, b'{"error": {"code": null}}')[1] == "502"
