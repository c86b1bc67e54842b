"""Infrastructure checks without a Bicep compiler: syntax (tree-sitter-bicep), security
(checkov, no failures but skips with a stated reason), app settings in step with the
code, and the shape the Flex Consumption Python runtime expects."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import tree_sitter
import tree_sitter_bicep

from tests.support.function_index import function_index
from tests.support.json_values import json_object

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
    "USAGE_TABLE_CONNECTION_STRING": "local runs against Azurite; Azure uses USAGE_TABLE_ENDPOINT with the identity",
    "OTEL_METRIC_EXPORT_INTERVAL": "OpenTelemetry's own setting; the 60 s default suits Azure Monitor",
    "OTEL_SERVICE_NAME": "OpenTelemetry's own setting; the default names the service aoai-gateway",
    "AZURE_OPENAI_SOCKS_PROXY": "egress proxy: only where the network requires one",
    "PROXY": "LibreChat's egress proxy name: only where the network requires one",
    "DALLE_API_KEY": "LibreChat's DALL-E variables: the generated config serves models from groups",
    "LOG_LEVEL": "the local host's log level; on Azure host.json sets it",
    "LOCAL_FUNCTION_KEY": "the local host's function key; Azure issues its own",
    "SECRET_REFRESH_SECONDS": "how often Key Vault secrets are read again; the 300 s default suits key rotation",
}
# Flex Consumption rejects these: the runtime is set in functionAppConfig instead.
FLEX_FORBIDDEN = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
}
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
        [
            str(CHECKOV),
            "-d",
            str(INFRA),
            "--framework",
            "bicep",
            "--skip-download",
            "-o",
            "json",
            "--quiet",
            "--compact",
        ],
        capture_output=True,
        text=True,
        timeout=300,
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
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and node.args
            ):
                candidates.append(node.args[0])
            elif isinstance(node, ast.Subscript):
                candidates.append(node.slice)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id.endswith(("VARIABLE", "VARIABLES")) for t in node.targets
            ):
                candidates.extend(ast.walk(node.value))
            names |= {
                c.value
                for c in candidates
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
    assert read - gateway_settings - PLATFORM_SETTINGS == set(NOT_PROVISIONED), (
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
        assert re.search(rf"^{package}\b", requirements, re.MULTILINE), f"requirements.txt lacks {package}"
    tree = ast.parse((ROOT / "function_app.py").read_text())
    imports = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert (
        "azurefunctions.extensions.http.fastapi",
        "Request",
    ) in imports  # HTTP streams, not the buffering ASGI bridge
    functions = function_index()["functions"]
    assert functions and all(f["request_is_a_stream"] for f in functions), (
        "every HTTP function must take the streams extension's Request"
    )
    functionapp = "\n".join(p.read_text() for p in BICEP_FILES)
    assert re.search(r"name:\s*'python'", functionapp) and "FlexConsumption" in functionapp
    assert re.search(r"allowed\(\[\s*'3\.11'\s*'3\.12'\s*\]\)|'3\.11'\s*,?\s*'3\.12'", functionapp.replace("\n", " "))
    funcignore = (ROOT / ".funcignore").read_text().split()
    assert {".venv/", "tests/", "azure_sim/", ".cache/"} <= set(funcignore)


# ---- issue 9: what would have caught a template that does not deploy on today's Azure ----

# "Flex Consumption plan deprecations" in the Functions app settings reference
# (https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations):
# site properties a Flex site must not carry (newer regions reject the whole site PUT, ARM error 51021).
FLEX_DEPRECATED_SITE_PROPERTIES = {
    "alwaysOn",
    "containerSize",
    "ftpsState",
    "isReserved",
    "IsXenon",
    "javaVersion",
    "linuxFxVersion",
    "netFrameworkVersion",
    "powerShellVersion",
    "functionAppScaleLimit",
    "preWarmedInstanceCount",
    "use32BitWorkerProcess",
    "vnetBackupRestoreEnabled",
    "vnetContentShareEnabled",
    "vnetImagePullEnabled",
    "vnetRouteAllEnabled",
    "windowsFxVersion",
}
# ...and the app settings on the same list.
FLEX_DEPRECATED_SETTINGS = {
    "ENABLE_ORYX_BUILD",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTOVERVNET",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_DNS_SERVER",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
    "WEBSITE_VNET_ROUTE_ALL",
}
MODELS_LIST = INFRA / "models.json"
MODELS_LIST_MAX_AGE_DAYS = 183  # model versions stop taking new customers about a year after release
# The pages that document deploying (each must show what a deployer needs), and every page a reader may follow
# (none may say something wrong): the README sums the deploy up and links docs/operations.md for the rest.
DEPLOY_DOCS = [ROOT / "docs" / "operations.md", INFRA / "README.md"]
READMES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), INFRA / "README.md"]


def _block(text: str, opening: str) -> str:
    """The bracketed block that starts at `opening` (which ends in `{` or `[`)."""
    start = text.index(opening)
    depth = 0
    for end in range(start, len(text)):
        depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(text[end], 0)
        if depth == 0 and text[end] in "}]" and end > start + len(opening) - 1:
            return text[start : end + 1]
    raise AssertionError(f"unbalanced block after {opening!r}")


def _site_resource() -> str:
    text = (INFRA / "modules" / "functionapp.bicep").read_text()
    return _block(
        text, text[text.index("resource app 'Microsoft.Web/sites@") : text.index("= {", text.index("resource app")) + 3]
    )


def test_the_site_sets_nothing_flex_consumption_deprecates() -> None:
    site = _site_resource()
    keys = set(re.findall(r"^\s*(\w+)\s*:", site, re.MULTILINE))
    lower = {k.lower() for k in keys}
    deprecated = sorted(p for p in FLEX_DEPRECATED_SITE_PROPERTIES if p.lower() in lower)
    assert not deprecated, f"Flex Consumption deprecates these site properties: {deprecated}"
    assert not app_settings_in_bicep() & FLEX_DEPRECATED_SETTINGS
    site_config = _block(site, "siteConfig: {")
    site_config_keys = set(
        re.findall(r"^\s*(\w+)\s*:", site_config.replace(_block(site_config, "appSettings: ["), ""), re.MULTILINE)
    )
    assert site_config_keys <= {"siteConfig", "minTlsVersion", "http20Enabled", "appSettings"}, (
        f"siteConfig properties not checked against the Flex deprecation table: {site_config_keys}"
    )


def _models_list() -> dict[str, Any]:
    assert MODELS_LIST.is_file(), "infra/models.json, the dated list of deployable model versions, is missing"
    return json_object(json.loads(MODELS_LIST.read_text()))


def _default_deployments() -> list[dict[str, str]]:
    """The `openAiDeployments` default in main.bicep: [{name, model, version, sku, capacity}]."""
    text = (INFRA / "main.bicep").read_text()
    block = _block(text, "param openAiDeployments array = [")
    return [dict(re.findall(r"(\w+):\s*'?([\w.-]+)'?", entry)) for entry in re.findall(r"\{[^{}]*\}", block)]


def _readme_deployments() -> list[dict[str, str]]:
    """Every `{"name": ..., "model": ..., "version": ...}` deployment example in the READMEs."""
    found = []
    for readme in READMES:
        for entry in re.findall(r"\{[^{}]*\"model\"\s*:[^{}]*\}", readme.read_text()):
            found.append(json.loads(entry))
    return found


def test_the_model_list_beside_the_bicep_is_dated_and_recent() -> None:
    listed = _models_list()
    checked = date.fromisoformat(listed["checked"])
    assert listed["source"].startswith("https://learn.microsoft.com/")
    age = (date.today() - checked).days
    assert age <= MODELS_LIST_MAX_AGE_DAYS, (
        f"infra/models.json was last checked {age} days ago: re-check {listed['source']} and "
        "`az cognitiveservices model list -l REGION`, then update it and its `checked` date"
    )


# A default must stay deployable for a while after the day CI last passed: six months of new-customer access.
NEW_CUSTOMER_MARGIN = timedelta(days=183)


def test_deployed_model_versions_are_in_the_dated_list_and_open_to_new_customers() -> None:
    """Against today, not the list's `checked` date: a version that closes to new customers next week fails now
    (issue 22: gpt-5.2 closed on 2026-12-12 while the test still compared with 2026-11-29)."""
    listed = _models_list()
    known = {(m["model"], m["version"]): m for m in listed["models"]}
    used = [*_default_deployments(), *_readme_deployments()]
    assert _default_deployments(), "no default openAiDeployments found in main.bicep"
    horizon = date.today() + NEW_CUSTOMER_MARGIN
    for deployment in used:
        key = (deployment["model"], deployment["version"])
        assert key in known, f"{key} is not in infra/models.json (checked {listed['checked']})"
        entry = known[key]
        closes = entry.get("noNewCustomersFrom")
        assert closes is None or date.fromisoformat(closes) > horizon, (
            f"{key} takes no new customers from {closes}, within six months of today: pick a newer version"
        )
        assert date.fromisoformat(entry["retirement"]) > horizon, f"{key} retires on {entry['retirement']}"
        assert deployment.get("sku", "GlobalStandard") in entry["skus"], f"{key} is not listed with that SKU"


def test_the_default_model_needs_no_registration() -> None:
    """A fresh subscription must be able to deploy the default: no limited-access registration, and where that was
    read is recorded."""
    known = {(m["model"], m["version"]): m for m in _models_list()["models"]}
    for deployment in _default_deployments():
        entry = known[(deployment["model"], deployment["version"])]
        assert entry.get("registration") is False, f"{deployment['model']}: record registration: false, or pick another"
        assert entry["registrationSource"].startswith("https://learn.microsoft.com/"), deployment["model"]


def test_the_default_models_quota_is_recorded_and_a_tier_without_it_is_told_what_to_do() -> None:
    """No registration is not enough for a first answer: the subscription needs quota. Microsoft's quota tiers give
    the default model quota from Tier 1 up; a Tier 0 subscription has none and must ask (a quota request, not a
    registration), and both READMEs say so."""
    known = {(m["model"], m["version"]): m for m in _models_list()["models"]}
    for deployment in _default_deployments():
        quota = json_object(known[(deployment["model"], deployment["version"])]["quota"])
        assert quota["source"].startswith("https://learn.microsoft.com/")
        capacity = int(deployment.get("capacity", 10)) * 1000  # thousands of tokens per minute
        assert quota["tier1GlobalStandardTokensPerMinute"] >= capacity, "the default capacity exceeds Tier 1's quota"
        if quota["tier0GlobalStandardTokensPerMinute"] < capacity:
            for page in DEPLOY_DOCS:
                text = page.read_text().replace("\n", " ")
                assert "Tier 0" in text and "https://aka.ms/oai/stuquotarequest" in text, page.name


def test_roles_and_the_app_wait_for_the_openai_account_only() -> None:
    """Issue 22: a model deployment Azure refuses must not stop the roles and the Function App from being created."""
    main = (INFRA / "main.bicep").read_text()
    account = _block(main, "module openAi 'modules/openai.bicep' = if (deployOpenAI) {")
    assert "deployments" not in account, "the account module must not create the model deployments"
    assert "Microsoft.CognitiveServices/accounts/deployments@" not in (INFRA / "modules" / "openai.bicep").read_text()
    models = _block(main, "module openAiModels 'modules/openai-deployments.bicep' = if (deployOpenAI) {")
    assert re.search(r"deployments:\s*openAiDeployments\b", models)
    roles = _block(main, "module roles 'modules/roles.bicep' = {")
    depends = re.search(r"dependsOn:\s*\[([^\]]*)\]", roles)
    assert depends and depends.group(1).split() == ["openAi"], "roles must depend on the OpenAI account only"
    for name, opening in re.findall(r"^(module (\w+) '[^']+' = (?:if \([^)]*\) )?\{)", main, re.MULTILINE):
        if opening != "openAiModels":
            code = re.sub(r"//.*", "", _block(main, name))
            assert not re.search(r"\bopenAiModels\b", code), f"module {opening} waits for the models"


def test_the_model_default_is_one_parameter_with_where_to_check() -> None:
    text = (INFRA / "main.bicep").read_text()
    before = text[: text.index("param openAiDeployments array")]
    assert "az cognitiveservices model list" in before[-800:] and "models.json" in before[-800:]
    assert text.count("version: '") == len(_default_deployments()), "model versions must live in openAiDeployments only"


def test_publish_commands_carry_the_runtime() -> None:
    # local.settings.json is git-ignored, so a fresh clone has no FUNCTIONS_WORKER_RUNTIME for Core Tools to read.
    for readme in READMES:
        commands = re.findall(r"func azure functionapp publish[^\n`]*", readme.read_text())
        assert commands or readme not in DEPLOY_DOCS, f"{readme.relative_to(ROOT)} shows no publish command"
        for command in commands:
            assert "--python" in command.split(), f"{readme.relative_to(ROOT)}: `{command}` lacks --python"


def test_the_hook_reads_deployments_in_azds_subscription() -> None:
    hook = (INFRA / "hooks" / "postprovision.sh").read_text()
    calls = re.findall(r"az deployment (?:[^\n\\]|\\\n)*", hook)
    assert calls
    for call in calls:
        assert '--subscription "$subscription"' in call, f"runs in the az CLI's default subscription: {call}"
    assert 'subscription="${AZURE_SUBSCRIPTION_ID:?' in hook


def test_only_flex_consumption_regions_are_offered() -> None:
    text = (INFRA / "main.bicep").read_text()
    decorators = text[: text.index("param location string")].rsplit("\nparam ", 1)[-1]
    assert "@allowed([" in decorators, "location must offer only regions with Flex Consumption"
    allowed = re.findall(r"'(\w+)'", _block(decorators, "["))
    assert "swedencentral" in allowed and "eastus2euap" not in allowed  # a canary region is no place to deploy
    assert "type: 'location'" in decorators, "azd should prompt with these regions only (@metadata azd type location)"
    for readme in READMES:
        assert "beta azd feature" not in readme.read_text()


# The data action each route family's writing call needs with `auth: entra`, as Azure names them (Microsoft's
# resource provider operations for Microsoft.CognitiveServices, accounts/OpenAI/...; the message of Azure's 401
# names the missing one, e.g. "lacks the required data action Microsoft.CognitiveServices/accounts/OpenAI/
# responses/write"). Reads (GET) need OpenAI/<family>/read, which every role below has (OpenAI/*/read).
_OPENAI = "Microsoft.CognitiveServices/accounts/OpenAI/"
ROUTE_FAMILY_DATA_ACTION = {
    "v1/chat": _OPENAI + "deployments/chat/completions/action",
    "v1/completions": _OPENAI + "deployments/completions/action",
    "v1/embeddings": _OPENAI + "deployments/embeddings/action",
    "v1/engines": _OPENAI + "engines/completions/action",
    "v1/images": _OPENAI + "images/generations/action",
    "v1/audio": _OPENAI + "deployments/audio/action",
    "v1/assistants": _OPENAI + "assistants/write",
    "v1/threads": _OPENAI + "assistants/threads/runs/write",
    "v1/vector_stores": _OPENAI + "assistants/vector_stores/write",
    "v1/files": _OPENAI + "files/write",
    "v1/batches": _OPENAI + "batch-jobs/write",
    "v1/responses": _OPENAI + "responses/write",
}
OPENAI_ROLES = INFRA / "openai-roles.json"


def _openai_roles() -> dict[str, Any]:
    return json_object(json_object(json.loads(OPENAI_ROLES.read_text()))["roles"])


def _grants(role: dict[str, Any], data_action: str) -> bool:
    """Azure RBAC's matching: `*` stands for any characters, names compare without case, NotDataActions subtract."""

    def matches(pattern: str) -> bool:
        return re.fullmatch(".*".join(map(re.escape, pattern.lower().split("*"))), data_action.lower()) is not None

    return any(map(matches, role["dataActions"])) and not any(map(matches, role["notDataActions"]))


