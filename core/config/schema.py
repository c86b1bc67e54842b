"""The configuration file's shape: pydantic models, readable errors, unknown keys, JSON Schema.

Field names are snake_case with the file's own key as an explicit alias, so error
paths and the JSON Schema use the keys users actually write (`deploymentName`).
Every model accepts unknown keys (LibreChat grows new ones faster than we do);
`unknown_keys()` turns them into warnings instead of failures.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StrictBool,
    Tag,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from . import Finding, Path
from .api_versions import (
    API_VERSION_FORMS,
    API_VERSION_PATTERN,
    ASSISTANTS_VERSION_FORMS,
    PREVIEW_PATTERN,
    is_api_version,
    is_assistants_version,
)
from .env import ENV_REFERENCE, has_unresolved
from .model import DEFAULT_OUTPUT_RESERVATION, UpstreamAuth
from .secrets import KEY_VAULT_PREFIX, is_reference

MIB = 1024 * 1024
SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"


class Section(BaseModel):
    """Base of every model: unknown keys are kept (and warned about), not rejected.

    The JSON Schema still says `additionalProperties: false` so editors flag typos.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})

    # False for wrappers whose other keys belong to LibreChat, not to us.
    warn_unknown: ClassVar[bool] = True
    # Keys this section once had, and what replaced them: warned about with that, instead of "unknown".
    replaced_keys: ClassVar[dict[str, str]] = {}

    _path: Path | None = PrivateAttr(None)

    @property
    def path(self) -> Path | None:
        """Where in the document this section was written (set by the loader), for line numbers."""
        return self._path

    def set_path(self, path: Path) -> None:
        self._path = path


UI_ONLY = "LibreChat chat-UI setting; accepted and ignored by the gateway."

# -- constrained values -------------------------------------------------------------------
# `${VAR}` and Key Vault references are replaced before validation; one still in place could
# not be resolved and is reported as such, so checks leave it alone and the JSON Schema (which
# sees the file as written) admits it.
REFERENCE_PATTERN = f"{ENV_REFERENCE.pattern}|^\\s*{KEY_VAULT_PREFIX}"


def _unresolved(value: str) -> bool:
    return has_unresolved(value) or is_reference(value)


def _api_version(value: str) -> str:
    if _unresolved(value) or is_api_version(value):
        return value
    raise PydanticCustomError(
        "api_version", '"{version}" is not an api-version: {forms}', {"version": value, "forms": API_VERSION_FORMS}
    )


def _assistants_version(value: str) -> str:
    if _unresolved(value) or is_assistants_version(value):
        return value
    raise PydanticCustomError(
        "assistants_version",
        '"{version}" is not an Assistants api-version: {forms}',
        {"version": value, "forms": ASSISTANTS_VERSION_FORMS},
    )


def _not_blank(value: str) -> str:
    if value.strip():
        return value
    raise PydanticCustomError("blank", "Value must not be empty or blank")


def _web_search_boolean(params: dict[str, Any]) -> dict[str, Any]:
    """LibreChat's rule: its runtime reads addParams.web_search as a boolean."""
    if "web_search" in params and not isinstance(params["web_search"], bool):
        # `within` names the entry, so the problem says addParams.web_search, as LibreChat does (describe_errors).
        raise PydanticCustomError("web_search", "Input should be a valid boolean", {"within": ("web_search",)})
    return params


ApiVersion = Annotated[
    str,
    AfterValidator(_api_version),
    WithJsonSchema({"type": "string", "pattern": f"{API_VERSION_PATTERN}|{REFERENCE_PATTERN}"}),
]
AssistantsVersion = Annotated[
    str,
    AfterValidator(_assistants_version),
    WithJsonSchema({"type": "string", "pattern": f"{PREVIEW_PATTERN}|{REFERENCE_PATTERN}"}),
]
NonBlank = Annotated[
    str, AfterValidator(_not_blank), WithJsonSchema({"type": "string", "minLength": 1, "pattern": r"\S"})
]
AddParams = Annotated[
    dict[str, Any],
    AfterValidator(_web_search_boolean),
    WithJsonSchema({"type": "object", "properties": {"web_search": {"type": "boolean"}}}),
]

