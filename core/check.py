"""`python -m core check`: validate the configuration and show what it resolves to.

Most "DeploymentNotFound" reports against proxies like this come from a model
mapped to the wrong deployment or URL; printing the resolved table makes such
mistakes visible before the first request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TextIO

from core.config import ConfigError, in_file_order, located
from core.config.api_versions import version_date as preview_or_ga_date
from core.config.model import Backend, CallerKey, Pool, ResourceBackend, RuntimeConfig
from core.config.provider import load_config
from core.config.redaction import redact
from core.models.families import CHECKED
from core.models.prices import DEFAULT_PRICES_DATE, DEFAULT_PRICES_SOURCE, money


def run_check(environ: Mapping[str, str], out: TextIO, *, strict: bool = False) -> int:
    """0 when the configuration loads (with `strict`, only when it has no warning either); 1 otherwise."""
    try:
        config = load_config(environ)
    except ConfigError as error:
        out.write(f"Configuration is invalid ({len(error.problems)} problem(s)):\n")
        out.writelines(f"  - {located(problem)}\n" for problem in in_file_order(error.problems))
        if error.warnings:
            out.write(f"Warnings ({len(error.warnings)}):\n")
            out.writelines(f"  - {located(warning)}\n" for warning in in_file_order(error.warnings))
        return 1
    out.write(describe(config))
    if strict and config.warnings:
        out.write(f"\nFailing (--strict): {len(config.warnings)} warning(s) above.\n")
        return 1
    return 0


def describe(config: RuntimeConfig) -> str:
    warned = f" with {len(config.warnings)} warning(s), listed at the end" if config.warnings else ""
    lines = [f"Configuration OK{warned}: {config.source}", ""]
    rows = [("MODEL", "GROUP", "UPSTREAM", "API-VERSION", "AUTH", "PARAMS")]
    for route in config.routes.values():
        if route.pool is not None:
            members = ", ".join(member.model for member in route.pool.members)
            rows.append((route.model, "(pool)", members, "-", "-", route.pool.strategy))
            continue
        for backend in route.backends:
            rows.append(
                (
                    route.model,
                    backend.group,
                    upstream_template(backend),
                    backend.api_version or "-",
                    auth_kind(backend),
                    params_summary(backend),
                )
            )
    lines += table(rows)
    lines += models_section(config)
    lines += pools_section(config)
    lines += resources_section(config)
    lines += prices_section(config)
    settings = config.settings
    lines.append("")
    if settings.api_keys:
        lines.append(f"Callers: {len(settings.api_keys)} gateway key(s):")
        lines += [f"  {caller.name}: {allowed(caller)}" for caller in settings.api_keys]
    elif config.passthrough:
        lines.append("Callers: pass-through (each caller's own key is sent upstream as api-key)")
    else:
        lines.append("Callers: anonymous (gateway.allowAnonymous: true)")
    lines.append(
        f"Timeouts: connect {settings.connect_timeout:g}s, read {settings.read_timeout:g}s, "
        f"total {settings.total_timeout:g}s, idle {settings.idle_timeout:g}s, stream {settings.stream_timeout:g}s; "
        f"max body {settings.max_body_bytes} bytes, max response {settings.max_response_bytes} bytes; "
        f"streams {'normalised (filter-only chunks dropped)' if settings.normalize_streams else 'raw'}"
    )
    if settings.egress_proxy:
        lines.append(f"Egress: upstream connections go through {redact(settings.egress_proxy)}")
    responses = ", ".join(resource.group for resource in config.responses_resources) or "none"
    lines.append(f"Responses API (/v1/responses, routed by model): {responses}")
    for warning in in_file_order(list(config.warnings)):
        lines.append(f"Warning: {located(warning)}")
    return "\n".join(lines) + "\n"


def allowed(caller: CallerKey) -> str:
    """What a caller key may use: its model allow-list, and the resource-scoped APIs."""
    models = "every model" if caller.models is None else ", ".join(sorted(caller.models)) or "no model"
    return f"{models}; resource APIs" if caller.resource_apis else models


def models_section(config: RuntimeConfig) -> list[str]:
    """What the gateway concluded about the model behind each deployment, how, and what it does about it;
    then what to change where a group's api-version is older than its model needs."""
    rows = [("MODEL", "AZURE MODEL", "KIND", "KNOWN FROM", "REQUESTS")]
    advice: list[str] = []
    for route in config.routes.values():
        if route.pool is not None:
            continue
        for backend in route.backends:
            family = backend.family
            rows.append(
                (
                    route.model,
                    family.name if family else "?",
                    family.kind if family else "-",
                    backend.family_from or "-",
                    fitting_summary(backend),
                )
            )
            if (need := needed_api(backend)) is not None:
                advice.append(f"  {route.model}: {need}")
    lines = [
        "",
        f'Models behind the deployments (the gateway\'s table of {CHECKED}; docs/clients.md, "Models"):',
        *table(rows, "  "),
    ]
    if advice:
        lines += ["Recommended:", *advice]
    return lines


