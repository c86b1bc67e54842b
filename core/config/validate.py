"""Semantic checks on a schema-valid configuration: every problem, in file order.

LibreChat stops at its first error; a gateway operator fixing a deployment wants the
whole list, so every check runs and reports. The Azure messages are LibreChat's own,
word for word, so its documentation and issues still apply.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from .azure_urls import resource_root, url_problem
from .env import has_unresolved
from .model import Route
from .schema import Endpoint, Gateway, Group, ModelSpec, upstream_auth


def validate(
    endpoint: Endpoint, gateway: Gateway, env_routes: Mapping[str, Route] | None = None
) -> list[str]:
    """`env_routes`: routes from environment variables (LibreChat's DALL-E ones), already
    checked by their builder; they count for the served models and the server-side keys."""
    env_routes = env_routes or {}
    served = {model for group in endpoint.groups for model in group.served_models()} | set(env_routes)
    env_keyed = [
        backend.group
        for route in env_routes.values()
        for backend in route.backends
        if backend.auth == "api-key"
    ]
    return [
        *group_problems(endpoint.groups),
        *assistants_problems(endpoint),
        *group_settings_problems(endpoint, gateway),
        *resource_root_problems(endpoint, gateway),
        *upstream_auth_problems(endpoint.groups, gateway, env_keyed),
        *caller_key_problems(gateway, served),
    ]


def validation_warnings(endpoint: Endpoint, gateway: Gateway) -> list[str]:
    """Settings that are valid but have no effect."""
    warnings = []
    if not endpoint.assistants:
        for group in endpoint.groups:
            if group.assistants_deployments() and not group.serverless:
                warnings.append(
                    f'Group "{group.group}" sets "assistants: true" (on the group or a model), but the '
                    'azureOpenAI endpoint does not, so it is ignored: set "assistants: true" on the '
                    "endpoint to serve the Assistants API (as LibreChat requires)."
                )
    groups = {group.group: group for group in endpoint.groups}
    for name, settings in gateway.groups.items():
        group = groups.get(name)
        if group is None or settings.assistants_version is None:
            continue
        where = f"gateway.groups.{name}.assistantsVersion"
        if settings.api == "v1":
            warnings.append(f'{where} is ignored: group "{name}" uses api: v1, which takes no api-version.')
        elif not (endpoint.assistants and group.assistants_deployments()):
            warnings.append(f'{where} is ignored: group "{name}" does not serve the Assistants API.')
    return warnings


def group_problems(groups: list[Group]) -> list[str]:
    problems: list[str] = []
    group_names: set[str] = set()
    model_names: set[str] = set()
    for group in groups:
        name = group.group
        if name in group_names:
            problems.append(f'Duplicate group name detected: "{name}". Group names must be unique.')
        group_names.add(name)
        if group.serverless and not group.base_url:
            problems.append(f'Group "{name}" is serverless but missing mandatory "baseURL."')
        if not group.serverless and not group.instance_name:
            problems.append(f'Group "{name}" is missing an "instanceName" for non-serverless configuration.')
        problems.extend(base_url_problems(group))

        models = group.served_models()
        if not models:
            problems.append(
                f'Group "{name}" has no models: add at least one under "models" '
                "(model-id: true, or model-id: {deploymentName: ..., version: ...})."
            )
        for model, spec in models.items():
            if model in model_names:
                problems.append(duplicate_model(model))
                continue
            model_names.add(model)
            problems.extend(deployment_problems(group, model, spec))
    return problems


def deployment_problems(group: Group, model: str, spec: ModelSpec | bool) -> list[str]:
    """A non-serverless model needs a deployment and a version, its own or the group's."""
    if group.serverless or (group.deployment_for(spec) and group.version_for(spec)):
        return []
    if isinstance(spec, ModelSpec):
        return [f'Model "{model}" in group "{group.group}" is missing a required deploymentName or version.']
    return [f'Model "{model}" in group "{group.group}" is missing a deploymentName or version.']


def duplicate_model(model: str) -> str:
    return f'Duplicate model name detected: "{model}". Model names must be unique across groups.'


def base_url_problems(group: Group) -> list[str]:
    url = group.base_url
    if not url or has_unresolved(url):
        return []  # nothing set, or already reported as a missing variable
    # The URL is not echoed: it may hold an account id or a key.
    reason = url_problem(url)
    return [f'Group "{group.group}" baseURL {reason}.'] if reason else []


def assistants_problems(endpoint: Endpoint) -> list[str]:
    problems = serverless_assistants_problems(endpoint.groups)
    if not endpoint.assistants:
        return problems
    capable = any(
        group.assistants_for(spec) for group in endpoint.groups for spec in group.served_models().values()
    )
    if capable:
        return problems
    return [
        *problems,
        'Assistants are enabled ("assistants: true" on the azureOpenAI endpoint) but no group or model '
        'sets "assistants: true": mark the group(s) in an assistants-capable region, or turn assistants off.',
    ]


def serverless_assistants_problems(groups: list[Group]) -> list[str]:
    return [
        f'Group "{group.group}" is serverless but sets "assistants: true" (on the group or a model): '
        "serverless endpoints do not serve the Assistants API."
        for group in groups
        if group.serverless and group.assistants_deployments()
    ]


# -- gateway.groups ------------------------------------------------------------------------


def group_settings_problems(endpoint: Endpoint, gateway: Gateway) -> list[str]:
    problems: list[str] = []
    groups = {group.group: group for group in endpoint.groups}
    for name, settings in gateway.groups.items():
        where = f"gateway.groups.{name}"
        group = groups.get(name)
        if group is None:
            problems.append(f"{where}: {_no_such_group(name, list(groups))}")
        if settings.api == "v1" and group is not None and group.serverless:
            problems.append(
                f'{where}.api is "v1", but group "{name}" is serverless: a serverless endpoint has no '
                "/openai/v1 API. Remove the setting."
            )
        if settings.auth == "entra" and group is not None:
            if group.api_key:
                problems.append(
                    f'{where}.auth is "entra", but group "{name}" also sets an apiKey: use one or the other.'
                )
            if group.serverless:
                problems.append(
                    f'{where}.auth is "entra", but group "{name}" is serverless: serverless endpoints take keys.'
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


def resource_root_problems(endpoint: Endpoint, gateway: Gateway) -> list[str]:
    """v1 backends and resource-scoped APIs need the resource root under which /openai/ lives."""
    problems = []
    for group in endpoint.groups:
        url = group.base_url
        if group.serverless or not url or has_unresolved(url) or url_problem(url):
            continue  # not applicable, or already reported
        needs = []
        if gateway.group_settings(group.group).api == "v1":
            deployments = [group.deployment_for(spec) for spec in group.served_models().values()]
            if any(d and resource_root(group, d) is None for d in deployments):
                needs.append("uses api: v1 (/openai/v1/...)")
        assistants = group.assistants_deployments()
        if endpoint.assistants and assistants:
            first = next(iter(assistants.values()))
            if first and resource_root(group, first) is None:
                needs.append("serves the Assistants API (/openai/assistants, /openai/files, ...)")
        if needs:
            problems.append(
                f'Group "{group.group}" {" and ".join(needs)}, but the gateway cannot derive the Azure '
                f"resource root from its baseURL. Forms that work: {ROOT_FORMS}."
            )
    return problems


# -- upstream keys ---------------------------------------------------------------------------


def upstream_auth_problems(
    groups: list[Group], gateway: Gateway, env_keyed: list[str] | None = None
) -> list[str]:
    problems = []
    modes = {group.group: upstream_auth(group, gateway.group_settings(group.group)) for group in groups}
    keyed = [name for name, mode in modes.items() if mode == "api-key"] + list(env_keyed or ())
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


def caller_key_problems(gateway: Gateway, served: set[str]) -> list[str]:
    problems = []
    keys: dict[str, int] = {}
    names: dict[str, int] = {}
    for index, caller in enumerate(gateway.api_keys):
        where = f"gateway.apiKeys[{index}]"
        # Keys are secrets: messages point at entries, never print a key.
        if caller.key in keys:
            problems.append(
                f"{where}.key is the same as gateway.apiKeys[{keys[caller.key]}].key; "
                "every caller key must be unique."
            )
        else:
            keys[caller.key] = index
        if caller.name in names:
            problems.append(
                f'{where}.name "{caller.name}" is already used by gateway.apiKeys[{names[caller.name]}]; '
                "caller names must be unique."
            )
        else:
            names[caller.name] = index
        for model in caller.models or ():
            if model not in served:
                problems.append(f'{where}.models names "{model}", which no group serves.')
    return problems


def _groups(names: list[str], verb: tuple[str, str] = ("holds", "hold")) -> str:
    quoted = ", ".join(f'"{name}"' for name in names)
    return f"Group {quoted} {verb[0]}" if len(names) == 1 else f"Groups {quoted} {verb[1]}"