# -- endpoints.azureOpenAI ---------------------------------------------------------


class PriceSection(Section):
    """What a model's tokens cost, per million, in the account's currency (this project's key, not LibreChat's)."""

    input: float = Field(ge=0, description="Price of a million prompt (input) tokens.")
    cached_input: float | None = Field(
        None,
        ge=0,
        alias="cachedInput",
        description="Price of a million prompt tokens read from Azure's prompt cache; default: the input price.",
    )
    output: float = Field(
        0.0,
        ge=0,
        description="Price of a million completion (output) tokens, reasoning tokens included; 0 for embeddings.",
    )


class ModelSpec(Section):
    """A model given as an object; unset fields inherit from the group."""

    deployment_name: str | None = Field(
        None,
        alias="deploymentName",
        description="Azure deployment serving this model; overrides the group's deploymentName.",
    )
    version: ApiVersion | None = Field(
        None,
        description="Azure OpenAI api-version for this model; overrides the group's version.",
    )
    assistants: StrictBool | None = Field(
        None, description="This model serves the Assistants API (as if its group set assistants: true)."
    )
    base_model: NonBlank | None = Field(
        None,
        alias="baseModel",
        description=(
            "The Azure model the deployment runs (e.g. gpt-5-mini), so requests fit what it accepts. Default: "
            "recognised from the model id, then the deployment name. (This project's key, not LibreChat's.)"
        ),
    )
    fit_to_model: StrictBool | None = Field(
        None,
        alias="fitToModel",
        description="Fit requests to what the model accepts (overrides the group's gateway.groups setting).",
    )
    price: PriceSection | None = Field(
        None,
        description=(
            "What this deployment's tokens cost (cost in the access log and metrics, and keys' cost limits). "
            "Default: the built-in table's price for the model, when it lists it."
        ),
    )


# Union member tags: pydantic puts them in error locations, `error_path` drops them.
MODEL_FLAG = "flag"
MODEL_OBJECT = "object"


def _model_value_kind(value: Any) -> str | None:
    """Pick the union member from the value's type, so a bad value gets one clear error."""
    if isinstance(value, bool):
        return MODEL_FLAG
    if isinstance(value, (dict, ModelSpec)):
        return MODEL_OBJECT
    return None


ModelValue = Annotated[
    Annotated[StrictBool, Tag(MODEL_FLAG)] | Annotated[ModelSpec, Tag(MODEL_OBJECT)],
    Discriminator(
        _model_value_kind,
        custom_error_type="model_value",
        custom_error_message=(
            "Input should be true or a mapping with deploymentName / version / assistants / baseModel / fitToModel"
        ),
    ),
]


