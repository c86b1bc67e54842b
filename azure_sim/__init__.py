"""A local HTTP server that speaks Azure OpenAI's wire format.

Why it exists: the gateway's tests, ``make run`` and the benchmark all need an upstream that behaves like Azure
OpenAI (dated ``api-version`` routes, ``api-key`` auth, Azure's error bodies, Azure's SSE quirks such as the
filter-only first event) without touching the network. It records every request it receives so tests can assert
exactly what the gateway sent upstream, and it can be told to misbehave (429, content filter, 5xx, HTML from a
proxy, a dropped stream, slow headers, slow chunks, a body left unread) per request via ``x-sim-*`` headers or
globally via ``AzureSimulator.behaviour``.

Misbehaviours of a broken upstream, for the gateway's fault tests (see ``Behaviour`` and ``FAIL_MODES``):
``x-sim-drip-ms`` writes the answer body one byte at a time; ``x-sim-encoding`` compresses it (gzip, deflate) or
labels it with an encoding nobody can decode, whatever the request's accept-encoding; ``x-sim-line-ending`` ends SSE
lines with ``crlf`` or a bare ``cr`` (both allowed by the SSE spec) instead of ``lf``; fail modes cut a byte answer
short (``truncate_chunked``, ``truncate_length``), keep a stream open after its ``[DONE]`` (``hang_after_done``) or
end it a moment later (``late_end``), answer ``x-sim-huge-bytes`` of JSON (``huge``, ``huge_chunked``,
``huge_error``), a non-standard status (``599``), a redirect without Location (``302``), or a 200 JSON answer that
is not JSON (``invalid_json``), a list page whose ``data`` is not a list of objects (``bad_list``) or a completion
whose ``choices`` are not (``bad_choices``).

It must stay cheap (the benchmark measures the gateway, not this): aiohttp.web, orjson, no access log, no
per-request work beyond what the answer needs.

Besides the deployment-scoped operations (chat, completions, embeddings, images, audio) it keeps stateful
resource-scoped objects in memory (assistants, threads, messages, runs and steps, vector stores, files, batches,
responses), served under the dated scheme ``/openai/{path}?api-version=`` and the Azure v1 scheme
``/openai/v1/{path}``. Each simulator instance is one region: its objects are its own (``AzureSimulator.store``) and
ids are random, so two instances never share one.

Layout: ``wire`` (constants and payload builders), ``behaviour`` (``x-sim-*`` directives), ``store`` (the ``Store``:
one region's objects), ``routing`` (scopes, route rows, ``Call``), ``streams`` (answers written in pieces),
``deployments/`` (one module per operation family and the ``OPERATIONS`` table, served under ``SCOPES``),
``resources/`` (``common`` helpers, one module per resource family and the ``RESOURCES`` table, served under
``RESOURCE_SCOPES``, each row with an api-version ``Family``), ``pipeline`` (read body, api-version, key),
``faults`` (canned failures), ``json_schema`` (instances of a schema, for tool arguments and structured outputs),
``models`` (which model a deployment runs, and what that model serves and accepts), ``server`` (``AzureSimulator``:
the app, the request pipeline, the threaded test harness) and ``cli``. New
operations add a handler and a table row. Imports point one way, with no cycle: a handler sees the simulator only
through its ``Call`` (the request, its ``Behaviour``, the region's ``Store``, the deployment names), never through
the ``server`` that calls it.

Chat completions answer in the shape a model would (``deployments/chat.py``): a tool call, an instance of a
``json_schema``, a JSON object, or the echo ``"Echo: " + last user text``; their parameters are checked as Azure
checks them (``deployments/chat_params.py``).

Each deployment runs a model (``models``): the one ``AzureSimulator(models={deployment: model})`` or ``--model
DEPLOYMENT=MODEL`` names, else the model it is named after; a name the table does not know behaves like gpt-4o, as
every deployment did before. Chat and completion answers name the model and its version; a Responses-only model
(gpt-5-codex, gpt-5-pro, codex-mini, o3-pro, ...) answers chat completions and completions with Azure's
``OperationNotSupported``, and so does any known model asked for legacy completions. A reasoning model refuses what
Azure's reasoning models refuse (``temperature``, ``top_p``, the penalties, logprobs, ``logit_bias``, ``max_tokens``;
``deployments/chat_params.py``), checks ``reasoning_effort`` and counts reasoning tokens in its usage.

Responses (``resources/responses.py``) answer the same way: a ``function_call`` item when the request asks for one,
a message again after its ``function_call_output``, an instance of ``text.format``'s schema, a reasoning item and
reasoning tokens for a reasoning model, streamed as OpenAI's typed events.
"""

from __future__ import annotations

from .behaviour import FAIL_MODES, Behaviour
from .cli import main
from .routing import RecordedRequest, Upload
from .server import AzureSimulator
from .store import Store

__all__ = ["FAIL_MODES", "AzureSimulator", "Behaviour", "RecordedRequest", "Store", "Upload", "main"]
