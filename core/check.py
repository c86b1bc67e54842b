"""`python -m core check`: validate the configuration and show what it resolves to.

Most "DeploymentNotFound" reports against proxies like this come from a model
mapped to the wrong deployment or URL; printing the resolved table makes such
mistakes visible before the first request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from core.config.load import ConfigError, load_config
from core.config.model import Backend, RuntimeConfig


def run_check(environ: Mapping[str, str], out: TextIO) -> int:
    try:
        config = load_config(environ)
    except ConfigError as error:
        out.write(f"Configuration is invalid ({len(error.problems)} problem(s)):\n")
        for problem in error.problems:
            out.write(f"  - {problem}\n")
        return 1
    out.write(describe(config))
    return 0


def describe(config: RuntimeConfig) -> str:
    lines = [f"Configuration OK: {config.source}", ""]
    rows = [("MODEL", "GROUP", "UPSTREAM", "API-VERSION", "AUTH", "PARAMS")]
    for route in config.routes.values():
        for backend in route.backends:
            rows.append(
                (route.model, backend.group, upstream_template(backend), backend.api_version or "-",
                 auth_kind(backend), params_summary(backend))
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    settings = config.settings
    lines.append("")
    if settings.api_keys:
        names = ", ".join(key.name for key in settings.api_keys)
        lines.append(f"Callers: {len(settings.api_keys)} gateway key(s): {names}")
    elif config.passthrough:
        lines.append("Callers: pass-through (each caller's own key is sent upstream as api-key)")
    else:
        lines.append("Callers: anonymous (gateway.allowAnonymous: true)")
    lines.append(
        f"Timeouts: connect {settings.connect_timeout:g}s, read {settings.read_timeout:g}s; "
        f"max body {settings.max_body_bytes} bytes; "
        f"streams {'normalised (filter-only chunks dropped)' if settings.normalize_streams else 'raw'}"
    )
    for warning in config.warnings:
        lines.append(f"Warning: {warning}")
    return "\n".join(lines) + "\n"


def upstream_template(backend: Backend) -> str:
    """The upstream URL with `{operation}` where the request's operation goes."""
    if backend.serverless:
        return backend.base_url
    return f"{backend.base_url}/{{operation}}"


def auth_kind(backend: Backend) -> str:
    if backend.auth == "passthrough":
        return "pass-through"
    return "api-key+bearer" if backend.serverless else "api-key"


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