def _served_families(role_key: str) -> set[str]:
    role = _openai_roles()[role_key]
    return {family for family, action in ROUTE_FAMILY_DATA_ACTION.items() if _grants(role, action)}


NOT_UPSTREAM = {"health", "v1/models", "{*path}"}  # answered by the gateway itself


def _as_v1(route: str) -> str:
    """A route of Azure's mounts (core/api.py) as the /v1 route it serves."""
    if route.startswith("openai/v1/"):
        return route.removeprefix("openai/")
    if route.startswith("openai/deployments/{model}/"):
        return "v1/" + route.split("/", 3)[3]
    return "v1/" + route.removeprefix("openai/") if route.startswith("openai/") else route


def _route_families() -> set[str]:
    routes = {_as_v1(f["route"]) for f in function_index()["functions"]}
    return {"/".join(r.split("/")[:2]) for r in routes if not any(r.startswith(n) for n in NOT_UPSTREAM)}


def _default_openai_role() -> str:
    main = (INFRA / "main.bicep").read_text()
    default_role = re.search(r"param openAiAppRole string = '(\w+)'", main)
    assert default_role, "main.bicep must choose the app's OpenAI role in the parameter openAiAppRole"
    return default_role.group(1)


def test_the_apps_openai_role_is_least_privilege_and_contributor_an_explicit_opt_in() -> None:
    """Issue 22: the default is OpenAI User (no control-plane writes); what it does not serve, by its definition as
    read, is exactly what infra/README.md says needs the Contributor opt-in."""
    families = _route_families()
    assert {"v1/chat", "v1/assistants"} <= families
    assert families - set(ROUTE_FAMILY_DATA_ACTION) == set(), "new route family: say which data action it needs"
    roles = (INFRA / "modules" / "roles.bicep").read_text()
    opening = re.search(
        r"resource appOpenAi\w* 'Microsoft.Authorization/roleAssignments@[^']+' = if \(grantOpenAi\) \{", roles
    )
    assert opening, "roles.bicep must assign the app an OpenAI role when grantOpenAi is set"
    assert "roleIds[openAiAppRole]" in _block(roles, opening.group(0)).replace(" ", "")
    defined = _openai_roles()
    assert _default_openai_role() == "cognitiveServicesOpenAiUser"
    decorators = _param_decorators((INFRA / "main.bicep").read_text(), "openAiAppRole")
    allowed = re.findall(r"'(\w+)'", _block(decorators, "@allowed(["))
    assert set(allowed) == set(defined) == {"cognitiveServicesOpenAiUser", "cognitiveServicesOpenAiContributor"}
    user, contributor = defined["cognitiveServicesOpenAiUser"], defined["cognitiveServicesOpenAiContributor"]
    assert all(action.endswith("/read") for action in user["actions"]), "OpenAI User must have no control-plane writes"
    assert "Microsoft.CognitiveServices/accounts/deployments/write" in contributor["actions"]
    assert _served_families("cognitiveServicesOpenAiContributor") >= families, "the opt-in must serve every route"
    opt_in_only = families - _served_families("cognitiveServicesOpenAiUser")
    # OpenAI User carries OpenAI/responses/* since 2025-04-28 (infra/openai-roles.json says where that was read).
    assert opt_in_only == {"v1/files", "v1/batches"}, opt_in_only
    assert user["definitionUpdatedOn"] and "responses" in json.loads(OPENAI_ROLES.read_text())["read"]
    readme = (INFRA / "README.md").read_text()
    which = readme[readme.index("**Which OpenAI role.**") : readme.index("**The configuration is read-only")]
    for family in sorted(opt_in_only):
        assert ROUTE_FAMILY_DATA_ACTION[family].removeprefix("Microsoft.CognitiveServices/accounts/") in which, family
    # No text sends an identity to the opt-in for what the default already serves.
    texts = [*(p.read_text() for p in READMES), (INFRA / "main.bicep").read_text()]
    for said in re.findall(r"opt(?:-| )in for ([^.(]{0,80})", " ".join(t.replace("\n", " ") for t in texts)):
        assert "Responses" not in said and "Assistants" not in said, said
    entra = (ROOT / "docs" / "configuration.md").read_text().replace("\n", " ")
    assert "uploading files and creating batches need Cognitive Services OpenAI Contributor" in entra


