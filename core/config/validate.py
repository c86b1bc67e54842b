"""Rules that span objects, on a schema-valid configuration: every problem, in file order.

LibreChat stops at its first error; a gateway operator fixing a deployment wants the
whole list, so every check runs and reports. The Azure messages are LibreChat's own,
word for word, so its documentation and issues still apply. Each problem carries the
document path of what it is about, so `check` can show its line; parts the schema
rejected (`Unchecked`) are not judged again here.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Mapping

from . import Finding, Path
from .azure_urls import named_deployment, resource_root, url_problem
from .env import has_unresolved
from .model import ModelRoute
from .resolve import model_price
from .salvage import Unchecked
from .schema import ApiKey, AzureOpenAISection, GatewaySection, Group, ModelSpec, PoolSection, Section, upstream_auth

# LibreChat's message (api/server/services/start/azureOpenAI.js, azureConfigSetup).
NO_ASSISTANTS_MODELS = (
    "No Azure models are configured to support assistants. Please remove the `assistants` field or "
    "configure at least one model to support assistants."
)


def validate(
    endpoint: AzureOpenAISection,
    gateway: GatewaySection,
    env_routes: Mapping[str, ModelRoute] | None = None,
    unchecked: Unchecked | None = None,
) -> list[str]:
    """`env_routes`: routes from environment variables (LibreChat's DALL-E ones), already
    checked by their builder; they count for the served models and the server-side keys."""
    env_routes = env_routes or {}
    unchecked = unchecked or Unchecked()
    served = {model for group in endpoint.groups for model in group.served_models()} | set(env_routes)
    env_keyed = [
        backend.group for route in env_routes.values() for backend in route.backends if backend.auth == "api-key"
    ]
    # What spans every group and the gateway's keys is judged on a complete configuration only.
    whole = not unchecked.paths
    return [
        *group_problems(endpoint.groups, unchecked),
        *assistants_problems(endpoint, unchecked),
        *group_section_problems(endpoint, gateway, unchecked),
        *resource_root_problems(endpoint, gateway, unchecked),
        *(upstream_auth_problems(endpoint.groups, gateway, env_keyed) if whole else []),
        *pool_problems(gateway, served, set(env_routes), unchecked),
        *caller_key_problems(gateway, served | set(gateway.pools) | unchecked.model_names),
        *(cost_limit_problems(endpoint, gateway, env_routes) if whole else []),
    ]


def validation_warnings(
    endpoint: AzureOpenAISection, gateway: GatewaySection, unchecked: Unchecked | None = None
) -> list[str]:
    """Settings that are valid but have no effect."""
    unchecked = unchecked or Unchecked()
    warnings: list[str] = []
    if not endpoint.assistants:
        for group in endpoint.groups:
            if group.assistants_deployments() and not group.serverless and not unchecked.covers(group):
                warnings.append(
                    Finding(
                        f'Group "{group.group}" sets "assistants: true" (on the group or a model), but the '
                        'azureOpenAI endpoint does not, so it is ignored: set "assistants: true" on the '
                        "endpoint to serve the Assistants API (as LibreChat requires).",
                        group.path,
                    )
                )
    for group in endpoint.groups:
        # A v1 group names its deployment in the body: its baseURL only gives the resource.
        if not unchecked.covers(group) and gateway.group_section(group.group).api != "v1":
            warnings.extend(literal_url_warnings(group))
    for pool_id, pool in gateway.pools.items():
        if len(pool.models) == 1 and not unchecked.covers(pool):
            warnings.append(
                Finding(
                    f"gateway.pools.{pool_id} has a single member: it has nowhere to fail over to.", at(pool, "models")
                )
            )
    groups = {group.group: group for group in endpoint.groups}
    for name, settings in gateway.groups.items():
        named = groups.get(name)
        if named is None or settings.assistants_version is None or unchecked.covers(named):
            continue
        where = f"gateway.groups.{name}.assistantsVersion"
        path = at(settings, "assistantsVersion")
        if settings.api == "v1":
            warnings.append(
                Finding(f'{where} is ignored: group "{name}" uses api: v1, which takes no api-version.', path)
            )
        elif not (endpoint.assistants and named.assistants_deployments()):
            warnings.append(Finding(f'{where} is ignored: group "{name}" does not serve the Assistants API.', path))
    if endpoint.assistants:
        warnings.extend(unpriced_runs_warnings(gateway))
    return warnings


def unpriced_runs_warnings(gateway: GatewaySection) -> list[str]:
    """A key with a cost limit that may use the Assistants API: a run is priced only when it names its model."""
    warnings: list[str] = []
    for position, caller in enumerate(gateway.api_keys):
        if not caller.limits_cost:
            continue
        if caller.resources is False or (caller.resources is None and caller.models is not None):
            continue
        where = f"gateway.apiKeys[{_key_index(caller, position)}]"
        warnings.append(
            Finding(
                f"{where} ({caller.name}) has a cost limit and may use the Assistants API, whose "
                "runs cost nothing against it unless they name their `model`: set `resources: false` on the key "
                "to keep its spending within the limit.",
                at(caller, "limits"),
            )
        )
    return warnings


def at(section: Section | None, *keys: str | int) -> Path | None:
    """The document path of `section` (or of keys under it), when it was read from a file."""
    if section is None or section.path is None:
        return None
    return (*section.path, *keys)


def group_labels(groups: list[Group]) -> dict[int, str]:
    """`"name"` for each group, with its index where two groups share the name."""
    counts = Counter(group.group for group in groups)
    labels = {}
    for index, group in enumerate(groups):
        position = group.path[-1] if group.path else index
        labels[id(group)] = f'"{group.group}"' + (f" (groups[{position}])" if counts[group.group] > 1 else "")
    return labels


def group_problems(groups: list[Group], unchecked: Unchecked) -> list[str]:
    problems: list[str] = []
    group_names: set[str] = set()
    model_names: set[str] = set()
    labels = group_labels(groups)
    for group in groups:
        name, label = group.group, labels[id(group)]
        if name in group_names:
            problems.append(
                Finding(f'Duplicate group name detected: "{name}". Group names must be unique.', group.path)
            )
        group_names.add(name)
        models = group.served_models()
        checked = not unchecked.covers(group)
        if checked:
            problems.extend(group_setup_problems(group, label))
        for model, spec in models.items():
            if model in model_names:
                problems.append(Finding(duplicate_model(model), at(group, "models", model)))
                continue
            model_names.add(model)
            if checked:
                problems.extend(deployment_problems(group, label, model, spec))
    return problems


def group_setup_problems(group: Group, label: str) -> list[str]:
    problems: list[str] = []
    if group.serverless and not group.base_url:
        problems.append(Finding(f'Group {label} is serverless but missing mandatory "baseURL."', group.path))
    if not group.serverless and not group.instance_name:
        problems.append(
            Finding(f'Group {label} is missing an "instanceName" for non-serverless configuration.', group.path)
        )
    problems.extend(base_url_problems(group, label))
    if not group.served_models():
        problems.append(
            Finding(
                f'Group {label} has no models: add at least one under "models" '
                "(model-id: true, or model-id: {deploymentName: ..., version: ...}).",
                at(group, "models"),
            )
        )
    return problems


def deployment_problems(group: Group, label: str, model: str, spec: ModelSpec | bool) -> list[str]:
    """A non-serverless model needs a deployment and a version, its own or the group's."""
    where = at(group, "models", model)
    if not group.serverless and not (group.deployment_for(spec) and group.version_for(spec)):
        if isinstance(spec, ModelSpec):
            message = f'Model "{model}" in group {label} is missing a required deploymentName or version.'
        else:
            message = f'Model "{model}" in group {label} is missing a deploymentName or version.'
        return [Finding(message, where)]
    return []


def literal_url_warnings(group: Group) -> list[str]:
    """A literal baseURL names one deployment: LibreChat sends every model of the group to it as written, and so
    does the gateway, but a model configured with another deployment is then answered by the named one."""
    named = named_deployment(group)
    if not named:
        return []
    warnings: list[str] = []
    for model, spec in group.served_models().items():
        deployment = group.deployment_for(spec)
        if deployment and deployment != named:
            warnings.append(
                Finding(
                    f'Group "{group.group}" baseURL names the deployment "{named}" (no ${{DEPLOYMENT_NAME}}): model '
                    f'"{model}" (deployment "{deployment}") is sent there too, as LibreChat does, so "{named}" '
                    "answers it. Write ${DEPLOYMENT_NAME} in its place to reach each model's own deployment.",
                    at(group, "models", model),
                )
            )
    return warnings


def duplicate_model(model: str) -> str:
    return f'Duplicate model name detected: "{model}". Model names must be unique across groups.'


def base_url_problems(group: Group, label: str) -> list[str]:
    url = group.base_url
    if not url or has_unresolved(url):
        return []  # nothing set, or already reported as a missing variable
    # The URL is not echoed: it may hold an account id or a key.
    reason = url_problem(url)
    return [Finding(f"Group {label} baseURL {reason}.", at(group, "baseURL"))] if reason else []


def assistants_problems(endpoint: AzureOpenAISection, unchecked: Unchecked) -> list[str]:
    problems = serverless_assistants_problems(endpoint.groups, unchecked)
    if not endpoint.assistants or unchecked.covers(endpoint):
        return problems
    capable = any(group.assistants_for(spec) for group in endpoint.groups for spec in group.served_models().values())
    if capable:
        return problems
    return [*problems, Finding(NO_ASSISTANTS_MODELS, at(endpoint, "assistants"))]


def serverless_assistants_problems(groups: list[Group], unchecked: Unchecked) -> list[str]:
    labels = group_labels(groups)
    return [
        Finding(
            f'Group {labels[id(group)]} is serverless but sets "assistants: true" (on the group or a model): '
            "serverless endpoints do not serve the Assistants API.",
            group.path,
        )
        for group in groups
        if group.serverless and group.assistants_deployments() and not unchecked.covers(group)
    ]


# -- gateway.groups ------------------------------------------------------------------------


def group_section_problems(endpoint: AzureOpenAISection, gateway: GatewaySection, unchecked: Unchecked) -> list[str]:
    problems: list[str] = []
    groups = {group.group: group for group in endpoint.groups}
    for name, settings in gateway.groups.items():
        where = f"gateway.groups.{name}"
        group = groups.get(name)
        if group is None:
            if name not in unchecked.group_names:
                problems.append(Finding(f"{where}: {_no_such_group(name, list(groups))}", settings.path))
            continue
        if unchecked.covers(group):
            continue
        if settings.api == "v1" and group.serverless:
            problems.append(
                Finding(
                    f'{where}.api is "v1", but group "{name}" is serverless: a serverless endpoint has no '
                    "/openai/v1 API. Remove the setting.",
                    at(settings, "api"),
                )
            )
        if settings.auth == "entra":
            if group.api_key:
                problems.append(
                    Finding(
                        f'{where}.auth is "entra", but group "{name}" also sets an apiKey: use one or the other.',
                        at(settings, "auth"),
                    )
                )
            if group.serverless:
                problems.append(
                    Finding(
                        f'{where}.auth is "entra", but group "{name}" is serverless: serverless endpoints take keys.',
                        at(settings, "auth"),
                    )
                )
    return problems


def _no_such_group(name: str, known: list[str]) -> str:
    message = f'there is no group "{name}" in the azureOpenAI groups'
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return message + f' (did you mean "{close[0]}"?).'
    listed = ", ".join(f'"{group}"' for group in known)
    return message + (f" ({listed})." if listed else ".")


ROOT_FORMS = (
    "no baseURL (instanceName only); a baseURL that is the resource origin or a proxy prefix "
    "(https://host[/prefix], optionally ending in /openai); or one ending in "
    "/openai/deployments/${DEPLOYMENT_NAME}"
)


def resource_root_problems(endpoint: AzureOpenAISection, gateway: GatewaySection, unchecked: Unchecked) -> list[str]:
    """v1 backends and resource-scoped APIs need the resource root under which /openai/ lives."""
    problems: list[str] = []
    labels = group_labels(endpoint.groups)
    for group in endpoint.groups:
        url = group.base_url
        if group.serverless or not url or has_unresolved(url) or url_problem(url) or unchecked.covers(group):
            continue  # not applicable, or already reported
        needs = []
        if gateway.group_section(group.group).api == "v1":
            named = named_deployment(group)
            deployments = [group.deployment_for(spec) for spec in group.served_models().values()]
            # A deployment the literal baseURL does not name is already reported.
            if any(d and d == (named or d) and resource_root(group, d) is None for d in deployments):
                needs.append("uses api: v1 (/openai/v1/...)")
        assistants = group.assistants_deployments()
        if endpoint.assistants and assistants:
            first = next(iter(assistants.values()))
            if first and resource_root(group, first) is None:
                needs.append("serves the Assistants API (/openai/assistants, /openai/files, ...)")
        if needs:
            problems.append(
                Finding(
                    f"Group {labels[id(group)]} {' and '.join(needs)}, but the gateway cannot derive the Azure "
                    f"resource root from its baseURL. Forms that work: {ROOT_FORMS}.",
                    at(group, "baseURL"),
                )
            )
    return problems


# -- gateway.pools ---------------------------------------------------------------------------


def pool_problems(gateway: GatewaySection, served: set[str], images: set[str], unchecked: Unchecked) -> list[str]:
    """Members must be models the groups serve, once per pool, of one kind; a member's health
    is shared by every pool it is in, so those pools must judge it alike."""
    problems: list[str] = []
    judged_by: dict[str, tuple[str, PoolSection]] = {}  # member -> the first pool that lists it
    for pool_id, pool in gateway.pools.items():
        where = f"gateway.pools.{pool_id}"
        if unchecked.covers(pool):
            continue
        if not pool.models:
            problems.append(Finding(f"{where} has no models: list the model ids it spreads over.", at(pool, "models")))
        members = [member.model for member in pool.members()]
        if pool_id in served and pool_id not in members:
            problems.append(
                Finding(
                    f'{where}: "{pool_id}" is already a model of the groups; a pool may take the id of one of its '
                    "own members only.",
                    pool.path,
                )
            )
        seen: set[str] = set()
        for index, model in enumerate(members):
            path = at(pool, "models", index)
            if model in seen:
                problems.append(Finding(f'{where}.models lists "{model}" twice.', path))
                continue
            seen.add(model)
            if model in gateway.pools and model != pool_id:
                problems.append(Finding(f'{where}.models names the pool "{model}": a pool cannot contain pools.', path))
            elif model not in served and model not in unchecked.model_names:
                problems.append(Finding(f"{where}.models names {_no_such_model(model, served)}", path))
            first = judged_by.setdefault(model, (pool_id, pool))
            if first[0] != pool_id and _health_rules(first[1]) != _health_rules(pool):
                problems.append(
                    Finding(
                        f'{where}: member "{model}" is also in gateway.pools.{first[0]}, with another cooldown or '
                        "circuitBreaker; a member has one health, so both pools must set them alike.",
                        path,
                    )
                )
        kinds = {model in images for model in seen if model in served}
        if len(kinds) > 1:
            problems.append(
                Finding(
                    f"{where} mixes image models (DALL-E) with other models; every member must serve the same kind "
                    "of call.",
                    at(pool, "models"),
                )
            )
    return problems


def _health_rules(pool: PoolSection) -> tuple[float, object]:
    return pool.cooldown, pool.circuit_breaker.model_dump()


def _no_such_model(model: str, served: set[str]) -> str:
    message = f'"{model}", which no group serves'
    close = difflib.get_close_matches(model, sorted(served), n=1)
    return message + (f' (did you mean "{close[0]}"?).' if close else ".")


# -- upstream keys ---------------------------------------------------------------------------


def upstream_auth_problems(
    groups: list[Group], gateway: GatewaySection, env_keyed: list[str] | None = None
) -> list[str]:
    problems: list[str] = []
    for group in groups:
        settings = gateway.group_section(group.group)
        where = f"gateway.groups.{group.group}.auth"
        if settings.auth == "key" and not group.api_key:
            # A typo (`apikey:`) must not quietly send every caller's key to Azure: passthrough is asked for.
            problems.append(
                Finding(
                    f'Group "{group.group}" has no apiKey. Give it one (e.g. apiKey: "${{AZURE_KEY}}" or a Key Vault '
                    f"reference), set {where}: entra to use the app's identity, or {where}: passthrough to send "
                    "each caller's own Azure key upstream.",
                    group.path,
                )
            )
        if settings.auth == "passthrough" and group.api_key:
            problems.append(
                Finding(
                    f'{where} is "passthrough", but group "{group.group}" also sets an apiKey: use one or the other.',
                    at(settings, "auth"),
                )
            )
    modes = {group.group: upstream_auth(group, gateway.group_section(group.group)) for group in groups}
    keys = {group.group: bool(group.api_key) for group in groups}
    keyed = [name for name, mode in modes.items() if mode == "api-key" and keys[name]] + list(env_keyed or ())
    entra = [name for name, mode in modes.items() if mode == "entra"]
    passthrough = [name for name, mode in modes.items() if mode == "passthrough"]
    if entra and not gateway.api_keys and not gateway.allow_anonymous:
        problems.append(
            f"{_groups(entra, verb=('authenticates', 'authenticate'))} with the app's Entra ID identity but "
            "gateway.apiKeys is empty, so anyone who can reach the gateway could use that identity (an open "
            "relay). Add caller keys under gateway.apiKeys, or set gateway.allowAnonymous: true if something "
            "else already restricts access."
        )
    if keyed and not gateway.api_keys and not gateway.allow_anonymous:
        problems.append(
            f"{_groups(keyed)} a server-side apiKey but gateway.apiKeys is empty, so anyone who can reach "
            "the gateway could spend that key (an open relay). Add caller keys under gateway.apiKeys, "
            "or set gateway.allowAnonymous: true if something else already restricts access."
        )
    if passthrough and gateway.api_keys:
        problems.append(
            f"{_groups(passthrough, verb=('has', 'have'))} no apiKey, so the caller's key would be sent to "
            "Azure (passthrough); with gateway.apiKeys set, callers present gateway keys, and those would "
            "be forwarded to Azure. Give these groups an apiKey, or remove gateway.apiKeys so callers "
            "use their own Azure keys."
        )
    return problems


def caller_key_problems(gateway: GatewaySection, served: set[str]) -> list[str]:
    problems: list[str] = []
    keys: dict[str, str | int] = {}  # key -> where it first appeared (the entry's index)
    names: dict[str, str | int] = {}
    for position, caller in enumerate(gateway.api_keys):
        index = _key_index(caller, position)
        where = f"gateway.apiKeys[{index}]"
        # Keys are secrets: messages point at entries, never print a key.
        if caller.key in keys:
            problems.append(
                Finding(
                    f"{where}.key is the same as gateway.apiKeys[{keys[caller.key]}].key; "
                    "every caller key must be unique.",
                    at(caller, "key"),
                )
            )
        else:
            keys[caller.key] = index
        if caller.name in names:
            problems.append(
                Finding(
                    f'{where}.name "{caller.name}" is already used by gateway.apiKeys[{names[caller.name]}]; '
                    "caller names must be unique.",
                    at(caller, "name"),
                )
            )
        else:
            names[caller.name] = index
        for model in caller.models or ():
            if model not in served:
                message = f'{where}.models names "{model}", which no group serves.'
                problems.append(Finding(message, at(caller, "models")))
    return problems


def _key_index(caller: ApiKey, position: int) -> str | int:
    """The caller key's index in gateway.apiKeys as written: messages name the entry, never the key itself."""
    return caller.path[-1] if caller.path else position


def _groups(names: list[str], verb: tuple[str, str] = ("holds", "hold")) -> str:
    quoted = ", ".join(f'"{name}"' for name in names)
    return f"Group {quoted} {verb[0]}" if len(names) == 1 else f"Groups {quoted} {verb[1]}"


def cost_limit_problems(
    endpoint: AzureOpenAISection, gateway: GatewaySection, env_routes: Mapping[str, ModelRoute]
) -> list[str]:
    """A key with a cost limit must reach only priced models: a call of an unpriced one would cost nothing
    against the limit."""
    priced: dict[str, bool] = {}
    for group in endpoint.groups:
        for model, spec in group.served_models().items():
            price, _ = model_price(group, spec, model, None if group.serverless else group.deployment_for(spec))
            priced[model] = price is not None
    for model, route in env_routes.items():
        priced[model] = all(backend.price is not None for backend in route.backends)
    for pool_id, pool in gateway.pools.items():
        priced[pool_id] = all(member.price is not None or priced.get(member.model, False) for member in pool.members())
    problems: list[str] = []
    for position, caller in enumerate(gateway.api_keys):
        if not caller.limits_cost:
            continue
        reached = caller.models if caller.models is not None else list(priced)
        unpriced = [model for model in dict.fromkeys(reached) if not priced.get(model, True)]
        if unpriced:
            names = ", ".join(f'"{model}"' for model in unpriced)
            where = f"gateway.apiKeys[{_key_index(caller, position)}]"
            problems.append(
                Finding(
                    f"{where} ({caller.name}) has a cost limit, but may call {names}, which "
                    "has no price: give each a `price: {input, cachedInput, output}` (per million tokens), or "
                    "leave it out of the key's `models`.",
                    at(caller, "limits"),
                )
            )
    return problems
