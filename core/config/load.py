"""Configuration sources: a YAML file (librechat.yaml, its azureOpenAI section, a stulzq
config.yaml) or stulzq's environment variables, all ending in one RuntimeConfig.

Pipeline: parse YAML -> pick the document shape -> replace ${VAR} -> schema -> rules -> resolve;
every source then shares build(): LibreChat's DALL-E variables, the rules, resolution.
Every stage adds to one list of problems; a single ConfigError reports them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from . import ConfigError
from .env import EnvReferences
from .secrets import SecretResolver, resolve_document
from .model import Backend, Route, RuntimeConfig
from .resolve import resolve
from .schema import (
    Endpoint,
    Gateway,
    Group,
    GroupsFile,
    LibreChatFile,
    SectionFile,
    StulzqFile,
    describe_errors,
    unknown_keys,
)
from .validate import duplicate_model, url_problem, validate, validation_warnings

STULZQ_API_VERSION = "2024-02-01"  # stulzq's default for AZURE_OPENAI_API_VER
STULZQ_GROUP = "default"
ENV_SOURCE = "env:AZURE_OPENAI_ENDPOINT"

NO_CONFIGURATION = (
    "No configuration: set CONFIG_PATH to a librechat.yaml / gateway config, or "
    "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_MODEL_MAPPER (stulzq mode)."
)


# -- entry points ---------------------------------------------------------------------


def load_config_text(
    text: str, environ: Mapping[str, str], source: str, secrets: SecretResolver | None = None
) -> RuntimeConfig:
    """`secrets` resolves Key Vault references; without it a reference is a problem."""
    document, warnings = parse_yaml(text, source)
    shape = document_shape(document, source)

    references = EnvReferences(environ)
    document = _in_gateway_sections(document, shape, lambda part, _path: references.resolve(part))
    secret_problems: list[str] = []
    document = _in_gateway_sections(
        document, shape, lambda part, path: resolve_document(part, secrets, secret_problems, path)
    )
    try:
        parsed = shape.model_validate(document)
    except ValidationError as exc:
        # Rules run on a well-typed tree only; on a mistyped one they would report noise.
        raise ConfigError([*references.problems(), *secret_problems, *describe_errors(exc)], warnings) from None
    warnings += references.warnings()
    warnings += unknown_keys(parsed)

    problems = references.problems() + secret_problems
    if isinstance(parsed, StulzqFile):
        endpoint, stulzq_problems, stulzq_warnings = from_stulzq_file(parsed)
        problems += stulzq_problems
        warnings += stulzq_warnings
    else:
        endpoint = parsed.endpoint()
    return build(endpoint, parsed.gateway or Gateway(), source, problems, warnings, environ)


def load_stulzq_env(environ: Mapping[str, str]) -> RuntimeConfig:
    """stulzq's env mode: one passthrough group, "default", serving the mapped models."""
    endpoint_url = environ.get("AZURE_OPENAI_ENDPOINT", "").strip()
    version = environ.get("AZURE_OPENAI_API_VER", "").strip() or STULZQ_API_VERSION
    problems = []
    reason = url_problem(endpoint_url)
    if reason:
        problems.append(f"AZURE_OPENAI_ENDPOINT {reason} (e.g. https://my-resource.openai.azure.com/).")
    mapping, mapper_problems = parse_model_mapper(environ.get("AZURE_OPENAI_MODEL_MAPPER", ""))
    problems += mapper_problems
    if not mapping and not mapper_problems:
        problems.append(
            "AZURE_OPENAI_MODEL_MAPPER is empty: set it to openai-model=azure-deployment pairs, "
            "e.g. gpt-3.5-turbo=gpt-35-turbo,gpt-4=gpt-4."
        )
    if problems:
        raise ConfigError(problems)
    group = _stulzq_group(STULZQ_GROUP, endpoint_url, api_key=None)
    group["models"] = {
        model: {"deploymentName": deployment, "version": version} for model, deployment in mapping.items()
    }
    endpoint = Endpoint.model_validate({"groups": [group]})
    return build(endpoint, Gateway(), ENV_SOURCE, [], [], environ)