def test_the_app_cannot_rewrite_its_own_configuration() -> None:
    """The config blob holds the callers' keys and the routing: the app may read it, never write it."""
    roles = (INFRA / "modules" / "roles.bicep").read_text()
    writers = {"storageBlobDataOwner", "storageBlobDataContributor"}
    for name, body in re.findall(
        r"resource (app\w+) 'Microsoft.Authorization/roleAssignments@[^']+' = (?:if \([^)]*\) )?\{(.*?)\n\}",
        roles,
        re.DOTALL,
    ):
        scoped = re.search(r"scope:\s*(\w+)", body)
        assert scoped, f"{name} names no scope"
        scope = scoped.group(1)
        role = re.search(r"roleIds\.(\w+)", body)
        if role and role.group(1) in writers:
            assert scope not in {"configStorage", "configContainer"}, f"{name} lets the app write its configuration"
    main = (INFRA / "main.bicep").read_text()
    assert re.search(r"configBlobUrl = '\$\{configStorage\.outputs\.blobEndpoint\}", main), (
        "the configuration must live in the config storage account, apart from the host's"
    )


def test_the_usage_workbook_shows_the_tiles_its_readme_documents_over_what_the_gateway_exports() -> None:
    bicep = (INFRA / "modules" / "workbook.bicep").read_text()
    queries = dict(re.findall(r"^var (\w+) = '(.*)'$", bicep, re.MULTILINE))
    tiles = dict(re.findall(r"\{ title: '([^']+)', query: (\w+) \}", bicep))
    assert set(tiles) == {
        "Tokens per caller",
        "Tokens per model",
        "Tokens per backend (group)",
        "Upstream 429s per backend (group)",
        "Latency p50 / p95 (ms)",
        "Cost per caller and model",
    }
    readme = (INFRA / "README.md").read_text()
    telemetry = (ROOT / "core" / "telemetry.py").read_text()
    for title, variable in tiles.items():
        query = queries[variable]
        assert f"**{title}**\n\n```kusto\n{query}\n```" in readme, f"infra/README.md must show the KQL of {title!r}"
        for name in re.findall(r'"((?:gen_ai|gateway)\.[a-z_.]+)"', query):
            assert f'"{name}"' in telemetry, f"{title!r} queries {name}, which core/telemetry.py does not export"
    main = (INFRA / "main.bicep").read_text()
    assert "module workbook 'modules/workbook.bicep'" in main


