"""`python -m core check` and the server's refusal to start on an invalid configuration."""

import subprocess
import sys

from tests.conftest import SECRETS, STANDARD_CONFIG
from tests.gateway_process import ROOT, GatewayProcess

INVALID = """
endpoints:
  azureOpenAI:
    groups:
      - group: "a"
        apiKey: "${MISSING_KEY}"
        models:
          gpt-4: true
      - group: "a"
        serverless: true
        apiKey: "k"
        models:
          gpt-4: true
"""


def run_check(config: str, env: dict[str, str], tmp_path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yaml"
    path.write_text(config)
    return subprocess.run(
        [sys.executable, "-m", "core", "check"], cwd=ROOT, capture_output=True, text=True, timeout=30,
        env={"PATH": "/usr/bin:/bin", **env, "CONFIG_PATH": str(path)},
    )


def test_check_prints_the_resolved_route_table(tmp_path) -> None:
    result = run_check(STANDARD_CONFIG, {**SECRETS, "SIM_URL": "http://127.0.0.1:9"}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Configuration OK" in out
    row = next(line for line in out.splitlines() if line.startswith("gpt-4o-mini "))
    assert "eastus" in row and "http://127.0.0.1:9/openai/deployments/gpt-4o-mini-dep/{operation}" in row
    assert "2025-04-01-preview" in row and "api-key" in row
    tuned = next(line for line in out.splitlines() if line.startswith("gpt-tuned "))
    assert "add temperature,top_p; drop frequency_penalty,top_p" in tuned
    serverless = next(line for line in out.splitlines() if line.startswith("mistral-large "))
    assert "api-key+bearer" in serverless and "/v1/chat/completions" in serverless
    assert "forcePrompt" in next(line for line in out.splitlines() if line.startswith("gpt-instruct "))
    assert "2 gateway key(s): alice, bob" in out
    for secret in SECRETS.values():
        assert secret not in out


def test_check_lists_every_problem_and_fails(tmp_path) -> None:
    result = run_check(INVALID, {}, tmp_path)
    assert result.returncode == 1
    out = result.stdout
    assert 'Duplicate group name detected: "a". Group names must be unique.' in out
    assert 'Azure configuration environment variable "${MISSING_KEY}" was not found.' in out
    assert 'Group "a" is missing an "instanceName" for non-serverless configuration.' in out
    assert 'Duplicate model name detected: "gpt-4". Model names must be unique across groups.' in out
    assert 'Group "a" is serverless but missing mandatory "baseURL."' in out


def test_server_refuses_to_start_on_an_invalid_configuration(tmp_path) -> None:
    code, stderr = GatewayProcess(INVALID, {}, tmp_path).run_to_exit()
    assert code == 2
    assert "refusing to start" in stderr
    assert "Duplicate group name detected" in stderr and "MISSING_KEY" in stderr


def test_check_shows_every_timeout_and_limit(tmp_path) -> None:
    config = STANDARD_CONFIG.replace("    read: 2\n", "    read: 2\n    total: 30\n    idle: 15\n    stream: 600\n").replace(
        "  maxBodyBytes: 65536\n", "  maxBodyBytes: 65536\n  maxResponseBytes: 1048576\n"
    )
    result = run_check(config, {**SECRETS, "SIM_URL": "http://127.0.0.1:9"}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("Timeouts:"))
    assert "connect 2s, read 2s, total 30s, idle 15s, stream 600s" in line and "max response 1048576 bytes" in line


def test_timeouts_and_limits_must_be_positive(tmp_path) -> None:
    config = STANDARD_CONFIG.replace("    read: 2\n", "    read: 2\n    total: 0\n    idle: -1\n").replace(
        "  maxBodyBytes: 65536\n", "  maxBodyBytes: 65536\n  maxResponseBytes: 0\n"
    )
    result = run_check(config, {**SECRETS, "SIM_URL": "http://127.0.0.1:9"}, tmp_path)
    assert result.returncode == 1
    for key in ("gateway.timeouts.total", "gateway.timeouts.idle", "gateway.maxResponseBytes"):
        assert key in result.stdout, result.stdout
