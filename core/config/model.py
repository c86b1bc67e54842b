"""The resolved, runtime form of the configuration.

Everything here is computed once at load time so the request path only reads
attributes: URLs are pre-split, auth headers pre-built, params pre-merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

from core.models.families import Family
from core.models.fit import Fit
from core.models.prices import Price, dearest

# Output tokens a caller key's generating call reserves when it sets no cap (limits.reserveOutputTokens).
DEFAULT_OUTPUT_RESERVATION = 1024

# Operations a deployment-scoped request can target, as they appear after
# `/openai/deployments/{deployment}/` (Azure) or after `/v1/` (OpenAI).
KNOWN_OPERATIONS: tuple[str, ...] = ("chat/completions", "completions", "embeddings")

# How the gateway authenticates to the upstream.
#   "api-key":     a server-side key from the config, sent as `api-key`
#                  (serverless groups also send it as `Authorization: Bearer`).
#   "passthrough": the caller's own key is sent upstream as `api-key`
#                  (stulzq's behaviour when no key is configured).
#   "entra":       `Authorization: Bearer <token>` for the app's managed identity
#                  (scope https://cognitiveservices.azure.com/.default), added per request.
UpstreamAuth = Literal["api-key", "passthrough", "entra"]

# Which Azure OpenAI API a group speaks:
#   "dated": /openai/deployments/{deployment}/{op}?api-version=... (and /openai/{path}?api-version=
#            for resource-scoped calls); the deployment is in the URL.
#   "v1":    /openai/v1/{op}; the deployment goes in the body's `model`; no api-version.
Flavor = Literal["dated", "v1"]


@dataclass(frozen=True, slots=True)
class Backend:
    """One upstream target for one public model: a deployment in an Azure resource,
    or a serverless endpoint."""

    group: str
    deployment: str | None  # None for serverless groups
    api_version: str | None  # None: send no api-version (serverless without version)
    serverless: bool
    # Azure: ".../openai/deployments/{deployment}" (no trailing slash); the
    # operation is appended. Serverless: the group's baseURL as configured.
    base_url: str
    auth: UpstreamAuth
    # Static upstream headers: auth (for "api-key") then additionalHeaders.
    headers: tuple[tuple[str, str], ...]
    add_params: dict[str, object] = field(default_factory=dict)
    drop_params: frozenset[str] = frozenset()
    force_prompt: bool = False
    assistants: bool = False
    # "v1": base_url is ".../openai/v1" and the body's model becomes the deployment.
    flavor: Flavor = "dated"
    # The model behind the deployment, when the gateway recognises it, and how: "baseModel", "model id" or
    # "deployment name" (core/models/families.py).
    family: Family | None = None
    family_from: str | None = None
    # How its requests are fitted to that model (core/models/fit.py); None: sent as they come, never repaired.
    fit: Fit | None = None
    # Its resource's Responses API, which a Responses-only model's chat completions go to
    # (core/translation/translator.py's ChatViaResponses); None when the group shows no resource (serverless).
    responses_url: str | None = None
    # What its tokens cost (core/models/prices.py); None: unpriced. `price_from` says where the price came from:
    # "price", "pool member price", or the default table's model name.
    price: Price | None = None
    price_from: str | None = None
    # Worked out once from the fields above, which every call asks about (core/translation/translator.py,
    # core/outbound.py): whether a request body must be parsed and re-encoded for this backend, the names of its
    # static headers, and its URL per operation.
    rewrites_body: bool = field(init=False, repr=False, compare=False)
    header_names: frozenset[str] = field(init=False, repr=False, compare=False)
    _urls: dict[str, str] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        rewrites = self.add_params or self.drop_params or self.force_prompt or self.serverless or self.flavor == "v1"
        object.__setattr__(self, "rewrites_body", bool(rewrites))
        object.__setattr__(self, "header_names", frozenset(name for name, _ in self.headers))

    def url(self, operation: str) -> str:
        """The full upstream URL for an operation, api-version included once."""
        url = self._urls.get(operation)
        if url is None:
            url = self._urls[operation] = self._url(operation)
        return url

    def _url(self, operation: str) -> str:
        if self.serverless:
            base = _serverless_base(self.base_url, operation)
        elif self.flavor == "v1":
            return f"{self.base_url}/{operation}"
        else:
            base = f"{self.base_url}/{operation}"
        if self.api_version:
            return f"{base}?api-version={self.api_version}"
        return base


def _serverless_base(base_url: str, operation: str) -> str:
    """A serverless baseURL is a full endpoint (often ending in /chat/completions);
    aim it at the requested operation."""
    trimmed = base_url.rstrip("/")
    # Longest first, so "/chat/completions" is not mistaken for "/completions".
    for known in sorted(KNOWN_OPERATIONS, key=len, reverse=True):
        if trimmed.endswith("/" + known):
            if known == operation:
                return trimmed
            return trimmed[: -len(known)] + operation
    return f"{trimmed}/{operation}"


@dataclass(frozen=True, slots=True)
class ResourceBackend:
    """An Azure OpenAI resource serving the resource-scoped APIs (assistants, threads,
    vector stores, files, batches, responses): one per assistants-enabled group."""

    group: str
    # dated: ".../openai" (paths and ?api-version= appended); v1: ".../openai/v1".
    base_url: str
    # dated: an assistants-capable preview version; None for v1.
    api_version: str | None
    # dated: a version that serves /responses (newer than the assistants minimum); None for v1.
    responses_api_version: str | None
    flavor: Flavor
    auth: UpstreamAuth
    headers: tuple[tuple[str, str], ...]
    # The group's assistants-capable models: public id -> deployment, and back.
    deployments: dict[str, str] = field(default_factory=dict)
    public_models: dict[str, str] = field(default_factory=dict)
    header_names: frozenset[str] = field(init=False, repr=False, compare=False)  # of `headers`, worked out once

    def __post_init__(self) -> None:
        object.__setattr__(self, "header_names", frozenset(name for name, _ in self.headers))

    def url(self, segments: tuple[str, ...], query: str = "") -> str:
        """`segments` are the path after /v1/ (e.g. ("threads", "t1", "runs")), each
        percent-encoded here so none can add a segment, a query or a fragment; `query`
        is the client's encoded query string without api-version, passed on unchanged."""
        version = self.responses_api_version if segments[0] == "responses" else self.api_version
        params = [p for p in (query, f"api-version={version}" if version else "") if p]
        path = "/".join(quote(segment, safe="") for segment in segments)
        return f"{self.base_url}/{path}" + ("?" + "&".join(params) if params else "")


