"""Turn a validated configuration into the RuntimeConfig the request path reads."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from .model import Backend, CallerKey, GatewaySettings, Route, RuntimeConfig
from .schema import Endpoint, Gateway, Group, ModelSpec

INSTANCE_NAME = "${INSTANCE_NAME}"
DEPLOYMENT_NAME = "${DEPLOYMENT_NAME}"


def resolve(
    endpoint: Endpoint, gateway: Gateway, *, source: str, warnings: Iterable[str] = ()
) -> RuntimeConfig:
    return RuntimeConfig(
        routes=resolve_routes(endpoint),
        settings=resolve_settings(gateway),
        source=source,
        warnings=tuple(warnings),
    )


def resolve_routes(endpoint: Endpoint) -> dict[str, Route]:
    """One route per served model, in file order."""
    return {
        model: Route(model=model, backends=(resolve_backend(group, spec),))
        for group in endpoint.groups
        for model, spec in group.served_models().items()
    }


def resolve_backend(group: Group, model: ModelSpec | bool) -> Backend:
    if group.serverless:
        deployment = None
        base_url = group.base_url or ""
    else:
        deployment = group.deployment_for(model) or ""
        base_url = deployment_url(group, deployment)
    return Backend(
        group=group.group,
        deployment=deployment,
        api_version=group.version_for(model) or None,
        serverless=group.serverless,
        base_url=base_url,
        auth="passthrough" if group.passthrough else "api-key",
        headers=upstream_headers(group),
        add_params=dict(group.add_params),
        drop_params=frozenset(group.drop_params),
        force_prompt=group.force_prompt,
        assistants=group.assistants_for(model),
    )


def deployment_url(group: Group, deployment: str) -> str:
    """`.../openai/deployments/{deployment}`, without a trailing slash."""
    if not group.base_url:
        return f"{azure_origin(group.instance_name or '')}/openai/deployments/{deployment}"
    template = group.base_url
    url = template.replace(INSTANCE_NAME, group.instance_name or "")
    url = url.replace(DEPLOYMENT_NAME, deployment).rstrip("/")
    path = urlsplit(url).path
    # The deployment is already in the URL (placeholder, or written out as in the
    # Cloudflare example): use it as is.
    if DEPLOYMENT_NAME in template or deployment in path.split("/"):
        return url
    if path.endswith("/openai"):
        return f"{url}/deployments/{deployment}"
    return f"{url}/openai/deployments/{deployment}"


def azure_origin(instance_name: str) -> str:
    """`https://{instance}.openai.azure.com`, or the instance itself when it is already a host."""
    if ".azure.com" in instance_name:
        host = instance_name.split("://", 1)[-1].rstrip("/")
        return f"https://{host}"
    return f"https://{instance_name}.openai.azure.com"


def upstream_headers(group: Group) -> tuple[tuple[str, str], ...]:
    """Auth first, then additionalHeaders, which win over same-named auth headers.

    Passthrough groups carry no auth header: the proxy adds the caller's key per request.
    """
    headers: dict[str, str] = {}
    if group.api_key:
        headers["api-key"] = group.api_key
        if group.serverless:
            # Azure AI serverless endpoints take the Bearer form.
            headers["authorization"] = f"Bearer {group.api_key}"
    for name, value in group.additional_headers.items():
        headers[name.lower()] = value
    return tuple(headers.items())


def resolve_settings(gateway: Gateway) -> GatewaySettings:
    return GatewaySettings(
        api_keys=tuple(
            CallerKey(
                name=caller.name,
                key=caller.key,
                models=None if caller.models is None else frozenset(caller.models),
            )
            for caller in gateway.api_keys
        ),
        allow_anonymous=gateway.allow_anonymous,
        connect_timeout=gateway.timeouts.connect,
        read_timeout=gateway.timeouts.read,
        max_body_bytes=gateway.max_body_bytes,
        normalize_streams=gateway.normalize_streams,
    )
