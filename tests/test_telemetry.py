"""Metrics and traces through the real Azure Monitor exporter, its connection string's IngestionEndpoint pointed at a
recording server on 127.0.0.1: the GenAI names, dimensions and values are right, the upstream call is the request
span's child and carries its traceparent to Azure, and no prompt, key or completion text is ever exported. Then
direct tests, fast: Telemetry built from real OpenTelemetry SDK parts and held to exactly what it exports."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from core.accesslog import AccessRecord
from core.metrics import Counter, Histogram, MetricsExport
from core.models.prices import Price, default_price
from core.telemetry import (
    COST_BUCKETS,
    DURATION_BUCKETS,
    OTHER_MODEL,
    SCOPE,
    TOKEN_BUCKETS,
    Instruments,
    Telemetry,
    configure,
    operation_name,
)
from tests.support.access_log import access_line
from tests.support.azurite import make_self_signed_cert
from tests.support.inprocess_gateway import InProcessGateway
from tests.support.metric_exporter import RecordingExporter
from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG
from tests.support.streams import CHAT

PROMPT = "the secret prompt words zebra-quartz"


class Ingestion:
    """Application Insights' ingestion endpoint, recording every envelope posted to /v2.1/track."""

    def __init__(self, directory: Path) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.authorizations: list[str | None] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                recorder.raw.append(body)
                recorder.authorizations.append(self.headers.get("authorization"))
                items = json.loads(body)
                items = items if isinstance(items, list) else [items]
                recorder.envelopes.extend(items)
                answer = json.dumps({"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        # HTTPS: the exporter sends its bearer token over TLS only.
        self.cert, key = make_self_signed_cert(directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}/"
        # The exporter keeps what it failed to send on disk per instrumentation key, and resends it later:
        # a key of its own keeps another run's telemetry out of this one.
        self.key = str(uuid.uuid4())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def gateway_env(self) -> dict[str, str]:
        """A gateway's settings for its telemetry to reach this recorder, metrics exported every 0.3 s."""
        return {
            "OTEL_METRIC_EXPORT_INTERVAL": "300",
            "APPLICATIONINSIGHTS_CONNECTION_STRING": f"InstrumentationKey={self.key};IngestionEndpoint={self.url}",
        }

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for stored in Path(tempfile.gettempdir()).glob(f"Microsoft-AzureMonitor-*/opentelemetry-python-{self.key}"):
            shutil.rmtree(stored, ignore_errors=True)

    def metrics(self, name: str) -> list[dict[str, Any]]:
        """Each exported data point of metric `name`, with its dimensions (`properties`)."""
        points = []
        for envelope in self.envelopes:
            data = envelope.get("data", {}).get("baseData", {})
            for metric in data.get("metrics", []) if envelope["data"].get("baseType") == "MetricData" else []:
                if metric["name"] == name:
                    points.append({**metric, "properties": data.get("properties", {})})
        return points

    def of_type(self, base_type: str) -> list[dict[str, Any]]:
        return [e["data"]["baseData"] for e in self.envelopes if e.get("data", {}).get("baseType") == base_type]


class MonitorCredential:
    """The managed identity, as the exporter sees it: a token for Azure Monitor."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("monitor-token", int(time.time()) + 3600)


@pytest.fixture
def ingestion(tmp_path, monkeypatch):
    # The SDK's own telemetry (statsbeat, SDK stats) and its remote settings (OneSettings) stay off: no address
    # outside 127.0.0.1, and only the gateway's telemetry reaches the recorder.
    for variable in (
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL",
        "APPLICATIONINSIGHTS_SDKSTATS_DISABLED",
        "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED",
    ):
        monkeypatch.setenv(variable, "true")
    recorder = Ingestion(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(recorder.cert))  # azure-core's transport trusts the test's certificate
    yield recorder
    recorder.stop()


def test_genai_metrics_and_traces_reach_application_insights_without_any_text(sim, ingestion, monkeypatch) -> None:
    credential = MonitorCredential()
    env = {
        **SECRETS,
        "CONFIG_YAML": STANDARD_CONFIG,
        "SIM_URL": sim.url,
        **ingestion.gateway_env(),
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=00000000-0000-4000-8000-0000000000aa;Authorization=AAD",
    }
    headers = {"Authorization": f"Bearer {ALICE}"}
    client_trace = "0af7651916cd43dd8448eb211c80319c"
    with InProcessGateway(env, credential=credential) as gateway:
        plain = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            timeout=10,
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": PROMPT}]},
            headers={**headers, "traceparent": f"00-{client_trace}-b7ad6b7169203331-01", "tracestate": "congo=t61"},
        ).json()
        with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=CHAT, headers=headers, timeout=10) as s:
            streamed = s.read()
        throttled = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json=CHAT | {"stream": False},
            timeout=10,
            headers={**headers, "x-sim-fail": "429"},
        )
        assert throttled.status_code == 429
        failed = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json=CHAT | {"stream": False},
            timeout=10,
            headers={**headers, "x-sim-fail": "500"},
        )
        assert failed.status_code == 500
        # The upstream's errors are logged by their code.
        assert access_line(gateway, throttled.headers["x-request-id"])["error_code"] == "429"
        assert access_line(gateway, failed.headers["x-request-id"])["error_code"] == "InternalServerError"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (
            ingestion.metrics("gateway.upstream.rate_limited") and len(ingestion.of_type("RequestData")) >= 4
        ):
            time.sleep(0.2)

    assert b'"usage"' not in streamed  # metrics on: usage asked upstream, hidden from a caller that did not ask
    assert credential.scopes and all(s == ("https://monitor.azure.com//.default",) for s in credential.scopes)
    assert set(ingestion.authorizations) == {"Bearer monitor-token"}

    tokens = ingestion.metrics("gen_ai.client.token.usage")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for point in tokens:
        props = point["properties"]
        assert props["gen_ai.operation.name"] == "chat" and props["gen_ai.request.model"] == "gpt-4o"
        assert props["gen_ai.provider.name"] == "azure.ai.openai" and props["gateway.caller"] == "alice"
        assert props["gateway.group"] == "eastus" and props["http.response.status_code"] == "200"
        by_type.setdefault(props["gen_ai.token.type"], []).append(point)
    # Two answers (one streamed) counted per token type: their sum is the two usages the simulator reported.
    assert {kind: sum(p["value"] for p in points) for kind, points in by_type.items()}["input"] >= (
        plain["usage"]["prompt_tokens"]
    )
    assert sum(p["count"] for p in by_type["input"]) == 2 and sum(p["count"] for p in by_type["output"]) == 2
    assert all(p["properties"]["gen_ai.response.model"] for p in tokens)

    # Cost, at the built-in table's price for gpt-4o (the standard config sets none): the two answers' usage.
    costs = ingestion.metrics("gen_ai.client.cost")
    assert sum(p["count"] for p in costs) == 2  # the 429 and the 500 reported no usage: no cost
    for point in costs:
        props = point["properties"]
        assert props["gateway.caller"] == "alice" and props["gen_ai.request.model"] == "gpt-4o"
        assert props["gen_ai.operation.name"] == "chat" and props["gateway.group"] == "eastus"
    gpt_4o = default_price("gpt-4o")
    assert gpt_4o is not None
    usage = plain["usage"]
    plain_cost = gpt_4o[0].cost(usage["prompt_tokens"], 0, usage["completion_tokens"]) / 1_000_000
    assert sum(p["value"] for p in costs) >= plain_cost > 0

    durations = ingestion.metrics("gen_ai.client.operation.duration")
    statuses = {p["properties"]["http.response.status_code"] for p in durations}
    assert statuses == {"200", "429", "500"} and all(p["value"] > 0 for p in durations)
    errors = {p["properties"]["http.response.status_code"]: p["properties"].get("error.type") for p in durations}
    assert errors == {"200": None, "429": "429", "500": "InternalServerError"}  # by the upstream's own code
    [limited] = ingestion.metrics("gateway.upstream.rate_limited")
    assert limited["value"] == 1 and limited["properties"]["gateway.group"] == "eastus"

    # One span per request, the upstream call its child, whose traceparent reached Azure.
    requests = ingestion.of_type("RequestData")
    dependencies = ingestion.of_type("RemoteDependencyData")
    assert len(requests) == 4 and len(dependencies) == 4
    # Application Insights shows each as the HTTP request it was: its result code, and a failure for a 429 or 500.
    results = sorted((r["responseCode"], r["success"]) for r in requests)
    assert results == [("200", True), ("200", True), ("429", False), ("500", False)]
    operations = {e["tags"]["ai.operation.name"] for e in ingestion.envelopes if e["data"]["baseType"] == "RequestData"}
    assert operations == {"POST /v1/chat/completions"}
    first_upstream = sim.requests[0].headers["traceparent"]
    trace_id, span_id = first_upstream.split("-")[1:3]
    assert trace_id == client_trace  # the client's trace goes on
    # The gateway's own traceparent replaces the client's, and the client's tracestate goes on once, with it.
    trace_lines = [(n, v) for n, v in sim.requests[0].header_list if n in ("traceparent", "tracestate")]
    assert trace_lines == [("traceparent", first_upstream), ("tracestate", "congo=t61")]
    assert span_id in {d["id"] for d in dependencies}
    operation_ids = {e["tags"]["ai.operation.id"] for e in ingestion.envelopes if e["data"]["baseType"] != "MetricData"}
    assert client_trace in operation_ids

    exported = b"".join(ingestion.raw)
    for text in (PROMPT.encode(), ALICE.encode(), SECRETS["EASTUS_KEY"].encode(), b"Echo:", b"one two three"):
        assert text not in exported


def test_without_a_connection_string_nothing_of_opentelemetry_is_imported() -> None:
    import subprocess
    import sys

    code = (
        "import sys, core.gateway, core.endpoints, core.deployments, core.telemetry;"
        "print(any(m.startswith(('opentelemetry', 'azure.monitor')) for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"


TWO_REGIONS = """
endpoints:
  azureOpenAI:
    assistants: true
    groups:
      - group: east
        apiKey: "${EASTUS_KEY}"
        instanceName: east
        baseURL: "${EAST_URL}"
        version: "2024-05-01-preview"
        assistants: true
        models:
          gpt-4o-east: {deploymentName: gpt-4o-dep}
      - group: west
        apiKey: "${EASTUS_KEY}"
        instanceName: west
        baseURL: "${WEST_URL}"
        version: "2024-05-01-preview"
        assistants: true
        models:
          gpt-4o-west: {deploymentName: gpt-4o-dep, price: {input: 3, output: 12}}
gateway:
  apiKeys:
    - {name: alice, key: "${ALICE_KEY}"}
  pools:
    gpt-4o: {models: [{model: gpt-4o-east, priority: 1}, {model: gpt-4o-west, priority: 2}]}
"""


def test_only_calls_made_for_the_caller_are_spans_each_lasting_as_long_as_itself(ingestion, monkeypatch) -> None:
    """A pool's two attempts are two spans, each as long as its own wait; the lookups of where a thread lives
    (one GET per group) are the gateway's own business and no span."""
    from azure_sim import AzureSimulator

    east = AzureSimulator(name="east", api_keys={SECRETS["EASTUS_KEY"]}, deployments={"gpt-4o-dep"}).start()
    west = AzureSimulator(name="west", api_keys={SECRETS["EASTUS_KEY"]}, deployments={"gpt-4o-dep"}).start()
    east.behaviour.fail, east.behaviour.delay = "429", 0.4  # a slow refusal, then the next member at once
    env = {
        **SECRETS,
        "CONFIG_YAML": TWO_REGIONS,
        "EAST_URL": east.url,
        "WEST_URL": west.url,
        **ingestion.gateway_env(),
    }
    try:
        with InProcessGateway(env) as gateway:
            headers = {"Authorization": f"Bearer {ALICE}"}
            chat = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT | {"stream": False}, headers=headers)
            assert chat.status_code == 200, chat.text
            east.behaviour.reset()  # east answers the lookup
            thread = httpx.get(f"{gateway.url}/v1/threads/thread_nowhere", headers=headers)
            assert thread.status_code == 404
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and len(ingestion.of_type("RequestData")) < 2:
                time.sleep(0.2)
    finally:
        east.stop()
        west.stop()
    # Each got a chat attempt and a lookup of the thread; east, the primary group, also answered its own 404.
    assert [len(east.requests), len(west.requests)] == [3, 2]

    requests = {r["name"].split()[0]: r for r in ingestion.of_type("RequestData")}
    dependencies = ingestion.of_type("RemoteDependencyData")
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for envelope in ingestion.envelopes:
        if envelope["data"]["baseType"] == "RemoteDependencyData":
            by_parent.setdefault(envelope["tags"]["ai.operation.parentId"], []).append(envelope["data"]["baseData"])
    chat_spans = by_parent[requests["POST"]["id"]]
    thread_spans = by_parent[requests["GET"]["id"]]
    assert len(dependencies) == 3 and len(chat_spans) == 2 and len(thread_spans) == 1

    def seconds(duration: str) -> float:  # Application Insights' "d.hh:mm:ss.ffffff"
        return float(duration.rsplit(":", 1)[1])

    slow, fast = sorted(chat_spans, key=lambda span: seconds(span["duration"]), reverse=True)
    assert seconds(slow["duration"]) >= 0.4 > seconds(fast["duration"])
    assert (slow["resultCode"], fast["resultCode"]) == ("429", "200")

    # The call cost what the member that served charges, and the cost metric names that member.
    usage = chat.json()["usage"]
    [cost] = ingestion.metrics("gen_ai.client.cost")
    assert cost["properties"]["gateway.member"] == "gpt-4o-west" and cost["properties"]["gateway.group"] == "west"
    assert cost["value"] == pytest.approx(
        Price.of(3, 3, 12).cost(usage["prompt_tokens"], 0, usage["completion_tokens"]) / 1e6
    )


def test_model_names_a_client_chose_never_become_dimensions_or_span_names(sim, ingestion) -> None:
    """Only the names the configuration gives models (and Azure's own) are exported; anything else is `_OTHER`, so
    no client can fill Application Insights with names of its choosing."""
    env = {
        **SECRETS,
        "CONFIG_YAML": STANDARD_CONFIG,
        "SIM_URL": sim.url,
        **ingestion.gateway_env(),
    }
    headers = {"Authorization": f"Bearer {ALICE}"}
    with InProcessGateway(env) as gateway:
        known = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT | {"stream": False}, headers=headers)
        assert known.status_code == 200
        unknown = httpx.post(
            f"{gateway.url}/v1/chat/completions", json=CHAT | {"model": "zz-chosen-model-1"}, headers=headers
        )
        assert unknown.status_code == 404
        response = httpx.post(
            f"{gateway.url}/v1/responses",
            json={"model": "zz-chosen-model-2", "input": "hi", "metadata": {"model": "zz-chosen-model-3"}},
            headers=headers,
        )
        assert response.status_code < 500
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(ingestion.of_type("RequestData")) < 3:
            time.sleep(0.2)
    exported = b"".join(ingestion.raw)
    assert b"zz-chosen-model" not in exported
    models = {
        p["properties"].get("gen_ai.request.model") for p in ingestion.metrics("gen_ai.client.operation.duration")
    }
    assert models == {"gpt-4o", "_OTHER"}
    names = sorted(r["name"] for r in ingestion.of_type("RequestData"))  # Application Insights: method and route
    assert names == ["POST /v1/chat/completions", "POST /v1/chat/completions", "POST /v1/responses"]