Strategy = Literal["priority", "round-robin", "weighted", "most-remaining"]


@dataclass(frozen=True, slots=True)
class Breaker:
    """A pool member's circuit breaker (gateway.pools.*.circuitBreaker)."""

    failure_percent: int = 50  # this share of the attempts within `window` failed: it opens
    minimum_requests: int = 10  # ...once the window holds at least this many attempts
    window: float = 60.0
    trip: float = 30.0  # seconds open before one probe
    accept_retry_after: bool = True  # a longer Retry-After keeps it open longer


@dataclass(frozen=True, slots=True)
class PoolMember:
    model: str  # the member's own public id: its health is kept under this name
    backend: Backend
    priority: int = 1
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Pool:
    """How a pooled route picks among its members and fails over (gateway.pools)."""

    strategy: Strategy
    members: tuple[PoolMember, ...]
    max_attempts: int
    time_budget: float | None = None  # None: gateway.timeouts.total alone bounds the attempts
    retry_on_timeout: bool = False
    first_byte_timeout: float | None = None
    first_byte_timeout_for: Literal["streams", "all"] = "streams"  # which calls firstByteTimeout bounds
    cooldown: float = 10.0
    breaker: Breaker = Breaker()
    max_cooldown: float = 300.0  # gateway.maxCooldown: the longest any cooldown lasts, whatever the upstream asks


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """A public model id and the backends that can serve it, in preference order; a pooled
    route (gateway.pools) also has its pool, which picks among them per request."""

    model: str
    backends: tuple[Backend, ...]
    pool: Pool | None = None
    # What a call reserves of a cost limit at: each kind of token at its dearest backend's price.
    price: Price | None = field(init=False, default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "price", dearest(backend.price for backend in self.backends))


