"""The gateway's own metric sums: the same points OpenTelemetry's SDK makes of the same measurements, delta from
one export to the next, none lost to an export running while calls record, and exported by a real thread."""

from __future__ import annotations

import gc
import itertools
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricsData,
    NumberDataPoint,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from core.accesslog import AccessRecord
from core.metrics import Counter, Dimensions, DimensionSet, Histogram, MetricsExport
from core.telemetry import (
    COST_BUCKETS,
    DURATION_BUCKETS,
    MAX_DIMENSION_SETS,
    OTHER_MODEL,
    TOKEN_BUCKETS,
    Instruments,
    Telemetry,
)
from tests.support.metric_exporter import RecordingExporter

EAST_PAIRS: Dimensions = (("gen_ai.operation.name", "chat"), ("http.response.status_code", 200))
EAST = DimensionSet(EAST_PAIRS)
WEST = DimensionSet((("gen_ai.operation.name", "chat"), ("http.response.status_code", 429)))


def sdk_points(values: Sequence[float], boundaries: Sequence[float]) -> list[HistogramDataPoint]:
    """What opentelemetry-sdk's own histogram makes of the values."""
    reader = InMemoryMetricReader(preferred_temporality={})
    provider = MeterProvider(metric_readers=[reader])
    histogram = provider.get_meter("oracle").create_histogram("h", explicit_bucket_boundaries_advisory=boundaries)
    for value in values:
        histogram.record(value, dict(EAST_PAIRS))
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    [metric] = data.resource_metrics[0].scope_metrics[0].metrics
    return list(metric.data.data_points)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    boundaries=st.sampled_from([TOKEN_BUCKETS, COST_BUCKETS, DURATION_BUCKETS]),
    values=st.lists(
        st.one_of(
            st.integers(min_value=0, max_value=2**27).map(float),
            st.floats(min_value=0, max_value=1e9, allow_nan=False),
            st.sampled_from([*TOKEN_BUCKETS, *COST_BUCKETS, *DURATION_BUCKETS]),  # on a boundary exactly
        ),
        min_size=1,
        max_size=30,
    ),
)
def test_a_histogram_makes_the_point_the_sdk_makes_of_the_same_values(
    boundaries: list[float], values: list[float]
) -> None:
    histogram = Histogram("h", unit="1", description="", boundaries=boundaries)
    for value in values:
        histogram.record(value, EAST)
    metric = histogram.take(1, 2)
    assert metric is not None
    [ours] = metric.data.data_points
    [theirs] = sdk_points(values, boundaries)
    assert isinstance(ours, HistogramDataPoint)
    assert ours.attributes == theirs.attributes == dict(EAST_PAIRS)
    assert (ours.count, ours.min, ours.max, list(ours.explicit_bounds)) == (
        theirs.count,
        theirs.min,
        theirs.max,
        list(theirs.explicit_bounds),
    )
    assert list(ours.bucket_counts) == list(theirs.bucket_counts)
    assert ours.sum == pytest.approx(theirs.sum)


def test_each_set_of_dimensions_is_its_own_point_and_a_take_starts_again_from_nothing() -> None:
    histogram = Histogram("h", unit="s", description="d", boundaries=[1.0, 2.0])
    histogram.record(0.5, EAST)
    histogram.record(3.0, WEST)
    histogram.record(2.0, EAST)
    metric = histogram.take(10, 20)
    assert metric is not None and (metric.name, metric.unit, metric.description) == ("h", "s", "d")
    assert metric.data.aggregation_temporality == AggregationTemporality.DELTA  # type: ignore[union-attr]
    points = {p.attributes["http.response.status_code"]: p for p in metric.data.data_points}  # type: ignore[index]
    east, west = points[200], points[429]
    assert isinstance(east, HistogramDataPoint) and isinstance(west, HistogramDataPoint)
    assert (east.count, east.sum, east.min, east.max, list(east.bucket_counts)) == (2, 2.5, 0.5, 2.0, [1, 1, 0])
    assert (west.count, west.sum, west.min, west.max, list(west.bucket_counts)) == (1, 3.0, 3.0, 3.0, [0, 0, 1])
    assert (east.start_time_unix_nano, east.time_unix_nano) == (10, 20)
    assert histogram.take(20, 30) is None
    histogram.record(1.0, EAST)
    again = histogram.take(20, 30)
    assert again is not None
    [point] = again.data.data_points
    assert isinstance(point, HistogramDataPoint) and (point.count, list(point.bucket_counts)) == (1, [1, 0, 0])


