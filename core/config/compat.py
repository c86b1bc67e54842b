"""Configuration other tools define: stulzq/azure-openai-proxy's environment variables and
config.yaml, and LibreChat's Azure DALL-E environment variables, turned into groups and routes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from . import ConfigError, Finding
from .api_versions import API_VERSION_FORMS, is_api_version
from .azure_urls import url_problem
from .model import Backend, ModelRoute
from .schema import AzureOpenAISection, Group, StulzqFile
from .validate import duplicate_model

STULZQ_API_VERSION = "2024-02-01"  # stulzq's default for AZURE_OPENAI_API_VER
STULZQ_GROUP = "default"


# -- LibreChat's DALL-E environment variables ---------------------------------------------------

DALLE_VERSIONS = (3, 2)


def dalle_env_routes(
    endpoint: AzureOpenAISection, environ: Mapping[str, str]
) -> tuple[dict[str, ModelRoute], list[str], list[str]]:
    """`dall-e-3` / `dall-e-2` routes from LibreChat's Azure DALL-E variables: routes, problems, warnings.

    DALLE{N}_AZURE_API_VERSION is what makes LibreChat treat DALL-E as Azure; it then needs
    DALLE{N}_BASEURL (.../openai/deployments/{deployment}/) and DALLE{N}_API_KEY or DALLE_API_KEY.
    Messages name variables, never their values.
    """
    routes: dict[str, ModelRoute] = {}
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
        if not is_api_version(version):
            problems.append(version_problem(version_var, version))
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
            problems.append(f"{why}, but neither {key_var} nor DALLE_API_KEY is set: the gateway needs the Azure key.")
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
        routes[model] = ModelRoute(model=model, backends=(backend,))
    return routes, problems, warnings


def version_problem(variable: str, version: str) -> str:
    return f'{variable} "{version}" is not an api-version: {API_VERSION_FORMS}'


# -- stulzq ---------------------------------------------------------------------------------


def stulzq_env_endpoint(environ: Mapping[str, str]) -> AzureOpenAISection:
    """stulzq's env mode as one passthrough group, "default", serving the mapped models."""
    endpoint_url = environ.get("AZURE_OPENAI_ENDPOINT", "").strip()
    version = environ.get("AZURE_OPENAI_API_VER", "").strip() or STULZQ_API_VERSION
    problems = []
    reason = url_problem(endpoint_url)
    if reason:
        problems.append(f"AZURE_OPENAI_ENDPOINT {reason} (e.g. https://my-resource.openai.azure.com/).")
    if not is_api_version(version):
        problems.append(version_problem("AZURE_OPENAI_API_VER", version))
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
    return AzureOpenAISection.model_validate({"groups": [group]})


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


def from_stulzq_file(document: StulzqFile) -> tuple[AzureOpenAISection, list[str], list[str]]:
    """A stulzq config.yaml as groups: one per (endpoint, api_key), named after the host."""
    problems: list[str] = []
    warnings: list[str] = []
    if document.api_base.rstrip("/") != "/v1":
        warnings.append(f'api_base "{document.api_base}" is ignored: the gateway serves the OpenAI API under /v1.')
    groups: dict[tuple[str, str | None], dict[str, Any]] = {}
    names: set[str] = set()
    models: set[str] = set()
    for position, entry in enumerate(document.deployment_config):
        index = entry.path[-1] if entry.path else position
        endpoint_url = entry.endpoint.strip()
        reason = url_problem(endpoint_url)
        if reason:
            problems.append(Finding(f"deployment_config[{index}].endpoint {reason}.", entry.path))
            continue
        if entry.model_name in models:
            problems.append(Finding(duplicate_model(entry.model_name), entry.path))
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
    endpoint = AzureOpenAISection.model_construct(groups=[Group.model_validate(group) for group in groups.values()])
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
