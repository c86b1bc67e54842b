"""Budgets shared by two gateway processes through Azurite's table service: one key's requestsPerMinute holds
across both (within the documented bound), another caller is unaffected, counts survive a restart, and a store
that goes away never stops traffic."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.azurite import AzuriteTable
from tests.support.budgets import fresh_minute, limited, post
from tests.support.standard import ALICE, BOB, SECRETS

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 20
# Every 0.1 s, alternating instances: each admits about 5 requests a second for the key. Between two syncs
# (1 s each) an instance may not see the other's latest 2 s of requests: the documented bound.
PACE_SECONDS = 0.1
BOUND = 2 * 1 * int(1 / PACE_SECONDS / 2)


@pytest.fixture
def tables():
    with AzuriteTable() as service:
        yield service


def test_two_instances_share_one_budget_survive_a_restart_and_outlive_the_store(
    sim, start_gateway, tables, tmp_path
) -> None:
    config = limited(f"{{requestsPerMinute: {LIMIT}}}")
    config_path = tmp_path / "usage.yaml"
    config_path.write_text(config)
    env = {**SECRETS, "SIM_URL": sim.url, "USAGE_TABLE_CONNECTION_STRING": tables.connection_string}
    first, second = start_gateway(config, env), start_gateway(config, env)
    fresh_minute(40)

    statuses = []
    refused = None
    for n in range(2 * LIMIT):
        answer = post((first, second)[n % 2], ALICE)
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            refused = answer
        time.sleep(PACE_SECONDS)
    admitted = statuses.count(200)
    assert LIMIT <= admitted <= LIMIT + BOUND, statuses
    assert statuses[-6:] == [429] * 6  # once both know, both refuse
    assert refused is not None and refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.headers["x-ratelimit-limit-requests"] == str(LIMIT)
    assert refused.headers["x-ratelimit-remaining-requests"] == "0" and int(refused.headers["retry-after"]) >= 1
    assert [post(g, BOB).status_code for g in (first, second)] == [200, 200]

    # `python -m core usage` reads the shared counts.
    report = subprocess.run(
        [sys.executable, "-m", "core", "usage"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env, "CONFIG_PATH": str(config_path)},
    )
    assert report.returncode == 0, report.stderr
    alice_line = next(line for line in report.stdout.splitlines() if line.startswith("alice"))
    assert f"requests {admitted}/{LIMIT}" in alice_line
    assert ALICE not in report.stdout and tables.connection_string not in report.stdout + report.stderr

    # A restarted instance reads the counts back before it admits anyone.
    first.stop()
    restarted = start_gateway(config, env)
    assert post(restarted, ALICE).status_code == 429

    # The store goes away: traffic goes on, counted locally; the failure is logged once.
    tables.stop()
    assert [post(g, BOB).status_code for g in (restarted, second) for _ in range(3)] == [200] * 6
    assert post(second, ALICE).status_code == 429
    time.sleep(2.5)
    assert [post(g, BOB).status_code for g in (restarted, second)] == [200, 200]
    assert second.logs().count("usage table unreachable") == 1