def test_sets_made_twice_with_the_same_dimensions_are_one_point() -> None:
    histogram = Histogram("h", unit="1", description="", boundaries=[1.0, 2.0])
    counter = Counter("c", unit="1", description="")
    again = DimensionSet(EAST_PAIRS)
    histogram.record(0.5, EAST)
    histogram.record(3.0, again)
    histogram.record(1.5, WEST)
    counter.add(1, EAST)
    counter.add(2, again)
    metric = histogram.take(1, 2)
    assert metric is not None
    east = [p for p in metric.data.data_points if p.attributes == dict(EAST_PAIRS)]
    assert len(east) == 1 and len(metric.data.data_points) == 2
    [point] = east
    assert isinstance(point, HistogramDataPoint)
    assert (point.count, point.sum, point.min, point.max, list(point.bucket_counts)) == (2, 3.5, 0.5, 3.0, [1, 0, 1])
    sums = counter.take(1, 2)
    assert sums is not None and [p.value for p in sums.data.data_points] == [3]  # type: ignore[union-attr]


def test_a_client_choosing_model_names_cannot_grow_the_kept_dimension_sets_and_no_call_is_lost() -> None:
    """Names the configuration does not give are `_OTHER`; the sets kept between calls stay bounded however
    many names come, and every call is counted, under its name's one point."""
    exporter = RecordingExporter()
    instruments = Instruments()
    export = MetricsExport(exporter, Resource.create({}), instruments.all(), interval=3600, scope="test-scope")
    telemetry = Telemetry(instruments, export, TracerProvider())
    telemetry.know_models(frozenset({"gpt-4o"}))
    names = ["gpt-4o", *(f"client-name-{n}" for n in range(MAX_DIMENSION_SETS + 10)), "gpt-4o"]
    for name in names:
        telemetry.record(AccessRecord(request_id="id", method="POST", path="/v1/chat/completions", stream=False,
                                      operation="chat/completions", model=name,
                                      status=200, prompt_tokens=1, completion_tokens=2), 1.0)  # fmt: skip
        assert len(telemetry._series) <= MAX_DIMENSION_SETS
    export.shutdown(timeout=5)
    durations = exporter.points()["gen_ai.client.operation.duration"]
    counts = {p.attributes["gen_ai.request.model"]: p.count for p in durations}
    assert counts == {"gpt-4o": 2, OTHER_MODEL: MAX_DIMENSION_SETS + 10}
    tokens = exporter.points()["gen_ai.client.token.usage"]
    assert sorted((p.attributes["gen_ai.token.type"], p.attributes["gen_ai.request.model"], p.sum) for p in tokens) == [
        ("input", "_OTHER", MAX_DIMENSION_SETS + 10),
        ("input", "gpt-4o", 2),
        ("output", "_OTHER", 2 * (MAX_DIMENSION_SETS + 10)),
        ("output", "gpt-4o", 4),
    ]


def test_a_counter_sums_per_set_of_dimensions_as_a_monotonic_delta() -> None:
    counter = Counter("c", unit="{response}", description="d")
    counter.add(1, EAST)
    counter.add(2, EAST)
    counter.add(1, WEST)
    metric = counter.take(1, 2)
    assert metric is not None
    assert metric.data.is_monotonic and metric.data.aggregation_temporality == AggregationTemporality.DELTA  # type: ignore[union-attr]
    points = metric.data.data_points
    assert all(isinstance(p, NumberDataPoint) for p in points)
    assert {p.attributes["http.response.status_code"]: p.value for p in points} == {200: 3, 429: 1}  # type: ignore[index, union-attr]
    assert counter.take(2, 3) is None


