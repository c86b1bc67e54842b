"""The public API the gateway serves, as data: one row per route, read by both hosts (function_app.py
declares each as a Functions HTTP trigger; the local host reads them back from it) and by the endpoints,
which serve a row by its kind.

The API is mounted three ways: OpenAI's `/v1/...`; Azure's v1 surface `/openai/v1/...` (the same routes,
for clients pointed at an Azure resource's v1 endpoint); and Azure's dated paths, which clients written for
Azure (`openai.AzureOpenAI`, Semantic Kernel) call: `/openai/deployments/{model}/{operation}` with the
gateway's model id where Azure has a deployment name, and `/openai/{assistants,threads,...}` for the
resource-scoped APIs. Their `api-version` is accepted and the group's own sent upstream instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

# Which handler serves a row (core/endpoints.py): the deployment-scoped model calls, the resource-scoped
# APIs (core/resources/), the model list and one model, the health probe, and any unknown path.
Kind = Literal["deployment", "resource", "models", "model", "health", "unknown"]
# How a deployment call's body is read: a JSON object, a multipart upload (streamed through), or either
# by its content type (image edits: multipart, or JSON for gpt-image models).
Body = Literal["json", "multipart", "json-or-multipart"]
# Where a deployment call's model comes from: the JSON body's `model`, the upload's `model` form field
# (the same field, in multipart), or the path (`/v1/engines/{model}/embeddings`).
ModelFrom = Literal["body", "path"]

GET, POST = ("GET",), ("POST",)
COLLECTION = ("GET", "POST")
ITEM = ("GET", "POST", "DELETE")
ANY_METHOD = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str  # the Functions function name: unique, the worker identifies a function by it
    route: str  # the Functions route template, under host.json's routePrefix
    methods: tuple[str, ...]
    kind: Kind
    operation: str | None = None  # deployment calls: the operation, as after /v1/ ("chat/completions")
    body: Body = "json"
    file_part: str | None = None  # multipart: the file part the upstream requires
    model_from: ModelFrom = "body"
    budgeted: bool = False  # goes upstream: counted against the caller key's limits
    authenticate: bool = True
    mount: str = "v1"  # where the API is mounted: "v1", "openai/v1", or Azure's dated "openai"


# Resource-scoped APIs: a collection route and one for everything below it, per family.
RESOURCE_FAMILIES = ("assistants", "threads", "vector_stores", "files", "batches", "responses")

# The local host tries the rows in this order, so the busiest come first. The catch-all comes last:
# it has the lowest precedence on both hosts, so unknown paths and methods get an OpenAI-shaped 404,
# not the host's empty one.
_V1: tuple[Endpoint, ...] = (
    Endpoint("chat_completions", "v1/chat/completions", POST, "deployment", "chat/completions", budgeted=True),
    Endpoint("completions", "v1/completions", POST, "deployment", "completions", budgeted=True),
    Endpoint("embeddings", "v1/embeddings", POST, "deployment", "embeddings", budgeted=True),
    Endpoint(
        "engine_embeddings",
        "v1/engines/{model}/embeddings",
        POST,
        "deployment",
        "embeddings",
        model_from="path",
        budgeted=True,
    ),
    Endpoint("image_generations", "v1/images/generations", POST, "deployment", "images/generations", budgeted=True),
    Endpoint(
        "image_edits",
        "v1/images/edits",
        POST,
        "deployment",
        "images/edits",
        body="json-or-multipart",
        file_part="image",
        budgeted=True,
    ),
    Endpoint(
        "audio_transcriptions",
        "v1/audio/transcriptions",
        POST,
        "deployment",
        "audio/transcriptions",
        body="multipart",
        file_part="file",
        budgeted=True,
    ),
    Endpoint(
        "audio_translations",
        "v1/audio/translations",
        POST,
        "deployment",
        "audio/translations",
        body="multipart",
        file_part="file",
        budgeted=True,
    ),
    # JSON in, audio bytes streamed back with the upstream's content type.
    Endpoint("audio_speech", "v1/audio/speech", POST, "deployment", "audio/speech", budgeted=True),
    *(
        endpoint
        for family in RESOURCE_FAMILIES
        for endpoint in (
            Endpoint(family, f"v1/{family}", COLLECTION, "resource", budgeted=True),
            Endpoint(f"{family}_item", f"v1/{family}/{{*rest}}", ITEM, "resource", budgeted=True),
        )
    ),
    Endpoint("health", "health", GET, "health", authenticate=False),
    Endpoint("list_models", "v1/models", GET, "models"),
    Endpoint("get_model", "v1/models/{id}", GET, "model"),
    Endpoint("unknown_route", "{*path}", ANY_METHOD, "unknown", authenticate=False),
)


def _azure_v1(row: Endpoint) -> Endpoint:
    """The row under Azure's v1 surface, `/openai/v1/...`."""
    return replace(row, name=f"openai_v1_{row.name}", route=f"openai/{row.route}", mount="openai/v1")


def _azure_deployment(row: Endpoint) -> Endpoint:
    """A deployment call at Azure's dated path, the model named where Azure names the deployment."""
    route = f"openai/deployments/{{model}}/{row.operation}"
    return replace(row, name=f"azure_{row.name}", route=route, model_from="path", mount="openai")


def _azure_resource(row: Endpoint) -> Endpoint:
    """A resource-scoped route (or the model list) at Azure's dated path, `/openai/{family}...`."""
    return replace(row, name=f"azure_{row.name}", route=f"openai/{row.route.removeprefix('v1/')}", mount="openai")


_MOUNTED = [row for row in _V1 if row.kind in ("deployment", "resource", "models", "model")]
_CATCH_ALL = _V1[-1]
# The busiest rows first, each mount in turn; the catch-all last.
ENDPOINTS: tuple[Endpoint, ...] = (
    *_V1[:-1],
    *(_azure_deployment(row) for row in _MOUNTED if row.kind == "deployment" and row.model_from == "body"),
    *(_azure_v1(row) for row in _MOUNTED),
    *(_azure_resource(row) for row in _MOUNTED if row.kind != "deployment"),
    _CATCH_ALL,
)
