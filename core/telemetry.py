"""Usage in Azure Monitor, the OpenTelemetry way: GenAI metrics and one trace per request.

Names follow the OpenTelemetry GenAI semantic conventions v1.37.0: `gen_ai.client.token.usage`
(histogram, `{token}`, `gen_ai.token.type` input/output; of those, the cached input and reasoning output tokens
as the conventions' newer `gen_ai.client.inference.usage.cache_read.input_tokens` and
`gen_ai.client.inference.usage.reasoning.output_tokens`) and `gen_ai.client.operation.duration`
(histogram, seconds) with `gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`,
`gen_ai.response.model`, `error.type`; plus the gateway's own dimensions (`gateway.caller`,
`gateway.group`, `http.response.status_code`) and `gateway.upstream.rate_limited`, the upstream's
429s per group. `gen_ai.client.cost` (histogram, the prices' currency; not in the conventions, which price
nothing) is a priced call's cost, with the same dimensions and a pool's `gateway.member`. Only names and numbers
are exported: never a prompt, a completion or a key.

Exported when APPLICATIONINSIGHTS_CONNECTION_STRING is set; with APPLICATIONINSIGHTS_AUTHENTICATION_STRING
`Authorization=AAD` (what the infra sets) authenticated with the app's credential (managed identity:
Application Insights with local auth off takes nothing else), else with the connection string alone.
Otherwise nothing of OpenTelemetry is imported: cold start does not pay for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from core.accesslog import AccessRecord
from core.inbound import is_ascii_digits
from core.metrics import Counter, DimensionSet, Histogram, MetricsExport
from core.models.families import FAMILIES

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

CONNECTION_STRING_VARIABLE = "APPLICATIONINSIGHTS_CONNECTION_STRING"
AUTHENTICATION_STRING_VARIABLE = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
DEFAULT_EXPORT_MILLIS = 60_000
SCOPE = "aoai_gateway"  # the instrumentation scope of the gateway's metrics and spans
_OPERATION_NAMES = {"chat/completions": "chat", "completions": "text_completion", "embeddings": "embeddings"}
TOKEN_BUCKETS = [float(4**power) for power in range(14)]  # 1, 4, 16, ... 67108864, as the conventions recommend
# A call's cost, in the currency: a millionth (a few embedding tokens) to about a hundred (a long reasoning run).
COST_BUCKETS = [1e-6 * 4**power for power in range(14)]
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
# What a model name the configuration does not give becomes: clients choose model names (a run's, a Responses
# call's), and a dimension or span name of their choosing would be theirs to multiply (as the conventions' `_OTHER`).
OTHER_MODEL = "_OTHER"
# The dimension sets kept between calls, at most; past it they are made again (a client choosing model names could
# otherwise grow them without end; sets made twice within one export are one point there).
MAX_DIMENSION_SETS = 4096
# The names Azure answers with for the models it serves: a known family, perhaps with its version's date.
_AZURE_MODEL = re.compile("(?:" + "|".join(re.escape(f.name) for f in FAMILIES) + r")(?:-\d{4}-\d{2}-\d{2})?")


def operation_name(operation: str | None) -> str:
    """The conventions' name where there is one (chat, text_completion, embeddings), else OpenAI's path."""
    return _OPERATION_NAMES.get(operation or "", operation or "unknown")


def configure(environ: Mapping[str, str], credential: Any) -> Telemetry | None:
    """Telemetry exported to Application Insights, or None when no connection string is set."""
    connection_string = environ.get(CONNECTION_STRING_VARIABLE, "").strip()
    if not connection_string:
        return None
    from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter, AzureMonitorTraceExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    authentication = environ.get(AUTHENTICATION_STRING_VARIABLE, "").replace(" ", "").lower()
    if "authorization=aad" not in authentication.split(";"):
        credential = None  # a resource with local auth on takes the connection string alone
    interval = environ.get("OTEL_METRIC_EXPORT_INTERVAL", "").strip()
    resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME", "aoai-gateway")})
    instruments = Instruments()
    metrics = MetricsExport(
        AzureMonitorMetricExporter(connection_string=connection_string, credential=credential),
        resource,
        instruments.all(),
        interval=(float(interval) if is_ascii_digits(interval) else DEFAULT_EXPORT_MILLIS) / 1000,
        scope=SCOPE,
    )
    tracer_provider = TracerProvider(resource=resource)
    span_exporter = AzureMonitorTraceExporter(
        connection_string=connection_string, credential=credential, tracer_provider=tracer_provider
    )
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    return Telemetry(instruments, metrics, tracer_provider)


class Instruments:
    """The gateway's metrics, summed in the process (core/metrics.py says why)."""

    def __init__(self) -> None:
        self.tokens = Histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens used, per answer and token type.",
            boundaries=TOKEN_BUCKETS,
        )  # fmt: skip
        self.duration = Histogram(
            "gen_ai.client.operation.duration", unit="s", description="Request duration, to the answer's end.",
            boundaries=DURATION_BUCKETS,
        )  # fmt: skip
        self.cached = Histogram(
            "gen_ai.client.inference.usage.cache_read.input_tokens", unit="{token}",
            description="Of an answer's input tokens, those read from the prompt cache.", boundaries=TOKEN_BUCKETS,
        )  # fmt: skip
        self.reasoning = Histogram(
            "gen_ai.client.inference.usage.reasoning.output_tokens", unit="{token}",
            description="Of an answer's output tokens, those spent reasoning.", boundaries=TOKEN_BUCKETS,
        )  # fmt: skip
        self.cost = Histogram(
            "gen_ai.client.cost", unit="{currency}",
            description="What an answer cost at its deployment's price, in the prices' currency.",
            boundaries=COST_BUCKETS,
        )  # fmt: skip
        self.rate_limited = Counter(
            "gateway.upstream.rate_limited", unit="{response}", description="The upstream's 429 answers, per group."
        )

    def all(self) -> tuple[Histogram | Counter, ...]:
        return (self.tokens, self.duration, self.cached, self.reasoning, self.cost, self.rate_limited)


