"""An OpenTelemetry metric exporter that keeps what it is given, for tests of the gateway's own metric sums."""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.sdk.metrics.export import Metric, MetricExporter, MetricExportResult, MetricsData


class RecordingExporter(MetricExporter):
    """Keeps what it is given, and the timeouts it was given; fails on request. `scope`: the instrumentation scope
    every export must name."""

    def __init__(self, scope: str = "test-scope") -> None:
        super().__init__(preferred_temporality={})
        self.scope = scope
        self.exports: list[MetricsData] = []
        self.export_timeouts: list[float] = []
        self.failures = 0
        self.shut_down = False
        self.shutdown_timeouts: list[float] = []
        self.exported = threading.Event()

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.export_timeouts.append(timeout_millis)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the ingestion endpoint went away")
        self.exports.append(metrics_data)
        self.exported.set()
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.shut_down = True
        self.shutdown_timeouts.append(timeout_millis)

    def metrics(self) -> list[Metric]:
        """Every metric exported, in order."""
        found: list[Metric] = []
        for data in self.exports:
            for resource_metrics in data.resource_metrics:
                assert resource_metrics.schema_url == ""
                for scope_metrics in resource_metrics.scope_metrics:
                    assert scope_metrics.scope.name == self.scope and scope_metrics.schema_url == ""
                    found.extend(scope_metrics.metrics)
        return found

    def points(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for metric in self.metrics():
            found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found