def prices_section(config: RuntimeConfig) -> list[str]:
    """Each deployment's price per million tokens and where it comes from: which are the built-in table's
    fallbacks, and how old that table is."""
    rows = [("MODEL", "INPUT", "CACHED INPUT", "OUTPUT", "FROM")]
    defaults = False
    for route in config.routes.values():
        backends = route.backends if route.pool is None else ()
        named = [(route.model, backend) for backend in backends]
        if route.pool is not None:
            named = [(f"{route.model} ({member.model})", member.backend) for member in route.pool.members]
        for name, backend in named:
            price = backend.price
            if price is None:
                rows.append((name, "-", "-", "-", "unpriced"))
                continue
            defaults |= price.default
            source = f"default table ({backend.price_from})" if price.default else backend.price_from or "price"
            rows.append((name, money(price.input), money(price.cached_input), money(price.output), source))
    if all(row[4] == "unpriced" for row in rows[1:]):
        return []
    lines = ["", "Prices per million tokens (cost in the access log and metrics, and keys' cost limits):"]
    lines += table(rows, "  ")
    if defaults:
        lines.append(
            f"  Default prices are a fallback: the built-in table of {DEFAULT_PRICES_DATE} (Azure OpenAI Global "
            f"Standard, USD, {DEFAULT_PRICES_SOURCE}); set `price` for what your account is billed."
        )
    return lines


def fitting_summary(backend: Backend) -> str:
    fit = backend.fit
    if fit is None:
        return "sent as they come (fitToModel: false)"
    if fit.responses_only:
        if backend.responses_url is None:
            return "chat completions refused by Azure (no resource's Responses API to ask)"
        return "chat completions served through the resource's Responses API, fitted"
    fitted = []
    if fit.changes_parameters:
        fitted.append("max_completion_tokens for max_tokens, no non-default sampling or logprobs")
    if fit.developer_as_system:
        fitted.append("developer messages as system (the api-version predates them)")
    if not fitted:
        return "sent as they come; repaired if Azure refuses a parameter"
    repaired = "" if fit.changes_parameters else "; repaired if Azure refuses a parameter"
    return "fitted: " + ", ".join(fitted) + repaired


def needed_api(backend: Backend) -> str | None:
    """What to change when the group's api-version is older than what Microsoft documents for the model."""
    family = backend.family
    if family is None or family.api_version is None or backend.flavor == "v1" or backend.serverless:
        return None
    v1 = f"gateway.groups.{backend.group}: {{api: v1}}"
    if family.api_version == "v1":
        return f"{family.name} is documented on Azure's v1 API only: set {v1}"
    sent, needed = preview_or_ga_date(backend.api_version), preview_or_ga_date(family.api_version)
    if sent is None or needed is None or sent >= needed:
        return None
    sends = backend.api_version
    return f"{family.name} needs api-version {family.api_version} or later (the group sends {sends}): set {v1}"