def _generated_config(variable: str, *values: str) -> str:
    """A `format('''...''', ...)` configuration main.bicep outputs, filled with `values` for {0}, {1}..."""
    text = (INFRA / "main.bicep").read_text()
    template = re.search(rf"var {variable} = format\('''(.*?)'''", text, re.DOTALL)
    assert template, f"main.bicep no longer builds {variable} with format('''...''')"
    filled = template.group(1)
    for index, value in enumerate(values):
        filled = filled.replace(f"{{{index}}}", value)
    return filled


def _group_api_lines(api_version: str) -> tuple[str, str]:
    """main.bicep's groupVersionLine and groupApiLine for an `openAiApiVersion`, evaluated as Bicep would."""
    text = (INFRA / "main.bicep").read_text()

    def chosen(variable: str) -> str:
        found = re.search(rf"^var {variable} = empty\(openAiApiVersion\) \? '((?:[^'\\]|\\.)*)' : '((?:[^'\\]|\\.)*)'$",
                          text, re.MULTILINE)  # fmt: skip
        assert found, f"main.bicep must choose {variable} on empty(openAiApiVersion)"
        literal = found.group(1) if not api_version else found.group(2)
        return literal.replace("\\n", "\n").replace("\\'", "'").replace("${openAiApiVersion}", api_version)

    return chosen("groupVersionLine"), chosen("groupApiLine")


