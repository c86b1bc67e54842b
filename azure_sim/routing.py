"""The routing model: scopes (URL schemes), api-version families, operation and resource rows, the ``Call`` a
handler sees, and the ``RecordedRequest`` tests inspect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .behaviour import Behaviour
from .models import DEFAULT_PROFILE, ModelProfile
from .store import Store

V1_API_VERSIONS = frozenset({"v1", "preview"})


@dataclass(slots=True)
class RecordedRequest:
    """One request as the simulator received it, plus how its response ended.

    ``disconnected``: the client went away before the simulator finished its response (mid-stream, or during an
    ``x-sim-delay-ms`` wait); this is how tests prove the gateway cancels upstream work. ``completed``: the whole
    response was written. ``aborted``: the simulator itself dropped the connection (``x-sim-fail: abort``).
    """

    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]  # lower-cased names; a repeated header keeps its last value
    header_list: list[tuple[str, str]]  # every header line as received (lower-cased names), repeats included
    body: bytes
    json: Any  # parsed body, or None when empty / not JSON
    received_at: float = 0.0  # time.monotonic()
    disconnected: bool = False
    completed: bool = False
    aborted: bool = False
    operation: str = ""  # Azure's operation id of the matched route ("Runs_Create"); "" for an unknown path
    peer: str = ""  # the client's host:port: the same for requests over one kept-alive connection
    # multipart bodies (``body`` stays empty and ``json`` None): the non-file fields, and the first file part as
    # read (streamed, never held twice): its size, sha256 (hex) and file name
    form: dict[str, str] = field(default_factory=dict)
    upload_bytes: int = 0
    upload_sha256: str = ""
    upload_filename: str = ""


Handler = Callable[["Call"], Awaitable[web.StreamResponse]]

# How a route's body is read: a JSON object (required), a JSON object or nothing, or multipart/form-data.
JSON_BODY = "json"
OPTIONAL_JSON_BODY = "optional-json"
MULTIPART_BODY = "multipart"


@dataclass(frozen=True, slots=True)
class Scope:
    """A family of routes: how they are prefixed, which api-version they take, where the model comes from."""

    name: str
    prefixes: tuple[str, ...]
    api_version_required: bool  # True: a dated api-version is mandatory (Azure's legacy scheme)
    deployment_in_path: bool  # True: model is fixed per operation (Azure); False: echo body["model"] (serverless)
    api_versions: frozenset[str] | None = None  # when set, the only values an (optional) api-version may take
    model_is_deployment: bool = False  # body["model"] is required and names a deployment (Azure v1)


AZURE = Scope("azure", ("/openai/deployments/{deployment}/",), api_version_required=True, deployment_in_path=True)
SERVERLESS = Scope("serverless", ("/v1/", "/"), api_version_required=False, deployment_in_path=False)
AZURE_V1 = Scope(
    "azure-v1",
    ("/openai/v1/",),
    api_version_required=False,
    deployment_in_path=False,
    api_versions=V1_API_VERSIONS,
    model_is_deployment=True,
)
AZURE_RESOURCE = Scope("azure-resource", ("/openai/",), api_version_required=True, deployment_in_path=False)
SCOPES: tuple[Scope, ...] = (AZURE, SERVERLESS, AZURE_V1)  # where deployment-scoped OPERATIONS are served
RESOURCE_SCOPES: tuple[Scope, ...] = (AZURE_RESOURCE, AZURE_V1)  # where RESOURCES are served


@dataclass(frozen=True, slots=True)
class Family:
    """Which dated api-versions a resource family accepts (the v1 scheme accepts every family)."""

    name: str
    min_preview: str | None = None  # None: any valid dated version; else a `-preview` version dated >= this


ASSISTANTS_API = Family("assistants", "2024-02-15")  # assistants, threads, vector stores
RESPONSES_API = Family("responses", "2025-03-01")
ANY_API_VERSION = Family("files/batches")


@dataclass(frozen=True, slots=True)
class Operation:
    """One upstream operation: its path suffix, Azure's operation id (used in 429 messages), its model, handler."""

    path: str
    azure_name: str
    model: str
    handler: Handler
    streams: bool = False  # honours "stream": true (matters for x-sim-fail: abort)
    body: str = JSON_BODY
    scopes: tuple[Scope, ...] = SCOPES
    always_streams: bool = False  # writes its answer in pieces and handles x-sim-fail: abort itself
    keep_upload: bool = False  # keep the file parts' bytes (not just their size and hash)
    # Azure's name for the operation when the deployment's model decides how it answers (models.CHAT_COMPLETION,
    # models.COMPLETION): a model that does not serve it answers OperationNotSupported; None: any model serves it
    model_operation: str | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource-scoped route: method, path under the scope prefix (aiohttp pattern), operation id, handler."""

    method: str
    path: str
    azure_name: str
    family: Family
    handler: Handler
    body: str = OPTIONAL_JSON_BODY
    streams: bool = False
    always_streams: bool = False
    keep_upload: bool = False


Route = Operation | Resource


@dataclass(slots=True)
class Upload:
    """A file part of a multipart body: read in chunks, hashed as it arrives; bytes kept only if the route asks."""

    field: str
    filename: str
    content_type: str
    size: int
    sha256: str
    data: bytearray | None = None


@dataclass(slots=True)
class Call:
    """A request that passed the shared checks, as an operation handler sees it."""

    request: web.Request
    record: RecordedRequest
    body: dict[str, Any]  # the JSON object, or the non-file fields of a multipart body
    model: str
    behaviour: Behaviour  # effective for this request
    store: Store  # this region's objects (the simulator's)
    deployments: set[str] | None  # the simulator's deployment names; None: any name
    uploads: dict[str, Upload] = field(default_factory=dict)  # multipart file parts by field name
    models: Mapping[str, str] = field(default_factory=dict)  # deployment -> the model it runs, where not its own name
    profile: ModelProfile = DEFAULT_PROFILE  # the deployment's model (operations with a ``model_operation``)
