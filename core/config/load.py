"""Configuration sources: a YAML file (librechat.yaml, its azureOpenAI section, a stulzq
config.yaml) or stulzq's environment variables, all ending in one RuntimeConfig.

Pipeline: parse YAML -> pick the document shape -> replace ${VAR} -> schema -> rules -> resolve;
every source then shares build(): LibreChat's DALL-E variables, the rules, resolution.
Every stage adds to one list of problems; a single ConfigError reports them all. Schema errors
do not stop the rules (salvage.py), and each problem and warning knows its YAML line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import yaml

from . import ConfigError, Finding, Path
from .compat import dalle_env_routes, from_stulzq_file, stulzq_env_endpoint
from .env import EnvReferences
from .model import RuntimeConfig
from .resolve import resolve
from .salvage import Unchecked, validate_salvaging
from .schema import (
    AzureOpenAISection,
    GatewaySection,
    GroupSection,
    GroupsFile,
    LibreChatFile,
    SectionFile,
    StulzqFile,
    describe_errors,
    unknown_keys,
)
from .secrets import SecretResolver, resolve_document
from .validate import validate, validation_warnings

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
    document, lines, warnings = parse_yaml(text, source)
    shape = document_shape(document, source)

    references = EnvReferences(environ)
    document = _in_gateway_sections(
        document, shape, lambda part, path: references.resolve(part, None, tuple(path.split(".")) if path else ())
    )
    secret_problems: list[str] = []
    document = _in_gateway_sections(
        document, shape, lambda part, path: resolve_document(part, secrets, secret_problems, path)
    )
    problems: list[str] = [*references.problems(), *secret_problems]
    salvage = validate_salvaging(shape, document)
    if salvage.errors is not None:
        problems += describe_errors(salvage.errors)
    parsed = salvage.parsed
    if parsed is None:
        raise ConfigError(lines.locate(problems), lines.locate(warnings))
    warnings += references.warnings()
    warnings += unknown_keys(parsed)

    if isinstance(parsed, StulzqFile):
        endpoint, stulzq_problems, stulzq_warnings = from_stulzq_file(parsed)
        problems += stulzq_problems
        warnings += stulzq_warnings
    else:
        endpoint = parsed.endpoint()
    try:
        gateway = parsed.gateway or GatewaySection()
        if isinstance(parsed, StulzqFile):
            gateway = _keys_passed_through(endpoint, gateway)
        config = build(endpoint, gateway, source, problems, warnings, environ, salvage.unchecked)
    except ConfigError as error:
        raise ConfigError(lines.locate(error.problems), lines.locate(error.warnings)) from None
    return dataclasses.replace(config, warnings=tuple(lines.locate(config.warnings)))


def load_stulzq_env(environ: Mapping[str, str]) -> RuntimeConfig:
    """stulzq's env mode: one passthrough group, "default", serving the mapped models."""
    endpoint = stulzq_env_endpoint(environ)
    return build(endpoint, _keys_passed_through(endpoint, GatewaySection()), ENV_SOURCE, [], [], environ)


def _keys_passed_through(endpoint: AzureOpenAISection, gateway: GatewaySection) -> GatewaySection:
    """stulzq's design passes each caller's key through when no api_key is configured: its groups without one
    are passthrough groups, as asked for in words (a group the gateway section names keeps its settings)."""
    keyless = {
        group.group: GroupSection.model_validate({"auth": "passthrough"})
        for group in endpoint.groups
        if not group.api_key and group.group not in gateway.groups
    }
    if not keyless:
        return gateway
    return gateway.model_copy(update={"groups": {**gateway.groups, **keyless}})


def build(
    endpoint: AzureOpenAISection,
    gateway: GatewaySection,
    source: str,
    problems: list[str],
    warnings: list[str],
    environ: Mapping[str, str],
    unchecked: Unchecked | None = None,
) -> RuntimeConfig:
    """The last stages every source shares: LibreChat's DALL-E variables, rules, then resolution.
    `unchecked`: parts the schema rejected, which the rules must not mistake for absent."""
    unchecked = unchecked or Unchecked()
    dalle_routes, dalle_problems, dalle_warnings = dalle_env_routes(endpoint, environ)
    warnings = [
        *warnings,
        *disabled_model_warnings(endpoint),
        *validation_warnings(endpoint, gateway, unchecked),
        *dalle_warnings,
    ]
    problems = problems + dalle_problems + validate(endpoint, gateway, dalle_routes, unchecked)
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


def parse_yaml(text: str, source: str) -> tuple[dict[str, Any], Lines, list[str]]:
    """The top-level mapping, where each of its parts was written, and warnings about duplicate keys."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        document = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_error(exc, source)]) from None
    finally:
        loader.dispose()
    if node is None or document is None:
        raise ConfigError([f"{source}: the configuration is empty."])
    if not isinstance(document, dict):
        raise ConfigError(
            [f"{source}: expected a mapping (key: value) at the top level, found {type(document).__name__}."]
        )
    return document, Lines.of(node), loader.duplicates


class Lines:
    """The line each key and list item of a YAML document starts on."""

    def __init__(self, lines: dict[Path, int]) -> None:
        self._lines = lines

    @classmethod
    def of(cls, root: yaml.Node) -> Lines:
        lines: dict[Path, int] = {}

        def walk(node: yaml.Node, path: Path) -> None:
            if isinstance(node, yaml.MappingNode):
                children = [(key.value, key, value) for key, value in node.value if isinstance(key, yaml.ScalarNode)]
            elif isinstance(node, yaml.SequenceNode):
                children = [(index, item, item) for index, item in enumerate(node.value)]
            else:
                return
            for key, start, child in children:
                lines.setdefault((*path, key), start.start_mark.line + 1)
                walk(child, (*path, key))

        walk(root, ())
        return cls(lines)

    def line(self, path: Path | None) -> int | None:
        """The line of `path`, or of its nearest written ancestor (a missing key: its parent)."""
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return None

    def locate(self, messages: Iterable[str]) -> list[str]:
        """`messages` with the line of each Finding's path."""
        return [
            Finding(message, message.path, self.line(message.path)) if isinstance(message, Finding) else message
            for message in messages
        ]


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
    message = (
        f"{source}: no Azure OpenAI configuration found (top-level keys: {found}). Expected "
        "endpoints.azureOpenAI (librechat.yaml), azureOpenAI, groups, or deployment_config "
        "(stulzq config.yaml)."
    )
    raise ConfigError([message])


def _in_gateway_sections(
    document: dict[str, Any], shape: Shape, transform: Callable[[Any, str], Any]
) -> dict[str, Any]:
    """Apply `transform(part, path)` to the parts the gateway reads, and only there: a
    librechat.yaml's other sections reference variables and secrets only LibreChat has."""
    if shape is not LibreChatFile:
        whole: dict[str, Any] = transform(document, "")  # a transform keeps a mapping a mapping
        return whole
    document = dict(document)
    endpoints = document["endpoints"]
    if isinstance(endpoints, dict) and "azureOpenAI" in endpoints:
        azure = transform(endpoints["azureOpenAI"], "endpoints.azureOpenAI")
        document["endpoints"] = {**endpoints, "azureOpenAI": azure}
    if "gateway" in document:
        document["gateway"] = transform(document["gateway"], "gateway")
    return document


def disabled_model_warnings(endpoint: AzureOpenAISection) -> list[Finding]:
    return [
        Finding(
            f'Model "{model}" in group "{group.group}" is set to false and is not served.',
            (*group.path, "models", model) if group.path else None,
        )
        for group in endpoint.groups
        for model, value in group.models.items()
        if value is False
    ]
