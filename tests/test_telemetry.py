"""Metrics and traces through the real Azure Monitor exporter, its connection string's IngestionEndpoint pointed at a
recording server on 127.0.0.1: the GenAI names, dimensions and values are right, the upstream call is the request
span's child and carries its traceparent to Azure, and no prompt, key or completion text is ever exported."""

from __future__ import annotations

import gzip
import json
import shutil
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

from core.models.prices import Price, default_price
from tests.support.access_log import access_line
from tests.support.azurite import make_self_signed_cert
from tests.support.inprocess_gateway import InProcessGateway
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
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=00000000-0000-4000-8000-0000000000aa;Authorization=AAD",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            f"InstrumentationKey={ingestion.key};IngestionEndpoint={ingestion.url}"
        ),
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
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            f"InstrumentationKey={ingestion.key};IngestionEndpoint={ingestion.url}"
        ),
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
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            f"InstrumentationKey={ingestion.key};IngestionEndpoint={ingestion.url}"
        ),
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
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            f"InstrumentationKey={ingestion.key};IngestionEndpoint={ingestion.url}"
        ),
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