@dataclass(frozen=True, slots=True)
class Limits:
    """A caller key's budgets; None: not limited."""

    tokens_per_minute: int | None = None
    requests_per_minute: int | None = None
    tokens_per_day: int | None = None
    # Money per UTC day and calendar month, in micro-units of the prices' currency (core/models/prices.py).
    cost_per_day: int | None = None
    cost_per_month: int | None = None
    # Output tokens a generating call reserves when it sets no cap of its own (core/reservation.py).
    reserve_output_tokens: int = DEFAULT_OUTPUT_RESERVATION


@dataclass(frozen=True, slots=True)
class CallerKey:
    """A key a caller presents to the gateway."""

    name: str
    key: str
    models: frozenset[str] | None = None  # None: every model
    # May use the resource-scoped APIs (assistants, threads, vector stores, files, batches,
    # responses), whose objects Azure shares among every caller of the resource.
    resource_apis: bool = True
    limits: Limits | None = None

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models


@dataclass(frozen=True, slots=True)
class Cors:
    """The web origins whose pages may call the gateway: `any_origin` for "*"."""

    origins: frozenset[str]
    any_origin: bool
    max_age: int


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """The project's own settings (the top-level `gateway:` key)."""

    api_keys: tuple[CallerKey, ...] = ()
    connect_timeout: float = 10.0
    read_timeout: float = 300.0  # between two reads
    total_timeout: float = 220.0  # a whole non-streamed answer, and the headers of any answer
    idle_timeout: float = 300.0  # between two complete events of a streamed answer
    keep_alive: float = 15.0  # upstream silence on a stream before the client gets an SSE comment; 0: never
    stream_timeout: float = 1800.0  # a whole streamed answer or download
    max_body_bytes: int = 25 * 1024 * 1024
    max_response_bytes: int = 128 * 1024 * 1024  # a non-streamed answer, held whole in memory
    # Drop Azure's filter-only stream chunks (empty id, `choices: []` with
    # prompt_filter_results) so clients see OpenAI-shaped streams only.
    normalize_streams: bool = True
    # An HTTP(S) or SOCKS proxy for upstream traffic, from the process environment
    # (AZURE_OPENAI_SOCKS_PROXY, AZURE_OPENAI_HTTP_PROXY or LibreChat's PROXY).
    egress_proxy: str | None = None
    # Client headers forwarded upstream besides the built-in ones: lower-cased names, or
    # prefixes ending in `*` (gateway.forwardHeaders, validated against credentials).
    forward_headers: tuple[str, ...] = ()
    cors: Cors | None = None  # browser-based clients (core/cors.py); None: no CORS headers at all
    # Whether the read timeout can never pass first on a call's JSON answer or event stream: the total deadline
    # bounds the wait for any answer's headers and a whole answer, the idle one the silence between a stream's
    # events. The transport then arms no timer per read for them (core/exchange.py), a timer aiohttp moves at
    # every read (12 thousand instructions a call: bench/README.md); a byte stream keeps its silence bound.
    reads_outlast_deadlines: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        outlast = self.read_timeout >= self.total_timeout and self.read_timeout >= self.idle_timeout
        object.__setattr__(self, "reads_outlast_deadlines", outlast)


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """Everything the request path needs, resolved and validated."""

    routes: dict[str, ModelRoute]  # public model id -> route, in config order
    settings: GatewaySettings
    source: str  # where it came from, for `check` and logs (never a secret)
    warnings: tuple[str, ...] = ()
    # Assistants-enabled groups in config order; the first is the primary, used for
    # creates that name neither a model nor an existing object.
    assistants_resources: tuple[ResourceBackend, ...] = ()
    # Every group that can serve the Responses API (not serverless, resource root known), with all
    # its models: POST /v1/responses goes to the group serving the body's model, assistants or not.
    responses_resources: tuple[ResourceBackend, ...] = ()

    @property
    def passthrough(self) -> bool:
        """True when some backend forwards the caller's own key upstream."""
        return any(b.auth == "passthrough" for r in self.routes.values() for b in r.backends)
