"""`python -m core check` and the server's refusal to start on an invalid configuration."""

import subprocess
import sys

from tests.support.gateway_process import ROOT, GatewayProcess
from tests.support.standard import SECRETS, STANDARD_CONFIG

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
        [sys.executable, "-m", "core", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
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
    assert "Callers: 2 gateway key(s):\n  alice: every model; resource APIs\n  bob: gpt-4o-mini\n" in out
    for secret in SECRETS.values():
        assert secret not in out


def test_check_lists_every_problem_and_fails(tmp_path) -> None:
    result = run_check(INVALID, {}, tmp_path)
    assert result.returncode == 1
    out = result.stdout
    assert 'Duplicate group name detected: "a". Group names must be unique.' in out
    assert 'line 6: Azure configuration environment variable "${MISSING_KEY}" was not found.' in out  # its apiKey
    # Two groups share the name "a": messages say which one.
    assert 'Group "a" (groups[0]) is missing an "instanceName" for non-serverless configuration.' in out
    assert 'Duplicate model name detected: "gpt-4". Model names must be unique across groups.' in out
    assert 'Group "a" (groups[1]) is serverless but missing mandatory "baseURL."' in out


def test_server_refuses_to_start_on_an_invalid_configuration(tmp_path) -> None:
    code, stderr = GatewayProcess(INVALID, {}, tmp_path).run_to_exit()
    assert code == 2
    assert "refusing to start" in stderr
    assert "Duplicate group name detected" in stderr and "MISSING_KEY" in stderr


def test_check_shows_every_timeout_and_limit(tmp_path) -> None:
    config = STANDARD_CONFIG.replace(
        "    read: 2\n", "    read: 2\n    total: 30\n    idle: 15\n    stream: 600\n"
    ).replace("  maxBodyBytes: 65536\n", "  maxBodyBytes: 65536\n  maxResponseBytes: 1048576\n")
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


BROKEN = """\
endpoints:
  azureOpenAI:
    groups:
      - group: westeurope
        apiKey: k
        instanceNam: my-resource
        deploymentName: gpt-4o
        version: "2024-10-21"
        models:
          gpt-4o: true
      - group: westeurope
        apiKey: k
        serverless: "true"
        models:
          mistral: true
      - group: westeurope
        apiKey: k
        instanceName: other
        version: "2024-13-01"
        models:
          gpt-4o-mini: true
gateway:
  apiKeys:
    - {name: alice, key: "alice-key", models: [gpt-4o, o1]}
"""


def test_check_reports_schema_and_rule_problems_together_with_lines_and_warnings(tmp_path) -> None:
    result = run_check(BROKEN, {}, tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    # Schema errors no longer hide the rules; each problem names its line, in file order.
    assert (
        '  - line 4: Group "westeurope" (groups[0]) is missing an "instanceName" for non-serverless configuration.'
        in lines
    )
    assert '  - line 11: Duplicate group name detected: "westeurope". Group names must be unique.' in lines
    assert "  - line 13: endpoints.azureOpenAI.groups[1].serverless: Input should be a valid boolean" in lines
    assert '  - line 16: Duplicate group name detected: "westeurope". Group names must be unique.' in lines
    assert any(
        line.startswith('  - line 19: endpoints.azureOpenAI.groups[2].version: "2024-13-01" is not') for line in lines
    )
    assert '  - line 24: gateway.apiKeys[0].models names "o1", which no group serves.' in lines
    warnings = lines.index("Warnings (1):")
    numbers = [int(line.split()[2].rstrip(":")) for line in lines[:warnings] if line.startswith("  - line ")]
    assert numbers == sorted(numbers)
    # The warning that explains the first problem is shown beside it.
    explained = (
        '  - line 6: Unknown key "endpoints.azureOpenAI.groups[0].instanceNam" is ignored '
        '(did you mean "instanceName"?)'
    )
    assert explained in lines


def test_check_shows_each_callers_model_allow_list(tmp_path) -> None:
    config = STANDARD_CONFIG.replace("      models: [gpt-4o-mini]\n", "      models: [gpt-4o-mini, gpt-4o]\n")
    result = run_check(config, {**SECRETS, "SIM_URL": "http://127.0.0.1:9"}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Callers: 2 gateway key(s):" in result.stdout
    assert "  alice: every model; resource APIs" in result.stdout
    assert "  bob: gpt-4o, gpt-4o-mini\n" in result.stdout


def test_check_works_on_the_local_config_outside_make() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "core", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "CONFIG_PATH": "config/local.yaml"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "http://127.0.0.1:8081/openai/deployments/gpt-4o/{operation}" in result.stdout


MISTYPED = """endpoints:
  azureOpenAI:
    groups:
      - group: east
        apiKey: "${EASTUS_KEY}"
        instanceName: east
        version: "2024-10-21"
        models:
          gpt-4o: {deploymentName: gpt-4o-dep}
gateway:
  apiKey:
    - {name: alice, key: "${ALICE_KEY}"}
  allowAnonymous: true
"""


def test_check_takes_a_file_and_strict_fails_on_warnings(tmp_path) -> None:
    path = tmp_path / "librechat.yaml"
    path.write_text(MISTYPED)
    command = [sys.executable, "-m", "core", "check", str(path)]
    env = {"PATH": "/usr/bin:/bin", **SECRETS}
    relaxed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30, env=env)
    assert relaxed.returncode == 0, relaxed.stdout + relaxed.stderr
    assert relaxed.stdout.startswith("Configuration OK with 1 warning(s), listed at the end: file:")
    assert "line 11: " in relaxed.stdout and "apiKey" in relaxed.stdout
    strict = subprocess.run([*command, "--strict"], cwd=ROOT, capture_output=True, text=True, timeout=30, env=env)
    assert strict.returncode == 1
    assert "Failing (--strict): 1 warning(s) above." in strict.stdout


def test_the_server_logs_each_warning_with_its_line_and_prints_problems_with_theirs(tmp_path) -> None:
    (tmp_path / "warned").mkdir()
    gateway = GatewayProcess(MISTYPED, dict(SECRETS), tmp_path / "warned")
    gateway.start()
    try:
        assert "configuration warning: line 11: " in gateway.logs()
    finally:
        gateway.stop()
    code, stderr = GatewayProcess(INVALID, {}, tmp_path).run_to_exit()
    assert code == 2 and "line 5: " in stderr  # the second group "a", as check prints it
