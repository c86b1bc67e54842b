"""bench/report.py: several runs of `python -m bench` judged on each figure's median."""

from __future__ import annotations

from bench.report import Row, median_verdicts, runs_markdown

CPU = "cpu_per_request_vs_naive"  # goal: <= 1.1x naive


def _run(cpu: float, c1: float, *, with_rss: bool = True) -> list[Row]:
    rows = [
        Row("CPU per request at c=32: gateway / naive", "-", "-", "-", "-", CPU, cpu),
        Row("CPU per request at c=1", "-", "-", "-", "-", None, c1, "x naive"),
        Row("latency at c=32 p50", "-", "-", "-", "-"),  # no value: not a figure the runs compare
    ]
    if with_rss:
        rows.append(Row("peak RSS", "-", "-", "-", "-", "gateway_peak_rss_mib", 69.0))
    return rows


def test_a_goal_is_judged_on_the_median_of_the_runs_not_on_any_one() -> None:
    passing_median = median_verdicts([_run(1.30, 1.2), _run(1.05, 1.2), _run(1.08, 1.2)])
    assert passing_median[CPU] | {"target": None} == {
        "value": 1.08,
        "values": [1.30, 1.05, 1.08],
        "target": None,
        "passed": True,
    }
    missing_median = median_verdicts([_run(0.90, 1.2), _run(1.17, 1.2), _run(1.13, 1.2)])
    assert missing_median[CPU]["value"] == 1.13 and not missing_median[CPU]["passed"]


def test_only_goals_are_judged_and_only_figures_every_run_has() -> None:
    verdicts = median_verdicts([_run(1.0, 1.2), _run(1.0, 1.3, with_rss=False)])
    assert set(verdicts) == {CPU}  # the c=1 ratio has no goal; peak RSS is missing from a run


def test_the_runs_table_shows_each_run_the_median_and_its_verdict() -> None:
    table = runs_markdown([_run(1.02, 1.20), _run(1.17, 1.25), _run(1.13, 1.15)]).splitlines()
    assert table[0] == "| measure | run 1 | run 2 | run 3 | median | target | result |"
    assert table[2] == (
        "| CPU per request at c=32: gateway / naive | 1.02x naive | 1.17x naive | 1.13x naive | 1.13x naive"
        " | <= 1.10x naive | **MISS** by 0.030x naive |"
    )
    assert table[3] == ("| CPU per request at c=1 | 1.20x naive | 1.25x naive | 1.15x naive | 1.20x naive | - | info |")
    assert table[4] == "| peak RSS | 69.0 MiB | 69.0 MiB | 69.0 MiB | 69.0 MiB | <= 80.0 MiB | pass |"
    assert len(table) == 5  # the row without a value is left out