def test_no_measurement_is_lost_to_takes_running_while_threads_record() -> None:
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch every few bytecodes: a take lands inside a record often
    try:
        _record_while_taking()
    finally:
        sys.setswitchinterval(switch_interval)


def _record_while_taking() -> None:
    histogram = Histogram("h", unit="1", description="", boundaries=[10.0])
    per_thread, threads = 20_000, 4
    taken: list[int] = []
    done = threading.Event()

    def take_until_done() -> None:
        while not done.is_set():
            metric = histogram.take(0, 1)
            if metric is not None:
                taken.extend(p.count for p in metric.data.data_points)  # type: ignore[union-attr]

    def record() -> None:
        for n in range(per_thread):
            histogram.record(float(n % 20), EAST if n % 2 else WEST)

    taker = threading.Thread(target=take_until_done)
    taker.start()
    recorders = [threading.Thread(target=record) for _ in range(threads)]
    for thread in recorders:
        thread.start()
    for thread in recorders:
        thread.join()
    done.set()
    taker.join()
    last = histogram.take(0, 1)
    if last is not None:
        taken.extend(p.count for p in last.data.data_points)  # type: ignore[union-attr]
    assert sum(taken) == per_thread * threads


def test_the_export_thread_hands_on_each_interval_and_the_rest_at_shutdown() -> None:
    exporter = RecordingExporter()
    histogram = Histogram("h", unit="1", description="", boundaries=[1.0])
    counter = Counter("c", unit="1", description="")
    resource = Resource.create({"service.name": "gateway-under-test"})
    export = MetricsExport(exporter, resource, [histogram, counter], interval=0.05, scope="test-scope")
    try:
        histogram.record(0.5, EAST)
        assert exporter.exported.wait(5)
        first = exporter.exports[0]
        assert first.resource_metrics[0].resource.attributes["service.name"] == "gateway-under-test"
        assert [m.name for m in first.resource_metrics[0].scope_metrics[0].metrics] == ["h"]  # nothing counted: no c
        time.sleep(0.2)  # intervals with nothing recorded export nothing
        assert len(exporter.exports) == 1
        counter.add(1, WEST)
        histogram.record(2.0, EAST)
    finally:
        export.shutdown(timeout=5)
    assert exporter.shut_down
    exports = len(exporter.exports)
    histogram.record(5.0, EAST)
    export.shutdown(timeout=5)  # once shut down, again is nothing: the exporter is not asked again
    assert len(exporter.exports) == exports
    points = exporter.points()
    assert sum(p.count for p in points["h"]) == 2 and [p.value for p in points["c"]] == [1]
    # Each export starts where the one before ended: no interval counted twice, none left out.
    windows = sorted(
        {(p.start_time_unix_nano, p.time_unix_nano) for data in exporter.exports for p in _all_points(data)}
    )
    assert len(windows) == len(exporter.exports) == 2
    assert all(start < end for start, end in windows)
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(windows))


def test_a_failed_export_is_logged_and_the_next_interval_exports_again(caplog: pytest.LogCaptureFixture) -> None:
    exporter = RecordingExporter()
    exporter.failures = 1
    histogram = Histogram("h", unit="1", description="", boundaries=[1.0])
    export = MetricsExport(exporter, Resource.create({}), [histogram], interval=0.05, scope="test-scope")
    try:
        histogram.record(0.5, EAST)
        deadline = time.monotonic() + 5
        while exporter.failures and time.monotonic() < deadline:
            time.sleep(0.01)
        histogram.record(0.7, EAST)
        assert exporter.exported.wait(5)
    finally:
        export.shutdown(timeout=5)
    assert [(r.name, r.getMessage(), r.exc_info is not None) for r in caplog.records] == [
        ("core.metrics", "exporting metrics failed", True)
    ]
    # What the failed export held is gone (as with the SDK's delta export); what came after is exported.
    assert [p.sum for p in exporter.points()["h"]] == [0.7]