class Group(Section):
    """A set of models sharing one Azure resource (or one serverless endpoint) and its settings."""

    group: str = Field(description="Unique name of the group; shown in logs and `check`.")
    api_key: str | None = Field(
        None,
        alias="apiKey",
        description=(
            'Key sent upstream as `api-key` (e.g. "${WESTUS_API_KEY}"). Required, unless '
            "gateway.groups.<group>.auth is entra or passthrough."
        ),
    )
    instance_name: str | None = Field(
        None,
        alias="instanceName",
        description=(
            "Azure OpenAI resource name (host https://{instanceName}.openai.azure.com), or a full "
            "host containing .azure.com. Required unless serverless."
        ),
    )
    deployment_name: str | None = Field(
        None,
        alias="deploymentName",
        description="Default deployment for the group's models; required when a model is set to true.",
    )
    version: ApiVersion | None = Field(
        None,
        description='Default api-version (e.g. "2024-10-21"); required when a model is set to true.',
    )
    base_url: str | None = Field(
        None,
        alias="baseURL",
        description=(
            "Custom upstream URL (APIM, Cloudflare AI Gateway, a local simulator). May contain the "
            "placeholders ${INSTANCE_NAME} and ${DEPLOYMENT_NAME}. For serverless groups: the full "
            "endpoint, e.g. https://x.inference.ai.azure.com/v1/chat/completions."
        ),
    )
    additional_headers: dict[str, str] = Field(
        default_factory=dict,
        alias="additionalHeaders",
        description="Extra upstream headers (values may use ${VAR}); they override same-named auth headers.",
    )
    serverless: StrictBool = Field(
        False,
        description="An Azure AI serverless (Models-as-a-Service) endpoint: needs only baseURL and apiKey.",
    )
    add_params: AddParams = Field(
        default_factory=dict,
        alias="addParams",
        description=(
            "Body parameters merged over each request (e.g. {max_tokens: 2048}); "
            "web_search, if set, must be a boolean (LibreChat's rule)."
        ),
    )
    drop_params: list[str] = Field(
        default_factory=list,
        alias="dropParams",
        description="Body parameters removed from each request (applied after addParams).",
    )
    force_prompt: StrictBool = Field(
        False,
        alias="forcePrompt",
        description="Send a completions-style `prompt` instead of chat `messages` and map the answer back.",
    )
    assistants: StrictBool = Field(False, description="This group serves the Assistants API.")
    models: dict[str, ModelValue] = Field(
        description=(
            "Public model ids served by this group: `true` (use the group's deploymentName and "
            "version) or an object overriding them."
        ),
    )

    @property
    def passthrough(self) -> bool:
        """No server-side key: each caller's own key goes upstream."""
        return not self.api_key

    def served_models(self) -> dict[str, ModelSpec | bool]:
        """The models this group serves, in file order (`false` switches a model off)."""
        return {name: value for name, value in self.models.items() if value is not False}

    # A model's own value wins; an unset (or empty) one inherits the group's.
    def deployment_for(self, model: ModelSpec | bool) -> str | None:
        own = model.deployment_name if isinstance(model, ModelSpec) else None
        return own or self.deployment_name

    def version_for(self, model: ModelSpec | bool) -> str | None:
        own = model.version if isinstance(model, ModelSpec) else None
        return own or self.version

    def assistants_for(self, model: ModelSpec | bool) -> bool:
        return self.assistants or (isinstance(model, ModelSpec) and bool(model.assistants))

    def assistants_deployments(self) -> dict[str, str]:
        """Public model id -> deployment for the assistants-capable models, in file order."""
        return {
            model: self.deployment_for(spec) or ""
            for model, spec in self.served_models().items()
            if self.assistants_for(spec)
        }


class AzureOpenAISection(Section):
    """LibreChat's `endpoints.azureOpenAI` section."""

    groups: list[Group] = Field(min_length=1, description="Model groups; at least one.")
    assistants: StrictBool = Field(
        False, description="Enable the Assistants API; some group or model must set assistants: true."
    )
    # LibreChat chat-UI settings: accepted so a real librechat.yaml loads, unused here.
    title_model: str | None = Field(None, alias="titleModel", description=UI_ONLY)
    title_convo: StrictBool | None = Field(None, alias="titleConvo", description=UI_ONLY)
    title_method: str | None = Field(None, alias="titleMethod", description=UI_ONLY)
    summarize: StrictBool | None = Field(None, description=UI_ONLY)
    summary_model: str | None = Field(None, alias="summaryModel", description=UI_ONLY)
    plugins: StrictBool | None = Field(None, description=UI_ONLY)
    custom_order: float | None = Field(None, alias="customOrder", description=UI_ONLY)


# -- gateway ------------------------------------------------------------------------


