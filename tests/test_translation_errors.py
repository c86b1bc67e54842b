import orjson

from core.translation.errors import openai_error_body

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