class _Series:
    """The dimension sets one kind of call (as its access record's fields say) records its metrics under."""

    __slots__ = ("plain", "input_tokens", "output_tokens", "priced", "rate_limited")

    def __init__(
        self,
        *,
        plain: DimensionSet,
        input_tokens: DimensionSet,
        output_tokens: DimensionSet,
        priced: DimensionSet,
        rate_limited: DimensionSet | None,
    ) -> None:
        self.plain = plain
        self.input_tokens = input_tokens  # token usage, of the input tokens
        self.output_tokens = output_tokens
        self.priced = priced  # cost: per pool member too
        self.rate_limited = rate_limited  # an upstream 429's, None for any other answer


class Telemetry:
    def __init__(self, instruments: Instruments, metrics: MetricsExport, tracer_provider: TracerProvider) -> None:
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        # OTEL_TRACES_SAMPLER=always_off samples nothing, whatever the client's traceparent says: no request then
        # pays for reading its traceparent and starting a span only to learn that (some 44 thousand instructions).
        self._traces_off = tracer_provider.sampler is ALWAYS_OFF
        self._instruments = instruments
        self._metrics = metrics
        self._tracer_provider = tracer_provider
        self._models: frozenset[str] = frozenset()  # the names the configuration gives models
        self._series: dict[tuple[object, ...], _Series] = {}
        self.tracer = tracer_provider.get_tracer(SCOPE)
        self.propagator = TraceContextTextMapPropagator()

    def know_models(self, names: frozenset[str]) -> None:
        """The model names the configuration gives (public ids, deployments): only these, and Azure's own model
        names, become dimensions; any other is `_OTHER`."""
        self._models = names
        self._series.clear()  # a name known or not any more: its dimension sets are made again

    def model_name(self, name: str) -> str:
        return name if name in self._models or _AZURE_MODEL.fullmatch(name) else OTHER_MODEL

    def start(self, record: AccessRecord, headers: Mapping[str, str], *, route: str) -> RequestTrace | None:
        """The request's span, continuing the client's trace when it sent a traceparent; None when the
        sampler leaves this request out (OTEL_TRACES_SAMPLER): no span work at all then, and the client's
        own traceparent goes upstream as it came. Named and described as the HTTP conventions say (method,
        route template, path), so Application Insights shows a request with its result code."""
        if self._traces_off:
            return None
        from opentelemetry.trace import SpanKind

        carrier = {name: headers[name] for name in ("traceparent", "tracestate") if name in headers}
        parent = self.propagator.extract(carrier)
        template = f"/{route}"
        span = self.tracer.start_span(
            f"{record.method} {template}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": record.method, "http.route": template, "url.path": record.path},
        )
        if not span.is_recording():
            return None
        return RequestTrace(self, span)

    def record(self, record: AccessRecord, seconds: float) -> None:
        """A call's metrics, from its record and how long it took."""
        key = (record.operation, record.status, record.model, record.response_model, record.caller, record.group,
               record.error_code, record.member)  # fmt: skip
        series = self._series.get(key)
        if series is None:
            series = self._series_of(key, record)
        instruments = self._instruments
        if record.prompt_tokens is not None:
            instruments.tokens.record(record.prompt_tokens, series.input_tokens)
        if record.completion_tokens is not None:
            instruments.tokens.record(record.completion_tokens, series.output_tokens)
        # Parts of those counts, as the GenAI conventions' newer inference metrics name them; only when there are any.
        if record.cached_tokens:
            instruments.cached.record(record.cached_tokens, series.plain)
        if record.reasoning_tokens:
            instruments.reasoning.record(record.reasoning_tokens, series.plain)
        if record.cost is not None:  # per deployment: a pool's members may differ in price
            instruments.cost.record(record.cost, series.priced)
        instruments.duration.record(seconds, series.plain)
        if series.rate_limited is not None:
            instruments.rate_limited.add(1, series.rate_limited)

    def _series_of(self, key: tuple[object, ...], record: AccessRecord) -> _Series:
        """The dimension sets of the calls whose records have `key`'s fields, made once and kept."""
        dimensions = tuple(self.dimensions(record).items())
        member = () if record.member is None else (("gateway.member", record.member),)
        rate_limited = None
        if record.status == 429 and record.group is not None:  # the gateway's own 429s come before any group
            rate_limited = DimensionSet((("gateway.group", record.group), *self._request_model(record).items()))
        series = _Series(
            plain=DimensionSet(dimensions),
            input_tokens=DimensionSet((*dimensions, ("gen_ai.token.type", "input"))),
            output_tokens=DimensionSet((*dimensions, ("gen_ai.token.type", "output"))),
            priced=DimensionSet((*dimensions, *member)),
            rate_limited=rate_limited,
        )
        if len(self._series) >= MAX_DIMENSION_SETS:
            self._series.clear()
        self._series[key] = series
        return series

    def dimensions(self, record: AccessRecord) -> dict[str, str | int]:
        """A record's names and numbers: never a prompt, a completion or a key."""
        attributes: dict[str, str | int] = {
            "gen_ai.operation.name": operation_name(record.operation),
            "gen_ai.provider.name": "azure.ai.openai",
            "http.response.status_code": record.status,
            **self._request_model(record),
        }
        if record.response_model is not None:
            attributes["gen_ai.response.model"] = self.model_name(record.response_model)
        if record.caller is not None:
            attributes["gateway.caller"] = record.caller
        if record.group is not None:
            attributes["gateway.group"] = record.group
        if record.error_code is not None:
            attributes["error.type"] = record.error_code
        return attributes

    def _request_model(self, record: AccessRecord) -> dict[str, str]:
        return {} if record.model is None else {"gen_ai.request.model": self.model_name(record.model)}

    def shutdown(self) -> None:
        """Export what is still buffered (a scale-in must not lose the last minute)."""
        self._metrics.shutdown()
        self._tracer_provider.shutdown()