def _default_api_version() -> str:
    found = re.search(r"^param openAiApiVersion string = '([^']*)'$", (INFRA / "main.bicep").read_text(), re.MULTILINE)
    assert found, "main.bicep must default openAiApiVersion"
    return found.group(1)


def _loaded_generated_config(variable: str, api_version: str) -> Any:
    from core.config.load import load_config_text

    version_line, api_line = _group_api_lines(api_version)
    models = "\n".join(f'          "{d["name"]}": {{deploymentName: "{d["name"]}"}}' for d in _default_deployments())
    values = ["oai", version_line, models, "kv", "stcfg"]
    values += [api_line] if variable == "configYamlDeployed" else ["principal", api_line]
    text = _generated_config(variable, *values)
    assert not re.search(r"\{\d\}", text), f"{variable}: a placeholder was left unfilled"
    text = text.replace("@Microsoft.KeyVault(VaultName=kv;SecretName=gateway-key-default)", "a-key")
    text = text.replace("YOUR-AOAI-RESOURCE", "oai")
    return load_config_text(text, {}, variable)


def test_the_generated_configuration_speaks_an_api_its_default_models_are_documented_on() -> None:
    """Every default deployment is served through an API Microsoft documents for its model (the check command
    recommends nothing), and is recognised as that model. Issue 22 item 5: by default no dated api-version goes to
    it at all (Azure's v1 API), and a dated one, when given, is what the group sends."""
    from core.check import needed_api

    assert _default_api_version() == "", "the default group must speak Azure's v1 API, with no api-version"
    for variable in ("configYamlDeployed", "configYamlSkeleton"):
        config = _loaded_generated_config(variable, _default_api_version())
        for deployment in _default_deployments():
            (backend,) = config.routes[deployment["name"]].backends
            assert backend.family is not None, f"{deployment['model']} is not in core/models/families.py"
            assert backend.api_version is None and backend.base_url.endswith("/openai/v1"), (variable, backend)
            assert needed_api(backend) is None, (variable, needed_api(backend))
        dated = _loaded_generated_config(variable, "2025-04-01-preview")
        for deployment in _default_deployments():
            (backend,) = dated.routes[deployment["name"]].backends
            assert backend.api_version == "2025-04-01-preview" and "/openai/v1" not in backend.base_url, backend