class LimitsSection(Section):
    """A caller key's budgets; any subset. Over one, the caller gets OpenAI's 429 `rate_limit_exceeded` (a cost
    limit: `insufficient_quota`)."""

    tokens_per_minute: int | None = Field(
        None, gt=0, alias="tokensPerMinute", description="Tokens (prompt + completion) per minute."
    )
    requests_per_minute: int | None = Field(None, gt=0, alias="requestsPerMinute", description="Requests per minute.")
    tokens_per_day: int | None = Field(
        None, gt=0, alias="tokensPerDay", description="Tokens (prompt + completion) per UTC day."
    )
    cost_per_day: float | None = Field(
        None,
        gt=0,
        alias="costPerDay",
        description="Money per UTC day, in the prices' currency (the models' `price`); over it: 429.",
    )
    cost_per_month: float | None = Field(
        None,
        gt=0,
        alias="costPerMonth",
        description="Money per UTC calendar month, in the prices' currency; over it: 429 insufficient_quota.",
    )
    reserve_output_tokens: int = Field(
        DEFAULT_OUTPUT_RESERVATION,
        ge=0,
        alias="reserveOutputTokens",
        description=(
            "Output tokens reserved at admission for a generating call that sets no max_tokens, "
            "max_completion_tokens or max_output_tokens; the answer's real usage replaces the reservation."
        ),
    )


class ApiKey(Section):
    """A key callers present to the gateway (`Authorization: Bearer KEY` or `api-key: KEY`)."""

    key: NonBlank = Field(description='The secret; use "${VAR}" to keep it out of the file.')
    name: NonBlank = Field(description="Who holds the key; shown in logs instead of the key.")
    models: list[str] | None = Field(None, description="Model ids this key may use; omit to allow every model.")
    resources: StrictBool | None = Field(
        None,
        description=(
            "May use the assistants, threads, vector stores, files, batches and responses APIs, whose objects "
            "every caller of the Azure resource shares. Default: true for a key without `models`, false with it."
        ),
    )
    limits: LimitsSection | None = Field(
        None,
        description=(
            "Budgets for this key; shared by every instance when the USAGE_TABLE_ENDPOINT app setting names a "
            "table service."
        ),
    )

    @property
    def limits_cost(self) -> bool:
        """Whether the key has a limit in money (costPerDay or costPerMonth)."""
        limits = self.limits
        return limits is not None and (limits.cost_per_day is not None or limits.cost_per_month is not None)


class Timeouts(Section):
    """Upstream timeouts, in seconds."""

    connect: float = Field(10.0, gt=0, description="Seconds to connect to the upstream.")
    read: float = Field(300.0, gt=0, description="Seconds to wait for upstream data between reads.")
    total: float = Field(
        220.0,
        gt=0,
        description=(
            "Seconds for a whole non-streamed answer, headers and body (under Azure Functions' 230 s front-end "
            "limit); also how long the response headers of any answer may take."
        ),
    )
    idle: float = Field(300.0, gt=0, description="Seconds allowed between two complete events of a streamed answer.")
    keepAlive: float = Field(
        15.0,
        ge=0,
        lt=230,
        description=(
            "Seconds of upstream silence on a streamed (SSE) answer after which the client gets an SSE comment "
            "(`: keep-alive`), which clients ignore: Azure Functions' front end cuts a response silent for 230 s. "
            "0: never."
        ),
    )
    stream: float = Field(
        1800.0, gt=0, description="Seconds for a whole streamed answer or byte download, from the request upstream."
    )


