"""Metrics summed in the gateway and handed to an OpenTelemetry exporter once per export interval.

Why not the OpenTelemetry SDK's instruments: opentelemetry-sdk copies and cleans a measurement's attributes each
time one is recorded (`Measurement.__post_init__`), some 110 thousand instructions for one with the gateway's
dimensions, and a chat completion records five. Here recording is a dict lookup by a set of dimensions made once
(a `DimensionSet`, hashed by identity) and a few additions; the attributes are built once per set and export.
What is exported is the SDK's own data (`MetricsData`), through its exporter interface, with delta temporality
(what Application Insights takes): each export hands on what was recorded since the one before.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import Metric, MetricExporter
    from opentelemetry.sdk.resources import Resource

logger = logging.getLogger(__name__)

# A measurement's dimensions, as (name, value) pairs in a fixed order.
Dimensions = tuple[tuple[str, str | int], ...]


class DimensionSet:
    """A set of dimensions, made once by its user and kept: a key by identity, since hashing a tuple of pairs
    on every measurement costs more than the rest of it. Two sets with the same pairs are one point at export."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: Dimensions) -> None:
        self.pairs = pairs


class _Distribution:
    """One set of dimensions' values since the last export."""

    __slots__ = ("count", "total", "low", "high", "buckets")

    def __init__(self, value: float, buckets: int) -> None:
        self.count = 0
        self.total = 0.0
        self.low = value
        self.high = value
        self.buckets = [0] * buckets

    def add(self, other: _Distribution) -> None:
        self.count += other.count
        self.total += other.total
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        self.buckets = [mine + theirs for mine, theirs in zip(self.buckets, other.buckets, strict=True)]


class Histogram:
    """An explicit-bucket histogram, as OpenTelemetry's: bucket i counts the values in
    (boundaries[i-1], boundaries[i]], the last one those above every boundary."""

    def __init__(self, name: str, *, unit: str, description: str, boundaries: Sequence[float]) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self.boundaries = tuple(boundaries)
        self._distributions: dict[DimensionSet, _Distribution] = {}
        # Recorded on the event loop, taken by the export thread: the swap and an update must not interleave.
        self._lock = threading.Lock()

    def record(self, value: float, dimensions: DimensionSet) -> None:
        with self._lock:
            distribution = self._distributions.get(dimensions)
            if distribution is None:
                distribution = self._distributions[dimensions] = _Distribution(value, len(self.boundaries) + 1)
            distribution.count += 1
            distribution.total += value
            if value < distribution.low:
                distribution.low = value
            elif value > distribution.high:
                distribution.high = value
            distribution.buckets[bisect_left(self.boundaries, value)] += 1

    def take(self, start_ns: int, end_ns: int) -> Metric | None:
        """What was recorded since the last take, as one OpenTelemetry metric (None if nothing was); then
        nothing again."""
        from opentelemetry.sdk.metrics.export import AggregationTemporality, HistogramDataPoint, Metric
        from opentelemetry.sdk.metrics.export import Histogram as HistogramData

        with self._lock:
            distributions, self._distributions = self._distributions, {}
        if not distributions:
            return None
        merged: dict[Dimensions, _Distribution] = {}
        for dimensions, distribution in distributions.items():
            same = merged.get(dimensions.pairs)
            if same is None:
                merged[dimensions.pairs] = distribution
            else:
                same.add(distribution)
        points = [
            HistogramDataPoint(
                attributes=dict(pairs),
                start_time_unix_nano=start_ns,
                time_unix_nano=end_ns,
                count=distribution.count,
                sum=distribution.total,
                bucket_counts=distribution.buckets,
                explicit_bounds=self.boundaries,
                min=distribution.low,
                max=distribution.high,
            )
            for pairs, distribution in merged.items()
        ]
        data = HistogramData(data_points=points, aggregation_temporality=AggregationTemporality.DELTA)
        return Metric(name=self.name, description=self.description, unit=self.unit, data=data)


class Counter:
    """A monotonic sum per set of dimensions."""

    def __init__(self, name: str, *, unit: str, description: str) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self._sums: dict[DimensionSet, int] = {}
        self._lock = threading.Lock()

    def add(self, amount: int, dimensions: DimensionSet) -> None:
        with self._lock:
            self._sums[dimensions] = self._sums.get(dimensions, 0) + amount

    def take(self, start_ns: int, end_ns: int) -> Metric | None:
        from opentelemetry.sdk.metrics.export import AggregationTemporality, Metric, NumberDataPoint, Sum

        with self._lock:
            sums, self._sums = self._sums, {}
        if not sums:
            return None
        merged: dict[Dimensions, int] = {}
        for dimensions, amount in sums.items():
            merged[dimensions.pairs] = merged.get(dimensions.pairs, 0) + amount
        points = [
            NumberDataPoint(attributes=dict(pairs), start_time_unix_nano=start_ns, time_unix_nano=end_ns, value=n)
            for pairs, n in merged.items()
        ]
        data = Sum(data_points=points, aggregation_temporality=AggregationTemporality.DELTA, is_monotonic=True)
        return Metric(name=self.name, description=self.description, unit=self.unit, data=data)


class MetricsExport:
    """Hands the instruments' sums to `exporter` every `interval` seconds from a daemon thread (the SDK's
    periodic reader does the same), and once more when shut down, so a scale-in does not lose the last interval."""

    def __init__(
        self,
        exporter: MetricExporter,
        resource: Resource,
        instruments: Sequence[Histogram | Counter],
        *,
        interval: float,
        scope: str,
    ) -> None:
        self._exporter = exporter
        self._resource = resource
        self._instruments = tuple(instruments)
        self._interval = interval
        self._scope = scope
        self._since_ns = time.time_ns()
        self._exporting = threading.Lock()  # the thread's export and the last one at shutdown, one at a time
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-export", daemon=True)
        self._thread.start()
        # A process that exits without its host's shutdown (an interpreter ending normally) still exports the rest.
        atexit.register(self.shutdown)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self.export()

    def export(self) -> None:
        """Export what was recorded since the last export, if anything was."""
        from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        with self._exporting:
            start_ns, end_ns = self._since_ns, time.time_ns()
            self._since_ns = end_ns
            metrics = [m for m in (i.take(start_ns, end_ns) for i in self._instruments) if m is not None]
            if not metrics:
                return
            scope_metrics = ScopeMetrics(scope=InstrumentationScope(self._scope), metrics=metrics, schema_url="")
            data = MetricsData([ResourceMetrics(resource=self._resource, scope_metrics=[scope_metrics], schema_url="")])
            try:
                self._exporter.export(data, timeout_millis=self._interval * 1000)
            except Exception:  # an exporter's failure must not end the thread: the next interval tries again
                logger.exception("exporting metrics failed")

    def shutdown(self, timeout: float = 30.0) -> None:
        """Export the rest and shut the exporter down; once (later calls do nothing)."""
        if self._stopped.is_set():
            return
        atexit.unregister(self.shutdown)
        self._stopped.set()
        self._thread.join(timeout)
        self.export()
        self._exporter.shutdown(timeout_millis=timeout * 1000)
