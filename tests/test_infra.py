"""Infrastructure checks without a Bicep compiler: syntax (tree-sitter-bicep), security
(checkov, no failures but skips with a stated reason), app settings in step with the
code, and the shape the Flex Consumption Python runtime expects."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_bicep

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"

# Read by the Functions host or platform, not by the gateway's code.
PLATFORM_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "PYTHON_ENABLE_INIT_INDEXING",
}
# Read by the code but deliberately not set by the infrastructure, each for a reason.
NOT_PROVISIONED = {
    "CONFIG_YAML": "alternative source; the deployment uses the config blob (CONFIG_PATH)",
    "CONFIG_BLOB_CONNECTION_STRING": "alternative source needing storage keys; the account allows none",
    "CONFIG_BLOB_CONTAINER": "goes with CONFIG_BLOB_CONNECTION_STRING",
    "CONFIG_BLOB_NAME": "goes with CONFIG_BLOB_CONNECTION_STRING",
    "AZURE_OPENAI_ENDPOINT": "stulzq env mode, an alternative to a config file",
    "AZURE_OPENAI_API_VER": "stulzq env mode",
    "AZURE_OPENAI_MODEL_MAPPER": "stulzq env mode",
    "AZURE_OPENAI_HTTP_PROXY": "egress proxy: only where the network requires one",
    "AZURE_OPENAI_SOCKS_PROXY": "egress proxy: only where the network requires one",
    "PROXY": "LibreChat's egress proxy name: only where the network requires one",
    "DALLE_API_KEY": "LibreChat's DALL-E variables: the generated config serves models from groups",
    "LOG_LEVEL": "the local host's log level; on Azure host.json sets it",
    "LOCAL_FUNCTION_KEY": "the local host's function key; Azure issues its own",
}
# Flex Consumption rejects these: the runtime is set in functionAppConfig instead.
FLEX_FORBIDDEN = {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
                  "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTSHARE"}
_SETTING = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")


def test_there_is_infrastructure() -> None:
    assert (INFRA / "main.bicep").is_file() and len(BICEP_FILES) > 1


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_bicep_syntax(path: Path) -> None:
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))
    tree = parser.parse(path.read_bytes())
    bad = [node for node in _walk(tree.root_node) if node.type == "ERROR" or node.is_missing]
    where = [f"line {n.start_point[0] + 1}: {'missing ' + n.type if n.is_missing else 'syntax error'}" for n in bad]
    assert not where, f"{path.relative_to(ROOT)}: " + "; ".join(where)


def _walk(node: tree_sitter.Node):
    yield node
    for child in node.children:
        yield from _walk(child)


def test_checkov_passes_with_only_reasoned_skips() -> None:
    assert CHECKOV.exists(), "checkov is missing: `make test` installs it into .venv-checkov"
    result = subprocess.run(
        [str(CHECKOV), "-d", str(INFRA), "--framework", "bicep", "--skip-download", "-o", "json", "--quiet", "--compact"],
        capture_output=True, text=True, timeout=300,
    )
    reports = json.loads(result.stdout)
    summaries = [r.get("summary", r) for r in (reports if isinstance(reports, list) else [reports])]
    assert sum(s["parsing_errors"] for s in summaries) == 0, "checkov could not parse some Bicep (it still exits 0)"
    assert sum(s["resource_count"] for s in summaries) > 0
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for r in (reports if isinstance(reports, list) else [reports])
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "checkov failures: " + ", ".join(failed)
    skips = re.findall(r"checkov:skip=([A-Z0-9_]+)(.*)", "\n".join(p.read_text() for p in BICEP_FILES))
    for check_id, rest in skips:
        assert len(rest.strip(" :")) >= 10, f"skip of {check_id} has no stated reason"


def app_settings_in_bicep() -> set[str]:
    """The `name:`s of the Function App's `siteConfig.appSettings` array (the one place they are set)."""
    text = (INFRA / "modules" / "functionapp.bicep").read_text()
    start = text.index("appSettings: [")
    depth, end = 0, start
    for end in range(start, len(text)):
        depth += {"[": 1, "]": -1}.get(text[end], 0)
        if depth == 0 and text[end] == "]":
            break
    assert text.count("appSettings:") == 1 and "'appsettings'" not in text, "app settings must be set in one place"
    return set(re.findall(r"name:\s*'([^']+)'", text[start:end]))


def settings_read_by_code() -> set[str]:
    """Setting names the code looks up: `x.get("NAME")`, `x["NAME"]`, and tuples named *_VARIABLE(S)."""
    names = set()
    for path in [*ROOT.joinpath("core").rglob("*.py"), ROOT / "function_app.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            candidates: list[ast.AST] = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
                candidates.append(node.args[0])
            elif isinstance(node, ast.Subscript):
                candidates.append(node.slice)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id.endswith(("VARIABLE", "VARIABLES")) for t in node.targets
            ):
                candidates.extend(ast.walk(node.value))
            names |= {
                c.value for c in candidates
                if isinstance(c, ast.Constant) and isinstance(c.value, str) and _SETTING.match(c.value)
            }
    return names


def test_app_settings_match_what_the_code_reads() -> None:
    provisioned = app_settings_in_bicep()
    assert provisioned >= PLATFORM_SETTINGS, f"platform settings missing: {PLATFORM_SETTINGS - provisioned}"
    assert not provisioned & FLEX_FORBIDDEN, f"Flex Consumption rejects {provisioned & FLEX_FORBIDDEN}"
    gateway_settings = provisioned - PLATFORM_SETTINGS
    read = settings_read_by_code()
    assert gateway_settings - read == set(), "the Bicep sets settings no code reads"
    assert read - gateway_settings == set(NOT_PROVISIONED), (
        "settings the code reads must be provisioned or listed in NOT_PROVISIONED with a reason"
    )
    assert {"CONFIG_PATH", "CONFIG_REFRESH_SECONDS", "AZURE_CLIENT_ID"} <= gateway_settings


def test_the_app_is_what_the_flex_python_runtime_expects() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    assert host["extensions"]["http"]["routePrefix"] == ""
    requirements = (ROOT / "requirements.txt").read_text()
    for package in ("azure-functions", "azurefunctions-extensions-http-fastapi"):
        assert re.search(rf"^{package}\b", requirements, re.M), f"requirements.txt lacks {package}"
    tree = ast.parse((ROOT / "function_app.py").read_text())
    imports = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ("azurefunctions.extensions.http.fastapi", "Request") in imports  # HTTP streams, not the buffering ASGI bridge
    handlers = [
        n for n in tree.body if isinstance(n, ast.AsyncFunctionDef)
        and any(isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "route" for d in n.decorator_list)
    ]
    assert handlers and all(
        isinstance(h.args.args[0].annotation, ast.Name) and h.args.args[0].annotation.id == "Request" for h in handlers
    ), "every HTTP function must take the streams extension's Request"
    functionapp = "\n".join(p.read_text() for p in BICEP_FILES)
    assert re.search(r"name:\s*'python'", functionapp) and "FlexConsumption" in functionapp
    assert re.search(r"allowed\(\[\s*'3\.11'\s*'3\.12'\s*\]\)|'3\.11'\s*,?\s*'3\.12'", functionapp.replace("\n", " "))
    funcignore = (ROOT / ".funcignore").read_text().split()
    assert {".venv/", "tests/", ".cache/"} <= set(funcignore)