def _all_points(data: MetricsData) -> list[Any]:
    return [
        point
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        for point in metric.data.data_points
    ]


def test_a_process_that_exits_without_shutting_down_still_exports_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "exported.json"
    code = (
        "from opentelemetry.sdk.metrics.export import ConsoleMetricExporter\n"
        "from opentelemetry.sdk.resources import Resource\n"
        "from core.metrics import DimensionSet, Histogram, MetricsExport\n"
        "histogram = Histogram('left.at.exit', unit='1', description='', boundaries=[1.0])\n"
        f"exporter = ConsoleMetricExporter(out=open({str(out)!r}, 'w'))\n"
        "MetricsExport(exporter, Resource.create({}), [histogram], interval=3600, scope='test-scope')\n"
        "histogram.record(0.5, DimensionSet((('k', 'v'),)))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=Path(__file__).parent.parent)
    assert '"name": "left.at.exit"' in out.read_text()


def test_a_counters_points_name_it_and_span_the_take_they_were_taken_for() -> None:
    counter = Counter("c", unit="{response}", description="d")
    counter.add(1, EAST)
    metric = counter.take(10, 20)
    assert metric is not None and (metric.name, metric.unit, metric.description) == ("c", "{response}", "d")
    [point] = metric.data.data_points
    assert isinstance(point, NumberDataPoint)
    assert (point.start_time_unix_nano, point.time_unix_nano, point.value, point.attributes) == (
        10,
        20,
        1,
        dict(EAST_PAIRS),
    )


def test_an_export_hands_the_exporter_its_resource_scope_and_the_interval_as_its_timeout() -> None:
    exporter = RecordingExporter()
    histogram = Histogram("h", unit="1", description="", boundaries=[1.0])
    counter = Counter("c", unit="1", description="")
    resource = Resource.create({"service.name": "gateway-under-test"})
    before = time.time_ns()
    export = MetricsExport(exporter, resource, [histogram, counter], interval=3600, scope="test-scope")
    try:
        export.export()
        assert exporter.export_timeouts == []  # nothing recorded: the exporter is not asked
        counter.add(2, WEST)
        export.export()
        assert exporter.export_timeouts == [3_600_000]
        [data] = exporter.exports
        assert data.resource_metrics[0].resource is resource
        assert [m.name for m in exporter.metrics()] == ["c"]
        [point] = exporter.points()["c"]
        assert before <= point.start_time_unix_nano < point.time_unix_nano <= time.time_ns()
        histogram.record(0.5, EAST)
        export.export()
        [_, later] = exporter.exports
        [metric] = later.resource_metrics[0].scope_metrics[0].metrics
        assert metric.data.data_points[0].start_time_unix_nano == point.time_unix_nano  # where the last one ended
    finally:
        export.shutdown(timeout=5)
    assert exporter.shutdown_timeouts == [5000]


def test_the_export_thread_is_a_named_daemon_that_ends_at_shutdown_and_the_exit_hook_goes_with_it() -> None:
    exporter = RecordingExporter()
    threads = set(threading.enumerate())
    export = MetricsExport(exporter, Resource.create({}), [], interval=3600, scope="test-scope")
    [thread] = set(threading.enumerate()) - threads
    assert (thread.name, thread.daemon) == ("metrics-export", True)
    started = time.monotonic()
    export.shutdown()
    assert time.monotonic() - started < 5  # the thread is woken, not waited for to the end of its interval
    assert not thread.is_alive()
    assert exporter.shutdown_timeouts == [30_000]  # the default: 30 seconds
    # The exit hook is gone: nothing keeps a shut-down export alive.
    gone = weakref.ref(export)
    del export
    gc.collect()
    assert gone() is None