# ---- issue 22: a default anyone can deploy, least privilege, a workbook and a README that tell the truth ----

# Microsoft Learn, "Event-driven scaling in Azure Functions", Limit scale-out, Flex Consumption (ms.date 2026-08-03,
# https://learn.microsoft.com/azure/azure-functions/event-driven-scaling#limit-scale-out): "the lowest maximum
# instance count value is 1, and the highest supported maximum instance count value is 1000". (The 2024 preview of
# the Flex Consumption page gave 40 as the lowest; the current page supersedes it.)
FLEX_MAX_INSTANCES = (1, 1000)


def _param_decorators(text: str, name: str) -> str:
    """The decorators (and comments) written just above `param <name>`."""
    before = text[: text.index(f"param {name} ")]
    return before.rsplit("\nparam ", 1)[-1]


def test_the_maximum_instance_count_is_bounded_as_flex_consumption_documents() -> None:
    low, high = FLEX_MAX_INSTANCES
    for path in (INFRA / "main.bicep", INFRA / "modules" / "functionapp.bicep"):
        decorators = _param_decorators(path.read_text(), "maximumInstanceCount")
        assert f"@minValue({low})" in decorators and f"@maxValue({high})" in decorators, path.name
    default = re.search(r"param maximumInstanceCount int = (\d+)", (INFRA / "main.bicep").read_text())
    assert default and low <= int(default.group(1)) <= high