def build(
    endpoint: Endpoint,
    gateway: Gateway,
    source: str,
    problems: list[str],
    warnings: list[str],
    environ: Mapping[str, str],
) -> RuntimeConfig:
    """The last stages every source shares: LibreChat's DALL-E variables, rules, then resolution."""
    dalle_routes, dalle_problems, dalle_warnings = dalle_env_routes(endpoint, environ)
    warnings = [
        *warnings,
        *disabled_model_warnings(endpoint),
        *validation_warnings(endpoint, gateway),
        *dalle_warnings,
    ]
    problems = problems + dalle_problems + validate(endpoint, gateway, dalle_routes)
    if problems:
        raise ConfigError(problems, warnings)
    return resolve(endpoint, gateway, source=source, warnings=warnings, env_routes=dalle_routes)


# -- YAML --------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates as text and notes duplicate keys.

    `version: 2024-02-01` must stay the string Azure expects, not a datetime.date.
    PyYAML silently keeps the last of two equal keys; a repeated model id would vanish.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<:` overrides are intended
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in seen:
                self.duplicates.append(
                    f'Duplicate key "{key}" at line {key_node.start_mark.line + 1}: the last value wins.'
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_yaml(text: str, source: str) -> tuple[dict[str, Any], list[str]]:
    """The top-level mapping and warnings about duplicate keys."""
    loader = _Loader(text)
    try:
        document = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_error(exc, source)]) from None
    finally:
        loader.dispose()
    if document is None:
        raise ConfigError([f"{source}: the configuration is empty."])
    if not isinstance(document, dict):
        raise ConfigError(
            [f"{source}: expected a mapping (key: value) at the top level, found {type(document).__name__}."]
        )
    return document, loader.duplicates


def _yaml_error(exc: yaml.YAMLError, source: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"{source}: invalid YAML: {problem}."
    return f"{source}: invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}."


# -- document shapes --------------------------------------------------------------------------

Shape = type[LibreChatFile] | type[SectionFile] | type[GroupsFile] | type[StulzqFile]


def document_shape(document: dict[str, Any], source: str) -> Shape:
    """Which kind of file this is, from its top-level keys."""
    if "endpoints" in document:
        return LibreChatFile
    if "azureOpenAI" in document:
        return SectionFile
    if "groups" in document:
        return GroupsFile
    if "deployment_config" in document or "api_base" in document:
        return StulzqFile
    found = ", ".join(f'"{key}"' for key in document) or "none"
    raise ConfigError(
        [
            f"{source}: no Azure OpenAI configuration found (top-level keys: {found}). Expected "
            "endpoints.azureOpenAI (librechat.yaml), azureOpenAI, groups, or deployment_config "
            "(stulzq config.yaml)."
        ]
    )


def _in_gateway_sections(
    document: dict[str, Any], shape: Shape, transform: Callable[[Any, str], Any]
) -> dict[str, Any]:
    """Apply `transform(part, path)` to the parts the gateway reads, and only there: a
    librechat.yaml's other sections reference variables and secrets only LibreChat has."""
    if shape is not LibreChatFile:
        return transform(document, "")
    document = dict(document)
    endpoints = document["endpoints"]
    if isinstance(endpoints, dict) and "azureOpenAI" in endpoints:
        azure = transform(endpoints["azureOpenAI"], "endpoints.azureOpenAI")
        document["endpoints"] = {**endpoints, "azureOpenAI": azure}
    if "gateway" in document:
        document["gateway"] = transform(document["gateway"], "gateway")
    return document


def disabled_model_warnings(endpoint: Endpoint) -> list[str]:
    return [
        f'Model "{model}" in group "{group.group}" is set to false and is not served.'
        for group in endpoint.groups
        for model, value in group.models.items()
        if value is False
    ]


# -- LibreChat's DALL-E environment variables ---------------------------------------------------

DALLE_VERSIONS = (3, 2)


def dalle_env_routes(
    endpoint: Endpoint, environ: Mapping[str, str]
) -> tuple[dict[str, Route], list[str], list[str]]:
    """`dall-e-3` / `dall-e-2` routes from LibreChat's Azure DALL-E variables: routes, problems, warnings.

    DALLE{N}_AZURE_API_VERSION is what makes LibreChat treat DALL-E as Azure; it then needs
    DALLE{N}_BASEURL (.../openai/deployments/{deployment}/) and DALLE{N}_API_KEY or DALLE_API_KEY.
    Messages name variables, never their values.
    """
    routes: dict[str, Route] = {}
    problems: list[str] = []
    warnings: list[str] = []
    serving = {model: group.group for group in endpoint.groups for model in group.served_models()}
    for n in DALLE_VERSIONS:
        model, prefix = f"dall-e-{n}", f"DALLE{n}"
        version_var, url_var = f"{prefix}_AZURE_API_VERSION", f"{prefix}_BASEURL"
        key_var = f"{prefix}_API_KEY"
        version = environ.get(version_var, "").strip()
        if not version:
            continue
        if model in serving:
            warnings.append(
                f'{version_var} is set, but group "{serving[model]}" already serves "{model}"; '
                f"the {prefix}_* environment settings are ignored."
            )
            continue
        why = f"{version_var} is set (LibreChat's Azure DALL-E {n})"
        base_url = environ.get(url_var, "").strip()
        key = environ.get(key_var, "").strip() or environ.get("DALLE_API_KEY", "").strip()
        reason = url_problem(base_url) if base_url else None
        if not base_url:
            problems.append(
                f"{why}, but {url_var} is not: set it to the deployment's URL, e.g. "
                "https://<instance>.openai.azure.com/openai/deployments/<deployment>/."
            )
        elif reason:
            problems.append(f"{url_var} {reason}.")
        if not key:
            problems.append(
                f"{why}, but neither {key_var} nor DALLE_API_KEY is set: the gateway needs the Azure key."
            )
        if not base_url or reason or not key:
            continue
        path = urlsplit(base_url).path
        deployment = path.split("/deployments/", 1)[1].split("/", 1)[0] if "/deployments/" in path else ""
        backend = Backend(
            group=f"env:{prefix}",
            deployment=deployment or None,
            api_version=version,
            serverless=False,
            base_url=base_url.rstrip("/"),
            auth="api-key",
            headers=(("api-key", key),),
        )
        routes[model] = Route(model=model, backends=(backend,))
    return routes, problems, warnings


# -- stulzq ---------------------------------------------------------------------------------


def parse_model_mapper(text: str) -> tuple[dict[str, str], list[str]]:
    """`gpt-4=gpt4-deployment, gpt-3.5-turbo=gpt-35-turbo` -> {model: deployment}, problems."""
    mapping: dict[str, str] = {}
    problems = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue  # tolerate "a=b," and ",,"
        model, sep, deployment = (part.strip() for part in entry.partition("="))
        if not sep or not model or not deployment or "=" in deployment:
            problems.append(
                f'AZURE_OPENAI_MODEL_MAPPER entry "{entry}" is not of the form openai-model=azure-deployment.'
            )
        elif model in mapping:
            problems.append(duplicate_model(model))
        else:
            mapping[model] = deployment
    return mapping, problems


def from_stulzq_file(document: StulzqFile) -> tuple[Endpoint, list[str], list[str]]:
    """A stulzq config.yaml as groups: one per (endpoint, api_key), named after the host."""
    problems: list[str] = []
    warnings: list[str] = []
    if document.api_base.rstrip("/") != "/v1":
        warnings.append(
            f'api_base "{document.api_base}" is ignored: the gateway serves the OpenAI API under /v1.'
        )
    groups: dict[tuple[str, str | None], dict[str, Any]] = {}
    names: set[str] = set()
    models: set[str] = set()
    for index, entry in enumerate(document.deployment_config):
        endpoint_url = entry.endpoint.strip()
        reason = url_problem(endpoint_url)
        if reason:
            problems.append(f"deployment_config[{index}].endpoint {reason}.")
            continue
        if entry.model_name in models:
            problems.append(duplicate_model(entry.model_name))
            continue
        models.add(entry.model_name)
        group_key = (endpoint_url.rstrip("/"), entry.api_key or None)
        if group_key not in groups:
            name = _unique_name(urlsplit(endpoint_url).hostname or endpoint_url, names)
            groups[group_key] = _stulzq_group(name, endpoint_url, entry.api_key)
        groups[group_key]["models"][entry.model_name] = {
            "deploymentName": entry.deployment_name,
            "version": entry.api_version or STULZQ_API_VERSION,
        }
    # Constructed, not validated: every entry may have been skipped above, and the
    # problems already say why; an empty group list must not hide them.
    endpoint = Endpoint.model_construct(groups=[Group.model_validate(group) for group in groups.values()])
    return endpoint, problems, warnings


def _stulzq_group(name: str, endpoint_url: str, api_key: str | None) -> dict[str, Any]:
    """A group in librechat.yaml terms; stulzq's endpoint is our baseURL."""
    group: dict[str, Any] = {
        "group": name,
        "instanceName": urlsplit(endpoint_url).hostname or name,
        "baseURL": endpoint_url,
        "models": {},
    }
    if api_key:
        group["apiKey"] = api_key
    return group


def _unique_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}-{number}"
    taken.add(candidate)
    return candidate
