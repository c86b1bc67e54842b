"""Upstream error bodies, made OpenAI-shaped.

Azure's errors come in several shapes (`{"error": {"code": "429", "message"}}`,
the content filter's `type: null` + `innererror`, HTML from a gateway in front).
Clients need `{"error": {"message", "type", "param", "code"}}`; the status and
Azure's code (e.g. `content_filter`) are kept, as are Azure's extra details.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from core.errors import error_body
from core.json_depth import too_deep

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
_MAX_TEXT = 300  # characters of a non-JSON upstream body worth showing
# Azure's error codes are short identifiers ("429", "content_filter", "DeploymentNotFound"): one becomes the call's
# error code in the log and the metrics' `error.type`; anything else would be the upstream's text, so the status is.
_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def upstream_error(status: int, body: bytes) -> tuple[bytes, str]:
    """An upstream error as the client gets it (OpenAI-shaped), and the code it is logged and counted by."""
    error = _error_object(body)
    code = error.get("code") if error is not None else None
    code = str(code) if isinstance(code, (str, int)) and not isinstance(code, bool) else ""
    return _openai_error(status, error, body), code if _CODE.fullmatch(code) else str(status)


def _openai_error(status: int, error: dict[str, Any] | None, body: bytes) -> bytes:
    default_type = _TYPE_BY_STATUS.get(status, "api_error")
    if error is None:
        text = body.decode("utf-8", "replace").strip()
        # An HTML page from a front door (APIM, a load balancer) says nothing useful.
        if text and not text.startswith("<"):
            message = f"Upstream returned HTTP {status}: {text[:_MAX_TEXT]}"
        else:
            message = f"Upstream returned HTTP {status}."
        return error_body(message, type=default_type, code=str(status))
    given = error.get("message")
    message = given if isinstance(given, str) and given else f"Upstream returned HTTP {status}."
    code = error.get("code")
    extra = {k: v for k, v in error.items() if k not in ("message", "type", "param", "code")}
    return error_body(
        message,
        type=error.get("type") or default_type,
        code=str(code) if code is not None else None,
        param=error.get("param"),
        **extra,
    )


def _error_object(body: bytes) -> dict[str, Any] | None:
    if too_deep(body):  # its details could not be re-encoded: read as text
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict):
        return None
    error = parsed.get("error", parsed)
    if not isinstance(error, dict):
        # {"error": "text"} from some front doors
        return {"message": str(error)}
    return error