def _shell_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:sh|bash|shell)\n(.*?)```", text, re.DOTALL)


def test_no_readme_block_publishes_twice_when_pasted_whole() -> None:
    for readme in READMES:
        for block in _shell_blocks(readme.read_text()):
            publishes = ("functionapp publish" in block) + ("deployment source config-zip" in block)
            assert publishes <= 1, f"{readme.relative_to(ROOT)}: one block runs both publish commands:\n{block}"


def test_request_tiles_count_the_gateways_spans_only() -> None:
    """The host writes a `requests` row per invocation besides the gateway's own span: a tile over `requests` that
    took both would count each request twice and mix the host's timing with the gateway's."""
    bicep = (INFRA / "modules" / "workbook.bicep").read_text()
    queries = dict(re.findall(r"^var (\w+) = '(.*)'$", bicep, re.MULTILINE))
    over_requests = {name: query for name, query in queries.items() if query.startswith("requests")}
    assert over_requests, "the latency tile is gone"
    for name, query in over_requests.items():
        assert query.startswith('requests | where isnotempty(customDimensions["gateway.request_id"]) |'), name
    telemetry = (ROOT / "core" / "telemetry.py").read_text()
    assert '"gateway.request_id": record.request_id' in telemetry, "the request span must carry gateway.request_id"


def test_the_azd_hook_runs_where_the_readmes_say() -> None:
    hooks = (ROOT / "azure.yaml").read_text().split("hooks:", 1)[1]
    if "windows:" in hooks:
        assert (INFRA / "hooks" / "postprovision.ps1").is_file(), "azure.yaml names a Windows hook that is not there"
        return
    assert "posix:" in hooks
    for readme in READMES:
        if readme not in DEPLOY_DOCS and not any("azd up" in block for block in _shell_blocks(readme.read_text())):
            continue  # a page that only names azd, without telling anyone to run it
        assert re.search(r"POSIX[^.]*\.?[^.]*(WSL|Git Bash)", readme.read_text()), (
            f"{readme.relative_to(ROOT)} must say the azd hook is POSIX-only and what Windows users do"
        )


def test_the_bicep_creates_the_table_the_app_setting_names_and_scopes_the_role_to_it() -> None:
    """The contract with core/usage_table.py: the infrastructure creates the usage table and grants the app a role
    scoped to that table only, which may not create tables; the code reads its 403 on create as "the table exists"."""
    main = (INFRA / "main.bicep").read_text()
    table = re.search(r"var usageTableName = '([a-z][a-z0-9]{2,62})'", main, re.IGNORECASE)
    assert table, "main.bicep must name the usage table once, in var usageTableName"
    storage_module = _block(main, "module storage 'modules/storage.bicep' = {")
    assert re.search(r"tableNames:\s*\[\s*usageTableName\s*\]", storage_module), "the host storage must create it"
    storage = (INFRA / "modules" / "storage.bicep").read_text()
    assert re.search(r"tableServices/tables@[^']+' = \[for tableName in tableNames:", storage)
    app_module = _block(main, "module functionApp 'modules/functionapp.bicep' = {")
    assert re.search(r"usageTableName:\s*usageTableName\b", app_module)
    assert re.search(r"usageTableEndpoint:\s*storage\.outputs\.tableEndpoint\b", app_module)
    functionapp = (INFRA / "modules" / "functionapp.bicep").read_text()
    assert re.search(r"name: 'USAGE_TABLE_NAME'\s*value: usageTableName\b", functionapp)
    assert re.search(r"name: 'USAGE_TABLE_ENDPOINT'\s*value: usageTableEndpoint\b", functionapp)
    roles_module = _block(main, "module roles 'modules/roles.bicep' = {")
    assert re.search(r"usageTableName:\s*usageTableName\b", roles_module)
    roles = (INFRA / "modules" / "roles.bicep").read_text()
    assert "name: '${hostStorageAccountName}/default/${usageTableName}'" in roles
    grant = _block(roles, "resource appUsageTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {")
    assert "scope: usageTable" in grant and "roleIds.storageTableDataContributor" in grant
    code = (ROOT / "core" / "usage_table.py").read_text()
    assert 'DEFAULT_TABLE_NAME = "gatewayusage"' in code and table.group(1) == "gatewayusage"
    assert re.search(r"client\.create_table\(\)\s*except ResourceExistsError:", code)
    assert "error.status_code != 403" in code, "a 403 on create must read as exists under the table-scoped role"
    for readme in DEPLOY_DOCS:
        text = readme.read_text()
        assert "creates the table" in text and "403" in text, f"{readme.relative_to(ROOT)} must state the contract"


def test_one_source_names_the_apps_openai_role() -> None:
    """Issue 22 item 9: main.bicep's openAiAppRole default is the one choice; roles.bicep cannot default otherwise,
    its role ids are the recorded definitions', and every text that names the app's role names that one."""
    default_key = _default_openai_role()
    defined = _openai_roles()
    name = defined[default_key]["roleName"]
    roles = (INFRA / "modules" / "roles.bicep").read_text()
    assert re.search(r"^param openAiAppRole string$", roles, re.MULTILINE), "roles.bicep must not default the role"
    role_ids = dict(re.findall(r"(\w+): '([0-9a-f-]{36})'", roles))
    for key, role in defined.items():
        assert role_ids[key] == role["id"], f"roles.bicep's {key} is not {role['roleName']}"
    main = (INFRA / "main.bicep").read_text()
    roles_module = _block(main, "module roles 'modules/roles.bicep' = {")
    assert re.search(r"openAiAppRole:\s*openAiAppRole\b", roles_module)
    skeleton = _generated_config("configYamlSkeleton")
    assert f'--role "{name}"' in skeleton, "the skeleton's az role assignment must grant the default role"
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    entra = configuration[configuration.index("## Entra ID instead of keys") :][:1200]
    assert f"it needs the {name} role" in entra.replace("\n", " ")
    infra_readme = (INFRA / "README.md").read_text()
    short_id = defined[default_key]["id"][:8]
    assert f"| app identity | `openAiAppRole`: {name} (`{short_id}-...`) by default" in infra_readme
    texts = {path: path.read_text().replace("\n//", "").replace("\n", " ") for path in [*READMES, *BICEP_FILES]}
    for path, text in texts.items():
        for said in re.findall(r"(Cognitive Services OpenAI \w+)[^.|]{0,40}? by default", text):
            assert said == name, f"{path.relative_to(ROOT)} says the app gets {said} by default, not {name}"
    assert name in texts[INFRA / "modules" / "roles.bicep"]


def test_the_readme_says_how_to_check_the_api_after_deploying() -> None:
    """Issue 22 item 5: one test call after deploying, with the default model, and what its answers mean."""
    operations = (ROOT / "docs" / "operations.md").read_text()
    section = operations[operations.index("**Check the API the model gets, with one call.**") :][:2500]
    assert "api: v1" in section and "no api-version" in section
    name = _default_deployments()[0]["name"]
    calls = [block for block in _shell_blocks(section) if "/v1/chat/completions" in block]
    assert calls and f'"model":"{name}"' in calls[0], f"the check call must use the default deployment {name}"
    for answer in ("200", "400", "401/403", "404"):
        assert answer in section, f"say what a {answer} means"


def _allowed_locations() -> list[str]:
    text = (INFRA / "main.bicep").read_text()
    return re.findall(r"'(\w+)'", _block(_param_decorators(text, "location"), "@allowed(["))


def test_the_openai_account_lands_where_the_default_model_is_offered() -> None:
    """Issue 22 item 2: most regions `location` allows cannot host the default model in Global Standard; whichever
    the app's region, the OpenAI account goes to one that can, unless openAiLocation says where."""
    main = (INFRA / "main.bicep").read_text()
    regions = re.findall(r"'(\w+)'", _block(main, "var defaultModelRegions = ["))
    (default,) = _default_deployments()
    entry = next(
        m for m in _models_list()["models"] if (m["model"], m["version"]) == (default["model"], default["version"])
    )
    assert regions == entry["globalStandardRegions"] and entry["regionsSource"], "keep main.bicep and models.json equal"
    assert default.get("sku", "GlobalStandard") == "GlobalStandard"
    fallback = re.search(r"^var openAiFallbackRegion = '(\w+)'$", main, re.MULTILINE)
    assert fallback and fallback.group(1) in regions
    assert re.search(r"^param openAiLocation string = ''$", main, re.MULTILINE)
    rule = (
        "var openAiRegion = !empty(openAiLocation) ? openAiLocation : "
        "(contains(defaultModelRegions, location) ? location : openAiFallbackRegion)"
    )
    assert rule in main
    assert re.search(
        r"location:\s*openAiRegion\b", _block(main, "module openAi 'modules/openai.bicep' = if (deployOpenAI) {")
    )
    allowed = _allowed_locations()
    assert set(allowed) - set(regions), "the allowed list has regions without the model: the fallback matters"
    for location in allowed:
        resolved = location if location in regions else fallback.group(1)
        assert resolved in regions, location


# Azure Functions' front end answers 502 to a request that has not completed within 230 s, and cuts a response that
# sends nothing for 230 s (https://learn.microsoft.com/azure/azure-functions/functions-scale#timeout).
FRONT_END_LIMIT_SECONDS = 230


def test_what_the_deployed_app_runs_with_stays_under_the_front_ends_230_s() -> None:
    """Issue 22 item 4: the configuration the Bicep generates sets no timeouts, so the app runs with the defaults;
    those answer a non-streamed call within 230 s, and a stream silent upstream (a model reasoning) sends the client a
    keep-alive comment well before 230 s of silence, whatever timeouts.idle allows between events."""
    from core.config.schema import Timeouts

    for variable in ("configYamlDeployed", "configYamlSkeleton"):
        assert "timeouts" not in _generated_config(variable), f"{variable} must leave the timeouts at their defaults"
        settings = _loaded_generated_config(variable, _default_api_version()).settings
        assert settings.total_timeout < FRONT_END_LIMIT_SECONDS, settings.total_timeout
        assert 0 < settings.keep_alive < FRONT_END_LIMIT_SECONDS, settings.keep_alive
        if settings.idle_timeout >= FRONT_END_LIMIT_SECONDS:
            assert settings.keep_alive <= FRONT_END_LIMIT_SECONDS / 2, "one lost keep-alive must not cut the stream"
    defaults = Timeouts()
    assert (defaults.total, defaults.keepAlive) == (settings.total_timeout, settings.keep_alive)
    with pytest.raises(ValueError):
        Timeouts(keepAlive=FRONT_END_LIMIT_SECONDS)
    reference = (ROOT / "docs" / "configuration.md").read_text()
    assert f"{FRONT_END_LIMIT_SECONDS} s" in reference and "`timeouts.keepAlive` | `15`" in reference


def test_a_rotated_key_vault_secret_reaches_every_instance_without_a_redeploy() -> None:
    """Issue 22 item 6: every Key Vault reference the Bicep writes follows the secret's current version (no
    SecretVersion), and the app leaves SECRET_REFRESH_SECONDS to the code's default, a timer that is on; the README's
    rotation walk-through names that default."""
    from core.gateway import DEFAULT_SECRET_REFRESH_SECONDS, SECRET_REFRESH_VARIABLE

    texts = {path.name: path.read_text() for path in BICEP_FILES}
    references = [
        (name, ref) for name, text in texts.items() for ref in re.findall(r"@Microsoft\.KeyVault\([^)]*\)", text)
    ]
    assert any(name == "main.bicep" for name, _ in references), "the generated configuration names its Key Vault keys"
    for name, reference in references:
        assert "SecretVersion=" not in reference and "SecretUri=" not in reference, (name, reference)
    assert SECRET_REFRESH_VARIABLE == "SECRET_REFRESH_SECONDS" and SECRET_REFRESH_VARIABLE in NOT_PROVISIONED
    assert SECRET_REFRESH_VARIABLE not in app_settings_in_bicep()
    assert 0 < DEFAULT_SECRET_REFRESH_SECONDS <= 3600, "a rotated secret must be read again within the hour"
    operations = (ROOT / "docs" / "operations.md").read_text()
    rotation = operations[operations.index("## Rotating keys without a restart") :][:1500]
    assert f"`SECRET_REFRESH_SECONDS` (default {DEFAULT_SECRET_REFRESH_SECONDS}" in rotation.replace("\n", " ")