def pools_section(config: RuntimeConfig) -> list[str]:
    """Each pool: its strategy and limits, then its members in the order they are first tried."""
    lines: list[str] = []
    for route in config.routes.values():
        if route.pool is None:
            continue
        lines += ["", f"Pool {route.model}: {pool_summary(route.pool)}"]
        members = route.pool.members
        if route.pool.strategy == "priority":
            members = tuple(sorted(members, key=lambda member: member.priority))
        rows = [("ORDER", "MEMBER", "GROUP", "PRIORITY", "WEIGHT")]
        for order, member in enumerate(members, 1):
            rows.append((str(order), member.model, member.backend.group, str(member.priority), str(member.weight)))
        lines += table(rows, indent="  ")
    return lines


def pool_summary(pool: Pool) -> str:
    breaker = pool.breaker
    parts = [
        f"strategy {pool.strategy}",
        f"up to {pool.max_attempts} attempt(s)",
        f"time budget {pool.time_budget:g}s" if pool.time_budget else "time budget gateway.timeouts.total",
        f"cooldown {pool.cooldown:g}s (at most {pool.max_cooldown:g}s)",
        f"breaker {breaker.failure_percent}% of {breaker.minimum_requests}+ attempt(s) in {breaker.window:g}s"
        f" failed -> open {breaker.trip:g}s" + (" (or Retry-After)" if breaker.accept_retry_after else ""),
        "retries after a read timeout" if pool.retry_on_timeout else "no retry after a read timeout",
    ]
    if pool.first_byte_timeout:
        which = "streams" if pool.first_byte_timeout_for == "streams" else "every call"
        parts.append(f"first byte within {pool.first_byte_timeout:g}s ({which})")
    return "; ".join(parts)


RESOURCES_TITLE = "Resource APIs (assistants, threads, vector stores, files, batches, responses)"


def resources_section(config: RuntimeConfig) -> list[str]:
    """The resource-scoped APIs (assistants, threads, vector stores, files, batches, responses)."""
    if not config.assistants_resources:
        return ["", f"{RESOURCES_TITLE}: off (endpoint assistants not enabled)"]
    rows = [("GROUP", "BASE URL", "API-VERSION", "RESPONSES", "AUTH", "MODELS")]
    for resource in config.assistants_resources:
        rows.append(
            (
                resource.group,
                redact(resource.base_url),
                resource.api_version or resource.flavor,
                resource.responses_api_version or resource.flavor,
                resource_auth(resource),
                models_summary(resource),
            )
        )
    return ["", f"{RESOURCES_TITLE}:", *table(rows)]


def table(rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    """Rows as left-aligned columns, two spaces apart; the first row is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


AUTH_LABELS = {"api-key": "api-key", "passthrough": "pass-through", "entra": "entra-id"}


def resource_auth(resource: ResourceBackend) -> str:
    return AUTH_LABELS[resource.auth]


def models_summary(resource: ResourceBackend) -> str:
    """`public=deployment` pairs, or just the id when both are the same."""
    pairs = [model if model == dep else f"{model}={dep}" for model, dep in resource.deployments.items()]
    return ", ".join(pairs) or "-"


def upstream_template(backend: Backend) -> str:
    """The upstream URL with `{operation}` where the request's operation goes."""
    if backend.serverless:
        return redact(backend.base_url)
    return f"{redact(backend.base_url)}/{{operation}}"


def auth_kind(backend: Backend) -> str:
    if backend.auth == "api-key" and backend.serverless:
        return "api-key+bearer"
    return AUTH_LABELS[backend.auth]


def params_summary(backend: Backend) -> str:
    parts = []
    if backend.add_params:
        parts.append("add " + ",".join(sorted(backend.add_params)))
    if backend.drop_params:
        parts.append("drop " + ",".join(sorted(backend.drop_params)))
    if backend.force_prompt:
        parts.append("forcePrompt")
    if backend.assistants:
        parts.append("assistants")
    return "; ".join(parts) or "-"