def _origin(value: str) -> str:
    """`*`, or an origin as browsers send it: scheme://host[:port], nothing after."""
    if value == "*" or re.fullmatch(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?", value):
        return value
    raise PydanticCustomError("origin", 'an origin is "*" or scheme://host[:port], e.g. https://chat.example.com')


class CorsSection(Section):
    """Browser-based clients (gateway.cors): which web origins may call the gateway."""

    allow_origins: list[Annotated[str, AfterValidator(_origin)]] = Field(
        alias="allowOrigins",
        min_length=1,
        description='Origins whose pages may call the gateway ("https://chat.example.com"), or ["*"] for any.',
    )
    max_age: int = Field(600, alias="maxAge", ge=0, description="Seconds a browser may keep a preflight's answer.")


class GroupSection(Section):
    """The gateway's own settings for one azureOpenAI group, kept out of the group for LibreChat."""

    api: Literal["dated", "v1"] = Field(
        "dated",
        description=(
            'Which Azure OpenAI API the group speaks: "dated" (/openai/deployments/{deployment}/...'
            '?api-version=, the default) or "v1" (/openai/v1/..., no api-version; not for serverless groups).'
        ),
    )
    auth: Literal["key", "entra", "passthrough"] = Field(
        "key",
        description=(
            "How the gateway authenticates to the group's Azure resource: \"key\" (the group's apiKey, which it "
            'must then have), "entra" (a bearer token for the app\'s managed identity, scope '
            'https://cognitiveservices.azure.com/.default; the group must not set apiKey) or "passthrough" '
            "(each caller's own Azure key is sent upstream; the group must not set apiKey)."
        ),
    )
    fit_to_model: StrictBool = Field(
        True,
        alias="fitToModel",
        description=(
            "Fit requests to what the model behind each deployment accepts (a reasoning model gets "
            "max_completion_tokens for max_tokens and no non-default sampling parameters) and learn from "
            "Azure's refusals. false sends every request as it comes."
        ),
    )
    assistants_version: AssistantsVersion | None = Field(
        None,
        alias="assistantsVersion",
        description=(
            "api-version for the Assistants, files, batches and related APIs of a dated group: a "
            "YYYY-MM-DD-preview version dated 2024-02-15 or later. Default: the newest such preview "
            "version among the group's versions, else 2025-04-01-preview."
        ),
    )


# -- gateway.pools ------------------------------------------------------------------------


class PoolMemberSection(Section):
    """A pool member given as an object: a model id from the groups, with its place in the pool."""

    model: NonBlank = Field(description="A model id served by one of the azureOpenAI groups.")
    priority: int = Field(
        1, ge=1, description="Lower numbers are used first (strategy priority); members that tie share by weight."
    )
    weight: int = Field(1, ge=1, description="Relative share of requests among members of equal priority.")
    price: PriceSection | None = Field(
        None, description="What this member's tokens cost when this pool serves them; default: its model's price."
    )


POOL_ID = "id"
POOL_OBJECT = "object"


def _pool_member_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return POOL_ID
    if isinstance(value, (dict, PoolMemberSection)):
        return POOL_OBJECT
    return None


PoolMemberValue = Annotated[
    Annotated[NonBlank, Tag(POOL_ID)] | Annotated[PoolMemberSection, Tag(POOL_OBJECT)],
    Discriminator(
        _pool_member_kind,
        custom_error_type="pool_member",
        custom_error_message="Input should be a model id or a mapping with model / priority / weight",
    ),
]


class CircuitBreaker(Section):
    """When a member is taken out of its pool for failing too often (per gateway instance). 429s never count,
    and it never takes out the last members a pool could try: then they are tried anyway."""

    replaced_keys: ClassVar[dict[str, str]] = {
        "failures": "the breaker judges a failure rate, not a count (failurePercent, over at least minimumRequests)"
    }

    failure_percent: int = Field(
        50,
        ge=1,
        le=100,
        alias="failurePercent",
        description="Percent of the attempts within `window` that failed (5xx, 408, unreachable, too slow, a "
        "stream broken by the upstream) for it to open.",
    )
    minimum_requests: int = Field(
        10,
        ge=1,
        alias="minimumRequests",
        description="Attempts the window must hold before their failure rate is judged.",
    )
    window: float = Field(60.0, gt=0, description="Seconds of attempts the failure rate is taken over.")
    trip: float = Field(30.0, gt=0, description="Seconds it stays open before one probe request may try the member.")
    accept_retry_after: StrictBool = Field(
        True,
        alias="acceptRetryAfter",
        description="Stay open for the failing answer's Retry-After when it is longer than `trip` (as APIM does).",
    )


class PoolSection(Section):
    """One public model id spread over several models of the groups, with failover between them."""

    strategy: Literal["priority", "round-robin", "weighted", "most-remaining"] = Field(
        "priority",
        description=(
            "priority: the lowest priority number with a healthy member, ties spread by weight; round-robin: "
            "each member in turn; weighted: at random by weight; most-remaining: the member whose last answer "
            "reported the most x-ratelimit-remaining-tokens (then -requests)."
        ),
    )
    models: list[PoolMemberValue] = Field(
        description="Members: model ids from the groups (priority 1, weight 1), or {model, priority, weight}."
    )
    max_attempts: int | None = Field(
        None, ge=1, alias="maxAttempts", description="Members one request may try; default: all of them."
    )
    time_budget: float | None = Field(
        None,
        gt=0,
        alias="timeBudget",
        description="Seconds one request may spend on attempts before answering; default: gateway.timeouts.total.",
    )
    retry_on_timeout: StrictBool = Field(
        False,
        alias="retryOnTimeout",
        description=(
            "Try the next member after a read timeout (gateway.timeouts.read) on a request already sent; "
            "off by default because the timed-out request may still run, and be billed, upstream."
        ),
    )
    first_byte_timeout: float | None = Field(
        None,
        gt=0,
        alias="firstByteTimeout",
        description=(
            "Seconds a member may take to send its response headers before the next member is tried; "
            "streamed calls only, unless firstByteTimeoutFor is all."
        ),
    )
    first_byte_timeout_for: Literal["streams", "all"] = Field(
        "streams",
        alias="firstByteTimeoutFor",
        description=(
            "Which calls firstByteTimeout bounds: streams (their headers come with the first event), or all. "
            "A non-streamed answer's headers come only once it is generated: giving up on it and asking the "
            "next member may bill the call twice."
        ),
    )
    cooldown: float = Field(
        10.0,
        gt=0,
        description=(
            "Seconds a member sits out after a 429 that names no Retry-After, retry-after-ms or "
            "x-ratelimit-reset-requests/-tokens."
        ),
    )
    circuit_breaker: CircuitBreaker = Field(
        default_factory=CircuitBreaker, alias="circuitBreaker", description="Frequent failures take a member out."
    )

    def members(self) -> list[PoolMemberSection]:
        """Every member as an object; a plain id has priority 1 and weight 1."""
        return [PoolMemberSection(model=item) if isinstance(item, str) else item for item in self.models]


# Never forwarded, whatever gateway.forwardHeaders says: credentials (a caller's key must not
# reach Azure), hop-by-hop headers (they describe one connection, not the request), and the
# headers the gateway sets itself.
UNFORWARDABLE_HEADERS = frozenset(
    {
        "authorization",
        "api-key",
        "cookie",
        "proxy-authorization",
        "x-functions-key",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-type",
        "accept-encoding",
        "expect",
        "x-ms-client-request-id",
    }
)
_HEADER_NAME = re.compile(r"[!#$%&'+.^_`|~0-9a-z-]+")  # an RFC 9110 token, less `*`


def forwardable_header(name: str) -> str:
    """A gateway.forwardHeaders entry, lower-cased: a header name, or a prefix ending in `*`."""
    pattern = name.strip().lower()
    wildcard = pattern.endswith("*")
    prefix = pattern[:-1] if wildcard else pattern
    if not (_HEADER_NAME.fullmatch(prefix) or (wildcard and not prefix)):
        raise PydanticCustomError(
            "header_name",
            '"{name}" is not a header name (a trailing * matches a prefix, e.g. "x-team-*").',
            {"name": name},
        )
    if not wildcard and prefix in UNFORWARDABLE_HEADERS:
        raise PydanticCustomError(
            "unforwardable_header",
            '"{name}" is never forwarded: credentials, hop-by-hop headers and the headers the gateway sets itself '
            "stay out of upstream requests.",
            {"name": name},
        )
    matched = sorted(header for header in UNFORWARDABLE_HEADERS if wildcard and header.startswith(prefix))
    if matched:
        raise PydanticCustomError(
            "unforwardable_header",
            '"{name}" would match {matched}, which must never be forwarded; name the headers you need instead.',
            {"name": name, "matched": ", ".join(matched)},
        )
    return pattern


class GatewaySection(Section):
    """The gateway's own settings (top-level `gateway:`); LibreChat ignores this key."""

    api_keys: list[ApiKey] = Field(
        default_factory=list,
        alias="apiKeys",
        description="Caller keys. Required when groups hold server-side apiKeys, unless allowAnonymous.",
    )
    allow_anonymous: StrictBool = Field(
        False,
        alias="allowAnonymous",
        description="Serve callers without a gateway key (only behind another access control).",
    )
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Upstream timeouts.")
    max_body_bytes: int = Field(
        25 * MIB, gt=0, alias="maxBodyBytes", description="Largest request body accepted, in bytes."
    )
    max_response_bytes: int = Field(
        128 * MIB,
        gt=0,
        alias="maxResponseBytes",
        description=(
            "Largest non-streamed upstream answer the gateway holds in memory, in bytes; a larger one is a 502. "
            "Streams and downloads are relayed as they come and are not limited."
        ),
    )
    normalize_streams: StrictBool = Field(
        True,
        alias="normalizeStreams",
        description="Drop Azure's filter-only stream chunks so clients see OpenAI-shaped streams.",
    )
    groups: dict[str, GroupSection] = Field(
        default_factory=dict,
        description="Per-group gateway settings, keyed by the azureOpenAI group's name.",
    )
    cors: CorsSection | None = Field(
        None,
        description="Let web pages on these origins call the gateway from the browser (CORS); none by default.",
    )
    forward_headers: list[Annotated[str, AfterValidator(forwardable_header)]] = Field(
        default_factory=list,
        alias="forwardHeaders",
        description=(
            "Client request headers to forward upstream besides the built-in few (OpenAI-Beta, traceparent, "
            'tracestate, Accept, User-Agent); case-insensitive, a trailing * matches a prefix ("x-team-*"). '
            "Credentials and hop-by-hop headers are refused."
        ),
    )

    max_cooldown: float = Field(
        300.0,
        gt=0,
        alias="maxCooldown",
        description=(
            "Longest a pool member is benched on an upstream's word (Retry-After, retry-after-ms, "
            "x-ratelimit-reset-*) or a pool's cooldown, and so the longest Retry-After the gateway tells a caller."
        ),
    )
    pools: dict[str, PoolSection] = Field(
        default_factory=dict,
        description=(
            "Public model ids served by several models of the groups, with failover: the key is the id clients "
            "send (it may equal one of its members' ids)."
        ),
    )

    def group_section(self, name: str) -> GroupSection:
        """A group's settings; the defaults when `gateway.groups` does not name it."""
        return self.groups.get(name) or GroupSection()


def _gateway_field() -> Any:
    return Field(None, description="The gateway's own settings (optional).")


# -- the document shapes the loader accepts -------------------------------------------


class LibreChatEndpoints(Section):
    model_config = ConfigDict(json_schema_extra={"additionalProperties": True})
    warn_unknown: ClassVar[bool] = False

    azure_openai: AzureOpenAISection = Field(alias="azureOpenAI", description="Azure OpenAI model groups.")


class LibreChatFile(Section):
    """A whole librechat.yaml: only endpoints.azureOpenAI (and gateway) are read."""

    model_config = ConfigDict(title="librechat.yaml", json_schema_extra={"additionalProperties": True})
    warn_unknown: ClassVar[bool] = False

    endpoints: LibreChatEndpoints = Field(description="LibreChat endpoints; only azureOpenAI is read.")
    gateway: GatewaySection | None = _gateway_field()

    def endpoint(self) -> AzureOpenAISection:
        return self.endpoints.azure_openai


class SectionFile(Section):
    """Just the section: `azureOpenAI:` at the top level."""

    model_config = ConfigDict(title="azureOpenAI section")

    azure_openai: AzureOpenAISection = Field(alias="azureOpenAI", description="Azure OpenAI model groups.")
    gateway: GatewaySection | None = _gateway_field()

    def endpoint(self) -> AzureOpenAISection:
        return self.azure_openai


class GroupsFile(AzureOpenAISection):
    """The section's contents at the top level (`groups:` ...)."""

    model_config = ConfigDict(title="azureOpenAI contents")

    gateway: GatewaySection | None = _gateway_field()

    def endpoint(self) -> AzureOpenAISection:
        return self


class StulzqDeployment(Section):
    deployment_name: str = Field(description="Azure deployment name.")
    model_name: str = Field(description="Public (OpenAI) model id.")
    endpoint: str = Field(description="Resource endpoint, e.g. https://x.openai.azure.com/.")
    api_key: str | None = Field(None, description="Key sent upstream; omit to pass each caller's own key upstream.")
    api_version: ApiVersion | None = Field(None, description="api-version; default 2024-02-01.")


class StulzqFile(Section):
    """stulzq/azure-openai-proxy's config.yaml."""

    model_config = ConfigDict(title="stulzq config.yaml")

    api_base: str = Field("/v1", description="Ignored: the gateway always serves /v1.")
    deployment_config: list[StulzqDeployment] = Field(min_length=1, description="One entry per public model.")
    gateway: GatewaySection | None = _gateway_field()


Document = LibreChatFile | SectionFile | GroupsFile | StulzqFile


# -- errors and warnings ----------------------------------------------------------------


def document_path(loc: tuple[int | str, ...]) -> Path:
    """A pydantic error location as keys of the document: union member tags dropped."""
    return tuple(
        part
        for i, part in enumerate(loc)
        # A union member's tag is not a key the user wrote.
        if not (i >= 2 and loc[i - 2] == "models" and part in (MODEL_FLAG, MODEL_OBJECT, POOL_ID, POOL_OBJECT))
    )


def error_path(loc: tuple[int | str, ...]) -> str:
    """`('groups', 1, 'dropParams')` -> `groups[1].dropParams`."""
    text = ""
    for part in document_path(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def describe_errors(error: ValidationError) -> list[Finding]:
    """Every pydantic error as `path: message`, in document order."""
    problems = []
    for item in error.errors():
        loc = (*item["loc"], *item.get("ctx", {}).get("within", ()))  # a validator of a whole mapping may name an entry
        path = error_path(loc)
        message = f"{path}: {item['msg']}" if path else item["msg"]
        problems.append(Finding(message, document_path(loc)))
    return problems


def unknown_keys(model: BaseModel) -> list[Finding]:
    """Warnings for keys no model declares, with their path and a likely intended key."""
    warnings: list[Finding] = []
    if isinstance(model, Section) and model.warn_unknown:
        known = [field.alias or name for name, field in type(model).model_fields.items()]
        for key in model.model_extra or {}:
            path = (*(model.path or ()), key)
            message = f'Unknown key "{error_path(path)}" is ignored.'
            close = difflib.get_close_matches(str(key), known, n=1)
            if key in model.replaced_keys:
                message = f'"{error_path(path)}" is ignored: {model.replaced_keys[key]}.'
            elif close:
                message = message[:-1] + f' (did you mean "{close[0]}"?)'
            warnings.append(Finding(message, path))
    for name in type(model).model_fields:
        warnings.extend(_unknown_in(getattr(model, name)))
    return warnings


def _unknown_in(value: Any) -> list[Finding]:
    if isinstance(value, BaseModel):
        return unknown_keys(value)
    if isinstance(value, list):
        return [w for item in value for w in _unknown_in(item)]
    if isinstance(value, dict):
        return [w for item in value.values() for w in _unknown_in(item)]
    return []


# -- JSON Schema --------------------------------------------------------------------------


def json_schema() -> dict[str, Any]:
    """The JSON Schema of every accepted document (for editors: yaml-language-server etc.)."""
    schema = TypeAdapter(Document).json_schema(by_alias=True)
    return {
        "$schema": SCHEMA_URI,
        "title": "aoai-gateway configuration",
        "description": (
            "A librechat.yaml (endpoints.azureOpenAI), the azureOpenAI section alone or its "
            "contents, or a stulzq/azure-openai-proxy config.yaml; each may add `gateway:`."
        ),
        **schema,
    }


def main() -> None:
    """`python -m core.config.schema > config/schema.json`"""
    sys.stdout.write(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()


def upstream_auth(group: Group, settings: GroupSection) -> UpstreamAuth:
    """How the gateway authenticates to a group's upstream."""
    if settings.auth == "entra":
        return "entra"
    return "passthrough" if settings.auth == "passthrough" else "api-key"
