"""One resource-scoped request, authorised and parsed: what targeting, isolation, forwarding and listing read."""

from __future__ import annotations

from typing import Any

from core.config.model import ResourceBackend, RuntimeConfig
from core.exchange import Exchange
from core.outbound import upstream_headers
from core.relay import JSON
from core.resources.paths import ResourcePath
from core.uploads import Upload
from core.upstream.transport import UpstreamResponse

# The query parameters the gateway sets itself upstream: a client's, in any case, never go with them (Azure reads
# `API-Version` as `api-version`, so a second one would reach it).
OWN_QUERY_PARAMETERS = frozenset({"api-version"})


class ResourceCall:
    def __init__(self, exchange: Exchange, path: ResourcePath) -> None:
        self.exchange = exchange
        self.config: RuntimeConfig = exchange.state.config  # the snapshot this request started with, to its end
        self.caller = exchange.caller
        self.record = exchange.record
        self.path = path
        self.family = path.family
        self.method = exchange.request.method
        # The groups that may serve it: any group serving the model for responses, assistants groups otherwise.
        self.candidates = (
            self.config.responses_resources if path.family == "responses" else self.config.assistants_resources
        )
        self.body: bytes | Upload | None = None
        self.payload: dict[str, Any] | None = None
        self.bearer: str | None = None  # the Entra ID token, when some group needs one

    @property
    def query(self) -> list[tuple[str, str]]:
        """The client's query parameters, less the gateway's own in any case (the group's api-version is added)."""
        items = self.exchange.request.query_params.multi_items()
        return [(k, v) for k, v in items if k.lower() not in OWN_QUERY_PARAMETERS]

    @property
    def max_bytes(self) -> int:
        """The most of a stored object the gateway reads to check it (gateway.maxBodyBytes)."""
        return self.config.settings.max_body_bytes

    def headers_for(self, resource: ResourceBackend) -> list[tuple[str, str]]:
        """The headers of this call, sent to `resource` on the caller's behalf."""
        headers = self.exchange.upstream_headers(resource, self.bearer)
        if isinstance(self.body, Upload):
            headers += self.body.headers()
        elif self.body is not None:
            headers.append(("content-type", JSON))
        return headers

    async def locate(self, family: str, object_id: str) -> ResourceBackend:
        """The candidate group holding `object_id` (core/resources/affinity.py)."""
        return await self.exchange.gateway.locator.locate(family, object_id, self.candidates, self.status_of)

    async def fetch(self, resource: ResourceBackend, segments: tuple[str, ...]) -> UpstreamResponse:
        """A GET made to look something up for the call, not as the call (no client headers, no trace)."""
        headers = upstream_headers(resource, self.caller, [], self.record.request_id, self.bearer)
        return await self.exchange.gateway.transport.send("GET", resource.url(segments), headers, None)

    async def status_of(self, resource: ResourceBackend, path: str) -> int:
        """The status of a GET on `path` ("{family}/{id}") in `resource`: does it hold this object?
        Every id the locator is given was checked to be a plain token, so splitting is exact."""
        upstream = await self.fetch(resource, tuple(path.split("/")))
        upstream.release()
        return upstream.status
