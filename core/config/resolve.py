"""Turn a validated configuration into the RuntimeConfig the request path reads."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from core.models.families import Family, family_of
from core.models.fit import Fit
from core.models.prices import Price, default_price, micros

from .api_versions import (
    ASSISTANTS_MIN_DATE,
    DEFAULT_PREVIEW_VERSION,
    RESPONSES_MIN_DATE,
    newest_preview,
    takes_developer_role,
)
from .azure_urls import deployment_url, resource_root
from .model import (
    Backend,
    Breaker,
    CallerKey,
    Cors,
    GatewaySettings,
    Limits,
    ModelRoute,
    Pool,
    PoolMember,
    ResourceBackend,
    RuntimeConfig,
)
from .schema import (
    AzureOpenAISection,
    CorsSection,
    GatewaySection,
    Group,
    GroupSection,
    LimitsSection,
    ModelSpec,
    PoolSection,
    PriceSection,
    upstream_auth,
)


def resolve(
    endpoint: AzureOpenAISection,
    gateway: GatewaySection,
    *,
    source: str,
    warnings: Iterable[str] = (),
    env_routes: Mapping[str, ModelRoute] | None = None,
) -> RuntimeConfig:
    """`env_routes` (LibreChat's DALL-E variables) follow the groups' routes."""
    return RuntimeConfig(
        routes=resolve_pools(gateway, {**resolve_routes(endpoint, gateway), **(env_routes or {})}),
        settings=resolve_settings(gateway),
        source=source,
        warnings=tuple(warnings),
        assistants_resources=resolve_resources(endpoint, gateway),
        responses_resources=resolve_responses(endpoint, gateway),
    )


def resolve_routes(endpoint: AzureOpenAISection, gateway: GatewaySection | None = None) -> dict[str, ModelRoute]:
    """One route per served model, in file order."""
    gateway = gateway or GatewaySection()
    routes = {}
    for group in endpoint.groups:
        settings = gateway.group_section(group.group)
        for model, spec in group.served_models().items():
            routes[model] = ModelRoute(model=model, backends=(resolve_backend(group, spec, settings, model),))
    return routes


def resolve_pools(gateway: GatewaySection, routes: dict[str, ModelRoute]) -> dict[str, ModelRoute]:
    """`routes` with each pool's route added, or put in place of the member whose id it takes."""
    pooled = dict(routes)
    for pool_id, section in gateway.pools.items():
        pooled[pool_id] = resolve_pool(pool_id, section, routes, gateway.max_cooldown)
    return pooled


def resolve_pool(
    pool_id: str, section: PoolSection, routes: Mapping[str, ModelRoute], max_cooldown: float = 300.0
) -> ModelRoute:
    members = tuple(
        PoolMember(
            member.model,
            _member_backend(routes[member.model].backends[0], member.price),
            member.priority,
            member.weight,
        )
        for member in section.members()
    )
    breaker = section.circuit_breaker
    pool = Pool(
        strategy=section.strategy,
        members=members,
        max_attempts=min(section.max_attempts or len(members), len(members)),
        time_budget=section.time_budget,
        retry_on_timeout=section.retry_on_timeout,
        first_byte_timeout=section.first_byte_timeout,
        first_byte_timeout_for=section.first_byte_timeout_for,
        cooldown=section.cooldown,
        breaker=Breaker(
            breaker.failure_percent,
            breaker.minimum_requests,
            breaker.window,
            breaker.trip,
            breaker.accept_retry_after,
        ),
        max_cooldown=max_cooldown,
    )
    return ModelRoute(pool_id, tuple(member.backend for member in members), pool)


def _member_backend(backend: Backend, price: PriceSection | None) -> Backend:
    """A pool member's backend: its model's, at the member's own price when it has one."""
    if price is None:
        return backend
    return dataclasses.replace(backend, price=_price(price), price_from="pool member price")


def _price(section: PriceSection) -> Price:
    return Price.of(section.input, section.cached_input, section.output)


def model_price(
    group: Group, model: ModelSpec | bool, model_id: str | None, deployment: str | None
) -> tuple[Price | None, str | None]:
    """A deployment's price and where it comes from: its model's `price`, else the built-in table's price for its
    baseModel, model id or deployment name (serverless models are no Azure OpenAI models: unpriced by default)."""
    if isinstance(model, ModelSpec) and model.price is not None:
        return _price(model.price), "price"
    if group.serverless:
        return None, None
    base_model = model.base_model if isinstance(model, ModelSpec) else None
    found = default_price(base_model, model_id, deployment)
    if found is None:
        return None, None
    return found[0], found[1]


def resolve_backend(
    group: Group, model: ModelSpec | bool, settings: GroupSection | None = None, model_id: str | None = None
) -> Backend:
    settings = settings or GroupSection()
    flavor = settings.api
    api_version = group.version_for(model) or None
    responses_url = None
    if group.serverless:
        deployment = None
        base_url = group.base_url or ""
    else:
        deployment = group.deployment_for(model) or ""
        if flavor == "v1":
            root = _validated_root(group, deployment)
            base_url = f"{root}/openai/v1"
            responses_url = f"{base_url}/responses"
            api_version = None  # the v1 API takes none; the deployment goes in the body's model
        else:
            base_url = deployment_url(group, deployment)
            if (resource := resource_root(group, deployment)) is not None:
                responses_url = f"{resource}/openai/responses?api-version={responses_api_version(group, settings)}"
    family, family_from = model_family(group, model, model_id, deployment)
    price, price_from = model_price(group, model, model_id, deployment)
    fit_to_model = model.fit_to_model if isinstance(model, ModelSpec) and model.fit_to_model is not None else None
    fits = settings.fit_to_model if fit_to_model is None else fit_to_model
    # Serverless endpoints version another API (Azure AI model inference): its roles are not Azure OpenAI's.
    old_roles = not group.serverless and not takes_developer_role(api_version)
    return Backend(
        group=group.group,
        deployment=deployment,
        api_version=api_version,
        serverless=group.serverless,
        base_url=base_url,
        auth=upstream_auth(group, settings),
        headers=configured_headers(group),
        add_params=dict(group.add_params),
        drop_params=frozenset(group.drop_params),
        force_prompt=group.force_prompt,
        assistants=group.assistants_for(model),
        flavor=flavor,
        family=family,
        family_from=family_from,
        fit=Fit.of(family, developer_as_system=old_roles) if fits else None,
        responses_url=responses_url,
        price=price,
        price_from=price_from,
    )


def model_family(
    group: Group, model: ModelSpec | bool, model_id: str | None, deployment: str | None
) -> tuple[Family | None, str | None]:
    """The model behind a deployment, and how the gateway knows: a model's baseModel, else its id, else the
    deployment's name, when it names a known family. A serverless model is no Azure OpenAI model."""
    base_model = model.base_model if isinstance(model, ModelSpec) else None
    if base_model is not None:
        return family_of(base_model), "baseModel"
    if group.serverless:
        return None, None
    for name, how in ((model_id, "model id"), (deployment, "deployment name")):
        if name and (family := family_of(name)) is not None:
            return family, how
    return None, None


def _validated_root(group: Group, deployment: str) -> str:
    root = resource_root(group, deployment)
    if root is None:  # validate.py reports this before resolution
        raise ValueError(f'group "{group.group}": no resource root')
    return root


def configured_headers(group: Group) -> tuple[tuple[str, str], ...]:
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


# -- resource-scoped APIs (assistants, threads, vector stores, files, batches, responses) ----------


def resolve_resources(endpoint: AzureOpenAISection, gateway: GatewaySection) -> tuple[ResourceBackend, ...]:
    """One ResourceBackend per assistants-enabled group, only when the endpoint enables assistants."""
    if not endpoint.assistants:
        return ()
    resources = []
    for group in endpoint.groups:
        deployments = group.assistants_deployments()
        if not deployments or group.serverless:
            continue
        root = _validated_root(group, next(iter(deployments.values())))
        resources.append(resource_backend(group, gateway.group_section(group.group), root, deployments))
    return tuple(resources)


def resolve_responses(endpoint: AzureOpenAISection, gateway: GatewaySection) -> tuple[ResourceBackend, ...]:
    """One ResourceBackend per group whose resource root is known, with every model it serves;
    a group whose literal baseURL hides the root serves no Responses API."""
    resources = []
    for group in endpoint.groups:
        deployments = {model: group.deployment_for(spec) or "" for model, spec in group.served_models().items()}
        if not deployments or group.serverless:
            continue
        root = resource_root(group, next(iter(deployments.values())))
        if root is not None:
            resources.append(resource_backend(group, gateway.group_section(group.group), root, deployments))
    return tuple(resources)


def resource_backend(group: Group, settings: GroupSection, root: str, deployments: dict[str, str]) -> ResourceBackend:
    flavor = settings.api
    public_models: dict[str, str] = {}
    for model, deployment in deployments.items():
        public_models.setdefault(deployment, model)
    return ResourceBackend(
        group=group.group,
        base_url=f"{root}/openai/v1" if flavor == "v1" else f"{root}/openai",
        api_version=None if flavor == "v1" else assistants_api_version(group, settings),
        responses_api_version=None if flavor == "v1" else responses_api_version(group, settings),
        flavor=flavor,
        auth=upstream_auth(group, settings),
        headers=configured_headers(group),
        deployments=deployments,
        public_models=public_models,
    )


def configured_versions(group: Group) -> list[str]:
    """The group's version, then each served model's own version."""
    versions = [group.version] if group.version else []
    for spec in group.served_models().values():
        if isinstance(spec, ModelSpec) and spec.version:
            versions.append(spec.version)
    return versions


def assistants_api_version(group: Group, settings: GroupSection) -> str:
    if settings.assistants_version:
        return settings.assistants_version
    return newest_preview(configured_versions(group), ASSISTANTS_MIN_DATE) or DEFAULT_PREVIEW_VERSION


def responses_api_version(group: Group, settings: GroupSection) -> str:
    candidates = [settings.assistants_version, *configured_versions(group)]
    return newest_preview(candidates, RESPONSES_MIN_DATE) or DEFAULT_PREVIEW_VERSION


# -- gateway settings ---------------------------------------------------------------------


def _limits(limits: LimitsSection | None) -> Limits | None:
    if limits is None:
        return None
    resolved = Limits(
        limits.tokens_per_minute,
        limits.requests_per_minute,
        limits.tokens_per_day,
        None if limits.cost_per_day is None else max(micros(limits.cost_per_day), 1),
        None if limits.cost_per_month is None else max(micros(limits.cost_per_month), 1),
        limits.reserve_output_tokens,
    )
    return resolved if resolved != Limits(reserve_output_tokens=limits.reserve_output_tokens) else None


def resolve_settings(gateway: GatewaySection) -> GatewaySettings:
    return GatewaySettings(
        api_keys=tuple(
            CallerKey(
                name=caller.name,
                key=caller.key,
                models=None if caller.models is None else frozenset(caller.models),
                # A key limited to some models must opt in to objects shared with every other caller.
                resource_apis=caller.models is None if caller.resources is None else caller.resources,
                limits=_limits(caller.limits),
            )
            for caller in gateway.api_keys
        ),
        connect_timeout=gateway.timeouts.connect,
        read_timeout=gateway.timeouts.read,
        total_timeout=gateway.timeouts.total,
        idle_timeout=gateway.timeouts.idle,
        keep_alive=gateway.timeouts.keepAlive,
        stream_timeout=gateway.timeouts.stream,
        max_body_bytes=gateway.max_body_bytes,
        max_response_bytes=gateway.max_response_bytes,
        normalize_streams=gateway.normalize_streams,
        forward_headers=tuple(gateway.forward_headers),
        cors=_cors(gateway.cors),
    )


def _cors(section: CorsSection | None) -> Cors | None:
    if section is None:
        return None
    origins = frozenset(origin.lower() for origin in section.allow_origins)
    return Cors(origins, "*" in origins, section.max_age)