class RequestTrace:
    """One request's span, and a child span for each upstream call made on the caller's behalf."""

    __slots__ = ("_telemetry", "span", "_upstream")

    def __init__(self, telemetry: Telemetry, span: Span) -> None:
        self._telemetry = telemetry
        self.span = span
        self._upstream: list[UpstreamSpan] = []

    def upstream_call(self, record: AccessRecord, method: str, url: str) -> UpstreamSpan:
        """Start an upstream call's span, an HTTP client call as the conventions name it (Application
        Insights shows it as an HTTP dependency with its result code); it carries the trace to Azure
        (W3C traceparent). The URL holds no secret: keys travel in headers."""
        from opentelemetry.trace import SpanKind, set_span_in_context

        parts = urlsplit(url)
        child = self._telemetry.tracer.start_span(
            method,
            context=set_span_in_context(self.span),
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, "url.full": url, "server.address": parts.hostname or ""},
        )
        carrier: dict[str, str] = {}
        self._telemetry.propagator.inject(carrier, context=set_span_in_context(child))
        upstream = UpstreamSpan(self._telemetry, child, record, list(carrier.items()))
        self._upstream.append(upstream)
        return upstream

    def end(self, record: AccessRecord) -> None:
        """The request is over: its span ends with the record's names and numbers."""
        from opentelemetry.trace import Status, StatusCode

        attributes = self._telemetry.dimensions(record)
        model = attributes.get("gen_ai.request.model")
        if model is not None and model != OTHER_MODEL:
            self.span.update_name(f"{attributes['gen_ai.operation.name']} {model}")
        self.span.set_attributes({**attributes, "gateway.request_id": record.request_id})
        if record.status >= 500:  # a server span's error, as the HTTP conventions say; a 4xx is the client's
            self.span.set_status(Status(StatusCode.ERROR))
        for upstream in self._upstream:
            upstream.end(None)  # a call cut short (the client went away): it ends with the request
        self.span.end()


class UpstreamSpan:
    """One upstream call's span: it lasts until the call's answer came, or it failed."""

    __slots__ = ("_telemetry", "_span", "_record", "headers")

    def __init__(self, telemetry: Telemetry, span: Span, record: AccessRecord, headers: list[tuple[str, str]]) -> None:
        self._telemetry = telemetry
        self._span = span
        self._record = record
        self.headers = headers  # traceparent (and tracestate) for the upstream request

    def end(self, status: int | None) -> None:
        """`status`: the upstream's HTTP status; None when no answer came. Only the first call ends the span."""
        span = self._span
        if not span.is_recording():
            return
        attributes = self._telemetry.dimensions(self._record)
        del attributes["http.response.status_code"]  # the client's: the upstream's is set below
        if status is not None:
            attributes["http.response.status_code"] = status
        span.set_attributes(attributes)
        span.end()
