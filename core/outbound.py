"""The headers of a request the gateway sends upstream: the client's allowed ones, the gateway's own,
the upstream's credential and the group's additionalHeaders.

Every upstream request is built here, whether it goes on the caller's behalf (a model call, a
resource call) or only to find or check something for it (where an object lives, which model a
run uses). Trace headers are added by the caller of this module, for the calls that carry the trace.
"""

from __future__ import annotations

from core.auth import Caller
from core.config.model import Backend, ResourceBackend
from core.errors import invalid_api_key


def upstream_headers(
    target: Backend | ResourceBackend,
    caller: Caller,
    client_headers: list[tuple[str, str]],
    request_id: str,
    bearer: str | None = None,
) -> list[tuple[str, str]]:
    """Headers for an upstream call, less the body's own (content type and length). `bearer` is
    the Entra ID token for targets with `auth == "entra"`."""
    # The group's own headers (auth, additionalHeaders) win over same-named client headers.
    configured = target.header_names
    headers = [(name, value) for name, value in client_headers if name not in configured]
    headers.append(("accept-encoding", "identity"))
    # Azure logs this id, which ties its diagnostics to our access log.
    headers.append(("x-ms-client-request-id", request_id))
    if target.auth == "passthrough":
        key = caller.presented_key
        if key is None:
            raise invalid_api_key()
        headers.append(("api-key", key))
        if isinstance(target, Backend) and target.serverless:  # Azure AI serverless takes the Bearer form
            headers.append(("authorization", f"Bearer {key}"))
    elif target.auth == "entra":
        assert bearer is not None
        headers.append(("authorization", f"Bearer {bearer}"))
    headers.extend(target.headers)
    return headers