def test_with_traces_off_metrics_are_exported_and_the_clients_traceparent_goes_upstream_as_it_came(
    sim, ingestion, monkeypatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    env = {
        **SECRETS,
        "CONFIG_YAML": STANDARD_CONFIG,
        "SIM_URL": sim.url,
        **ingestion.gateway_env(),
    }
    client_traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with InProcessGateway(env) as gateway:
        answer = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            timeout=10,
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": PROMPT}]},
            headers={"Authorization": f"Bearer {ALICE}", "traceparent": client_traceparent},
        )
        assert answer.status_code == 200
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not ingestion.metrics("gen_ai.client.operation.duration"):
            time.sleep(0.1)
    [duration] = ingestion.metrics("gen_ai.client.operation.duration")
    assert duration["count"] == 1 and duration["properties"]["gen_ai.request.model"] == "gpt-4o"
    assert ingestion.of_type("RequestData") == [] and ingestion.of_type("RemoteDependencyData") == []
    assert sim.requests[-1].headers["traceparent"] == client_traceparent


# Direct tests: the gateway's Telemetry built from real OpenTelemetry SDK parts (spans kept in memory, metrics handed
# to a recording exporter), fed access records, and held to exactly what it exports.

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"


class Direct:
    """A Telemetry whose spans end in memory and whose metrics reach a recording exporter when `exported()` asks."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self.metric_exporter = RecordingExporter(scope=SCOPE)
        self.spans = InMemorySpanExporter()
        self.tracer_provider = tracer_provider or TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.instruments = Instruments()
        self.export = MetricsExport(
            self.metric_exporter, Resource.create({}), self.instruments.all(), interval=3600, scope=SCOPE
        )
        self.telemetry = Telemetry(self.instruments, self.export, self.tracer_provider)

    def exported(self) -> dict[str, list[Any]]:
        """Each metric's points, by name, of what was recorded since the last call."""
        self.metric_exporter.exports.clear()
        self.export.export()
        return self.metric_exporter.points()

    def finished(self) -> dict[str, ReadableSpan]:
        return {span.name: span for span in self.spans.get_finished_spans()}


