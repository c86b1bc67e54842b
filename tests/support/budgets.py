"""Caller-key budget tests: the configuration, requests, and staying inside one per-minute window."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

BUDGET_CONFIG = """
endpoints:
  azureOpenAI:
    assistants: true
    groups:
      - group: eastus
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        assistants: true
        models:
          gpt-4o: {deploymentName: gpt-4o-dep}
          text-embedding-3-small: {deploymentName: embed-dep}
gateway:
  apiKeys:
    - {name: alice, key: "${ALICE_KEY}", limits: LIMITS}
    - {name: bob, key: "${BOB_KEY}"}
  forwardHeaders: ["x-sim-*"]  # the tests steer the simulator (delays, faults) through the gateway
"""

ROOT = Path(__file__).resolve().parents[2]

CHAT: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "one two three"}]}


def limited(limits: str) -> str:
    return BUDGET_CONFIG.replace("LIMITS", limits)


def fresh_minute(needed: float) -> None:
    """Wait for the next UTC minute when fewer than `needed` seconds are left in this one: a test's
    requests must fall in one per-minute window."""
    left = 60 - time.time() % 60
    if left < needed:
        time.sleep(left + 0.05)


def fresh_day(needed: float) -> None:
    """Wait for the next UTC day when fewer than `needed` seconds are left in this one: a test's calls and the
    rows it reads must fall in one day (and month) window."""
    left = 86400 - time.time() % 86400
    if left < needed:
        time.sleep(left + 0.05)


def post(gateway, key: str, path: str = "/v1/chat/completions", body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(f"{gateway.url}{path}", json=body or CHAT, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def usage_report(env: dict[str, str], config_path: Path) -> str:
    """What `python -m core usage` prints for this configuration and environment."""
    report = subprocess.run(
        [sys.executable, "-m", "core", "usage"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env, "CONFIG_PATH": str(config_path)},
    )
    assert report.returncode == 0, report.stderr
    return report.stdout