@pytest.fixture
def direct():
    made = Direct()
    yield made
    made.telemetry.shutdown()


def chat_record(**fields: Any) -> AccessRecord:
    """A chat completion's record with every field the metrics read; `fields` change some."""
    values: dict[str, Any] = {
        "request_id": "req-1",
        "method": "POST",
        "path": "/v1/chat/completions",
        "stream": False,
        "caller": "alice",
        "operation": "chat/completions",
        "model": "gpt-4o",
        "response_model": "gpt-4o-2024-08-06",
        "group": "eastus",
        "status": 200,
        "prompt_tokens": 10,
        "completion_tokens": 20,
    }
    return AccessRecord(**(values | fields))


CHAT_DIMENSIONS = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "azure.ai.openai",
    "http.response.status_code": 200,
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gateway.caller": "alice",
    "gateway.group": "eastus",
}


@pytest.mark.parametrize(
    ("operation", "name"),
    [
        ("chat/completions", "chat"),
        ("completions", "text_completion"),
        ("embeddings", "embeddings"),
        ("images/generations", "images/generations"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_an_operation_is_named_as_the_conventions_name_it_else_by_its_path(operation, name) -> None:
    assert operation_name(operation) == name


def test_each_metric_has_its_conventions_name_unit_description_and_buckets() -> None:
    described = [(i.name, i.unit, i.description, getattr(i, "boundaries", None), type(i)) for i in Instruments().all()]
    assert described == [
        ("gen_ai.client.token.usage", "{token}", "Tokens used, per answer and token type.", tuple(TOKEN_BUCKETS),
         Histogram),
        ("gen_ai.client.operation.duration", "s", "Request duration, to the answer's end.", tuple(DURATION_BUCKETS),
         Histogram),
        ("gen_ai.client.inference.usage.cache_read.input_tokens", "{token}",
         "Of an answer's input tokens, those read from the prompt cache.", tuple(TOKEN_BUCKETS), Histogram),
        ("gen_ai.client.inference.usage.reasoning.output_tokens", "{token}",
         "Of an answer's output tokens, those spent reasoning.", tuple(TOKEN_BUCKETS), Histogram),
        ("gen_ai.client.cost", "{currency}",
         "What an answer cost at its deployment's price, in the prices' currency.", tuple(COST_BUCKETS), Histogram),
        ("gateway.upstream.rate_limited", "{response}", "The upstream's 429 answers, per group.", None, Counter),
    ]  # fmt: skip
    assert TOKEN_BUCKETS[:3] == [1.0, 4.0, 16.0] and TOKEN_BUCKETS[-1] == 4.0**13
    assert COST_BUCKETS[0] == 1e-6 and COST_BUCKETS[-1] == pytest.approx(1e-6 * 4**13)


def test_a_record_is_exported_as_each_metric_with_exactly_its_names_and_numbers(direct) -> None:
    record = chat_record(cached_tokens=4, reasoning_tokens=8, cost=0.5, member="gpt-4o-east", error_code=None)
    direct.telemetry.record(record, 2.5)
    direct.export.export()
    exported = {m.name: m for m in direct.metric_exporter.metrics()}
    assert set(exported) == {
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "gen_ai.client.inference.usage.cache_read.input_tokens",
        "gen_ai.client.inference.usage.reasoning.output_tokens",
        "gen_ai.client.cost",
    }  # a 200: nothing rate limited
    for instrument in Instruments().all():
        if instrument.name in exported:
            metric = exported[instrument.name]
            assert (metric.unit, metric.description) == (instrument.unit, instrument.description)
            assert all(tuple(p.explicit_bounds) == instrument.boundaries for p in metric.data.data_points)  # type: ignore[union-attr]
    tokens = {p.attributes["gen_ai.token.type"]: p for p in exported["gen_ai.client.token.usage"].data.data_points}
    assert {kind: dict(p.attributes) for kind, p in tokens.items()} == {
        "input": CHAT_DIMENSIONS | {"gen_ai.token.type": "input"},
        "output": CHAT_DIMENSIONS | {"gen_ai.token.type": "output"},
    }
    assert [(tokens[k].count, tokens[k].sum) for k in ("input", "output")] == [(1, 10), (1, 20)]
    [cached] = exported["gen_ai.client.inference.usage.cache_read.input_tokens"].data.data_points
    [reasoning] = exported["gen_ai.client.inference.usage.reasoning.output_tokens"].data.data_points
    assert (dict(cached.attributes), cached.count, cached.sum) == (CHAT_DIMENSIONS, 1, 4)
    assert (dict(reasoning.attributes), reasoning.count, reasoning.sum) == (CHAT_DIMENSIONS, 1, 8)
    [cost] = exported["gen_ai.client.cost"].data.data_points
    assert (dict(cost.attributes), cost.count, cost.sum) == (
        CHAT_DIMENSIONS | {"gateway.member": "gpt-4o-east"},
        1,
        0.5,
    )
    [duration] = exported["gen_ai.client.operation.duration"].data.data_points
    assert dict(duration.attributes) == CHAT_DIMENSIONS and duration.count == 1
    assert 2.5 <= duration.sum < 10  # since the record's start


def test_only_the_counts_a_call_has_are_exported_and_zero_parts_are_none(direct) -> None:
    direct.telemetry.record(chat_record(prompt_tokens=None, completion_tokens=None, cached_tokens=0,
                                        reasoning_tokens=0, cost=None), 1.0)  # fmt: skip
    assert set(direct.exported()) == {"gen_ai.client.operation.duration"}
    # Zero is a count: a call that used no tokens and cost nothing is a point at zero.
    direct.telemetry.record(chat_record(prompt_tokens=0, completion_tokens=0, cost=0.0), 1.0)
    exported = direct.exported()
    assert sorted(
        (p.attributes["gen_ai.token.type"], p.count, p.sum) for p in exported["gen_ai.client.token.usage"]
    ) == [
        ("input", 1, 0),
        ("output", 1, 0),
    ]
    [cost] = exported["gen_ai.client.cost"]
    assert (cost.count, cost.sum, dict(cost.attributes)) == (1, 0.0, CHAT_DIMENSIONS)  # no member: no gateway.member
    assert "gen_ai.client.inference.usage.cache_read.input_tokens" not in exported


def test_a_minimal_record_has_only_the_dimensions_it_has_and_an_error_its_type(direct) -> None:
    record = AccessRecord(
        request_id="req-2", method="GET", path="/v1/files", stream=False, status=502, error_code="BadGateway"
    )
    assert direct.telemetry.dimensions(record) == {
        "gen_ai.operation.name": "unknown",
        "gen_ai.provider.name": "azure.ai.openai",
        "http.response.status_code": 502,
        "error.type": "BadGateway",
    }
    direct.telemetry.record(record, 1.0)
    [duration] = direct.exported()["gen_ai.client.operation.duration"]
    assert dict(duration.attributes) == direct.telemetry.dimensions(record)


def test_the_rate_limited_counter_counts_only_an_upstreams_429_per_group_and_model(direct) -> None:
    telemetry = direct.telemetry
    telemetry.record(chat_record(status=429, error_code="429", prompt_tokens=None, completion_tokens=None), 1.0)
    telemetry.record(chat_record(status=429, error_code="429", prompt_tokens=None, completion_tokens=None), 1.0)
    telemetry.record(chat_record(status=429, model=None, group="westus"), 1.0)
    telemetry.record(chat_record(status=429, group=None), 1.0)  # the gateway's own 429: before any group
    telemetry.record(chat_record(status=500, group="eastus"), 1.0)
    telemetry.record(chat_record(status=200), 1.0)
    limited = direct.exported()["gateway.upstream.rate_limited"]
    assert sorted((sorted(p.attributes.items()), p.value) for p in limited) == [
        ([("gateway.group", "eastus"), ("gen_ai.request.model", "gpt-4o")], 2),
        ([("gateway.group", "westus")], 1),
    ]


def test_a_kind_of_calls_dimension_sets_are_made_once_and_kept_for_the_next_such_call(direct) -> None:
    telemetry, instruments = direct.telemetry, direct.instruments
    telemetry.record(chat_record(cost=1.0, member="gpt-4o-east"), 1.0)
    telemetry.record(chat_record(cost=2.0, member="gpt-4o-east"), 1.0)
    # Recorded under the very same sets: one sum each, not one per call merged at export.
    assert (len(instruments.tokens._distributions), len(instruments.duration._distributions)) == (2, 1)
    assert len(instruments.cost._distributions) == 1
    [series] = telemetry._series.values()
    assert set(instruments.tokens._distributions) == {series.input_tokens, series.output_tokens}


def test_records_differing_in_any_one_field_the_metrics_read_are_points_of_their_own(direct) -> None:
    telemetry = direct.telemetry
    telemetry.know_models(frozenset({"gpt-4o", "gpt-4o-mini"}))
    changes: list[dict[str, Any]] = [
        {},
        {"operation": "completions"},
        {"status": 201},
        {"model": "gpt-4o-mini"},
        {"response_model": "gpt-4o-mini"},
        {"caller": "bob"},
        {"group": "westus"},
        {"error_code": "Oops"},
        {"member": "gpt-4o-west"},
    ]
    for change in changes:
        telemetry.record(chat_record(cost=1.0, **change), 1.0)
        telemetry.record(chat_record(cost=1.0, **change), 1.0)  # the second of each kind: the kept dimension sets
    costs = direct.exported()["gen_ai.client.cost"]
    assert len(costs) == len(changes) and all(p.count == 2 for p in costs)
    for change in changes:
        expected = telemetry.dimensions(chat_record(**change))
        if "member" in change:
            expected["gateway.member"] = change["member"]
        assert [p for p in costs if dict(p.attributes) == expected], change


@pytest.mark.parametrize(
    ("name", "exported"),
    [
        ("gpt-4o", "gpt-4o"),  # a family's name, configured or not
        ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),  # with its version's date, as Azure answers
        ("my-deployment", "my-deployment"),  # given by the configuration
        ("gpt-4o-2024-08", OTHER_MODEL),
        ("gpt-4o-2024-08-06x", OTHER_MODEL),
        ("xgpt-4o", OTHER_MODEL),
        ("zz-chosen-model", OTHER_MODEL),
    ],
)
def test_model_names_are_kept_when_configured_or_azures_own_and_else_are_other(direct, name, exported) -> None:
    direct.telemetry.know_models(frozenset({"my-deployment"}))
    assert direct.telemetry.model_name(name) == exported
    dimensions = direct.telemetry.dimensions(chat_record(model=name, response_model=name))
    assert dimensions["gen_ai.request.model"] == dimensions["gen_ai.response.model"] == exported


def test_a_model_name_configured_later_is_a_dimension_from_then_on(direct) -> None:
    telemetry = direct.telemetry
    telemetry.record(chat_record(model="my-deployment"), 1.0)
    telemetry.know_models(frozenset({"my-deployment"}))
    telemetry.record(chat_record(model="my-deployment"), 1.0)
    telemetry.know_models(frozenset())
    telemetry.record(chat_record(model="my-deployment"), 1.0)
    durations = direct.exported()["gen_ai.client.operation.duration"]
    assert sorted((p.attributes["gen_ai.request.model"], p.count) for p in durations) == [
        (OTHER_MODEL, 2),
        ("my-deployment", 1),
    ]


def upstream_url() -> str:
    return "https://east.openai.azure.com/openai/deployments/gpt-4o-dep/chat/completions?api-version=2024-10-21"


def test_a_request_span_continues_the_clients_trace_and_ends_named_by_its_model(direct) -> None:
    headers = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01", "tracestate": "congo=t61", "other": "x"}
    record = chat_record(request_id="req-7")
    trace = direct.telemetry.start(record, headers, route="v1/chat/completions")
    assert trace is not None and direct.finished() == {}
    span = trace.span
    assert span.name == "POST /v1/chat/completions"
    trace.end(record)
    [ended] = direct.spans.get_finished_spans()
    assert ended.name == "chat gpt-4o" and ended.kind == SpanKind.SERVER
    assert ended.instrumentation_scope is not None and ended.instrumentation_scope.name == SCOPE
    assert ended.context is not None and format(ended.context.trace_id, "032x") == CLIENT_TRACE
    assert ended.parent is not None and format(ended.parent.span_id, "016x") == CLIENT_SPAN
    assert ended.parent.is_remote and ended.context.trace_state.to_header() == "congo=t61"
    assert dict(ended.attributes or {}) == {
        "http.request.method": "POST",
        "http.route": "/v1/chat/completions",
        "url.path": "/v1/chat/completions",
        **CHAT_DIMENSIONS,
        "gateway.request_id": "req-7",
    }
    assert ended.status.status_code == StatusCode.UNSET


def test_a_request_without_a_traceparent_starts_a_trace_of_its_own(direct) -> None:
    record = AccessRecord(request_id="req-8", method="GET", path="/v1/models", stream=False, status=200)
    trace = direct.telemetry.start(record, {"tracestate": "congo=t61"}, route="v1/models")
    assert trace is not None
    trace.end(record)
    [ended] = direct.spans.get_finished_spans()
    assert ended.parent is None and ended.name == "GET /v1/models"  # no model: the route names it
    assert ended.context is not None and ended.context.trace_state.to_header() == ""


@pytest.mark.parametrize(("model", "status"), [(None, 200), ("zz-chosen-model", 200), ("gpt-4o", 499)])
def test_a_span_keeps_its_route_name_for_a_model_not_named_and_a_client_error_is_no_error(
    direct, model, status
) -> None:
    record = chat_record(model=model, status=status)
    trace = direct.telemetry.start(record, {}, route="v1/chat/completions")
    assert trace is not None
    trace.end(record)
    [ended] = direct.spans.get_finished_spans()
    assert ended.name == ("POST /v1/chat/completions" if model != "gpt-4o" else "chat gpt-4o")
    assert ended.status.status_code == StatusCode.UNSET


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_the_request_spans_error(direct, status) -> None:
    record = chat_record(status=status)
    trace = direct.telemetry.start(record, {}, route="v1/chat/completions")
    assert trace is not None
    trace.end(record)
    [ended] = direct.spans.get_finished_spans()
    assert ended.status.status_code == StatusCode.ERROR


def test_an_upstream_call_is_the_request_spans_client_child_and_carries_its_traceparent(direct, caplog) -> None:
    headers = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01", "tracestate": "congo=t61"}
    record = chat_record()
    trace = direct.telemetry.start(record, headers, route="v1/chat/completions")
    assert trace is not None
    upstream = trace.upstream_call(record, "POST", upstream_url())
    record.status = 502  # what the client is answered is not the upstream's status
    upstream.end(429)
    upstream.end(200)  # only the first end counts, and ends nothing twice
    trace.end(record)
    request, call = direct.finished()["chat gpt-4o"], direct.finished()["POST"]
    assert call.kind == SpanKind.CLIENT and call.parent is not None and request.context is not None
    assert call.parent.span_id == request.context.span_id and call.context is not None
    assert call.context.trace_id == request.context.trace_id
    assert dict(call.attributes or {}) == {
        "http.request.method": "POST",
        "url.full": upstream_url(),
        "server.address": "east.openai.azure.com",
        **(CHAT_DIMENSIONS | {"http.response.status_code": 429}),
    }
    assert upstream.headers == [
        ("traceparent", f"00-{CLIENT_TRACE}-{format(call.context.span_id, '016x')}-01"),
        ("tracestate", "congo=t61"),
    ]
    assert call.end_time is not None and request.end_time is not None and call.end_time <= request.end_time
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # no span ended or changed after its end


def test_an_upstream_call_with_no_answer_ends_without_a_status_and_one_cut_short_ends_with_the_request(
    direct,
) -> None:
    record = chat_record()
    trace = direct.telemetry.start(record, {}, route="v1/chat/completions")
    assert trace is not None
    failed = trace.upstream_call(record, "POST", upstream_url())
    failed.end(None)
    cut_short = trace.upstream_call(record, "GET", "/no-host")
    assert [s.name for s in direct.spans.get_finished_spans()] == ["POST"]  # the second still going
    trace.end(record)
    spans = direct.finished()
    assert set(spans) == {"POST", "GET", "chat gpt-4o"}
    for name in ("POST", "GET"):
        assert "http.response.status_code" not in (spans[name].attributes or {})
    assert (spans["GET"].attributes or {})["server.address"] == ""
    assert spans["GET"].end_time is not None and spans["chat gpt-4o"].end_time is not None
    assert spans["GET"].end_time <= spans["chat gpt-4o"].end_time
    assert cut_short.headers[0][1].split("-")[2] == format(spans["GET"].context.span_id, "016x")


def test_a_client_trace_not_sampled_is_no_span_work(direct) -> None:
    unsampled = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-00"}
    assert direct.telemetry.start(chat_record(), unsampled, route="v1/chat/completions") is None


class WatchedHeaders(dict[str, str]):
    """Request headers that remember whether anyone looked at them."""

    looked = False

    def __contains__(self, key: object) -> bool:
        self.looked = True
        return super().__contains__(key)

    def __getitem__(self, key: str) -> str:
        self.looked = True
        return super().__getitem__(key)


def test_with_traces_always_off_a_request_is_no_span_work_at_all(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    off = Direct()
    try:
        headers = WatchedHeaders(traceparent=f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01")
        assert off.telemetry.start(chat_record(), headers, route="v1/chat/completions") is None
        assert not headers.looked  # not even its traceparent read
        off.telemetry.record(chat_record(), 1.0)
        assert off.exported()["gen_ai.client.operation.duration"][0].count == 1  # metrics as ever
    finally:
        off.telemetry.shutdown()
    assert off.spans.get_finished_spans() == ()


def test_shutdown_exports_the_metrics_left_and_shuts_both_exporters_down() -> None:
    made = Direct()
    made.telemetry.record(chat_record(), 1.0)
    made.telemetry.shutdown()
    assert made.metric_exporter.shut_down and made.metric_exporter.shutdown_timeouts == [30_000]
    assert "gen_ai.client.operation.duration" in made.metric_exporter.points()
    tracer = made.tracer_provider.get_tracer("after")
    tracer.start_span("late").end()
    assert made.spans.get_finished_spans() == ()  # the span exporter was shut down with the provider


@pytest.fixture
def closed_endpoint(monkeypatch):
    """A connection string whose ingestion endpoint is a closed port on 127.0.0.1, with the SDK's own telemetry
    and remote settings off: nothing built from it reaches any other address."""
    for variable in (
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL",
        "APPLICATIONINSIGHTS_SDKSTATS_DISABLED",
        "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED",
    ):
        monkeypatch.setenv(variable, "true")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    key = str(uuid.uuid4())
    yield f"InstrumentationKey={key};IngestionEndpoint=https://127.0.0.1:{port}/"
    for stored in Path(tempfile.gettempdir()).glob(f"Microsoft-AzureMonitor-*/opentelemetry-python-{key}"):
        shutil.rmtree(stored, ignore_errors=True)


def configured(environ: dict[str, str], credential: Any = None) -> tuple[Telemetry, Any, Any]:
    """`configure`'s Telemetry, its metric exporter and its span exporter."""
    telemetry = configure(environ, credential)
    assert telemetry is not None
    metrics = telemetry._metrics
    [processor] = telemetry._tracer_provider._active_span_processor._span_processors
    assert isinstance(processor, BatchSpanProcessor)
    return telemetry, metrics._exporter, processor._batch_processor._exporter


@pytest.mark.parametrize("connection_string", [None, "", "  "])
def test_without_a_connection_string_there_is_no_telemetry(connection_string) -> None:
    environ = {} if connection_string is None else {"APPLICATIONINSIGHTS_CONNECTION_STRING": connection_string}
    assert configure(environ, MonitorCredential()) is None


@pytest.mark.parametrize(
    "authentication", ["Authorization=AAD", "ClientId=00000000-0000-4000-8000-0000000000aa;authorization = aad"]
)
def test_with_aad_authentication_both_exporters_use_the_apps_credential(closed_endpoint, authentication) -> None:
    credential = MonitorCredential()
    environ = {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": f" {closed_endpoint} ",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": authentication,
        "OTEL_SERVICE_NAME": "gateway-under-test",
        "OTEL_METRIC_EXPORT_INTERVAL": " 300 ",
    }
    telemetry, metric_exporter, span_exporter = configured(environ, credential)
    try:
        assert metric_exporter._credential is credential and span_exporter._credential is credential
        key = closed_endpoint.split(";")[0].split("=")[1]
        assert metric_exporter._instrumentation_key == span_exporter._instrumentation_key == key
        assert span_exporter._tracer_provider is telemetry._tracer_provider
        metrics = telemetry._metrics
        assert (metrics._interval, metrics._scope) == (0.3, SCOPE)
        assert metrics._resource is telemetry._tracer_provider.resource
        # The calls recorded are what the export hands on: one set of instruments.
        assert metrics._instruments == telemetry._instruments.all() and len(metrics._instruments) == 6
        assert metrics._resource.attributes["service.name"] == "gateway-under-test"
    finally:
        telemetry.shutdown()


AUTHENTICATION = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({}, 60.0),
        (
            {"OTEL_METRIC_EXPORT_INTERVAL": "1.5", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Authorization=AADx"},
            60.0,
        ),
        (
            {"OTEL_METRIC_EXPORT_INTERVAL": "²", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "x=Authorization=AAD"},
            60.0,
        ),
        ({"OTEL_METRIC_EXPORT_INTERVAL": "15000", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": ""}, 15.0),
    ],
)
def test_without_aad_authentication_the_connection_string_alone_is_used(closed_endpoint, environ, interval) -> None:
    telemetry, metric_exporter, span_exporter = configured(
        {"APPLICATIONINSIGHTS_CONNECTION_STRING": closed_endpoint, **environ}, MonitorCredential()
    )
    try:
        assert metric_exporter._credential is None and span_exporter._credential is None
        assert telemetry._metrics._interval == interval
        assert telemetry._tracer_provider.resource.attributes["service.name"] == "aoai-gateway"
    finally:
        telemetry.shutdown()
