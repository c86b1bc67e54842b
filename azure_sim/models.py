"""Which model a deployment runs, and what that model accepts.

A deployment runs the model ``AzureSimulator(models={deployment: model})`` (``--model DEPLOYMENT=MODEL``) names, else
the model named like the deployment (deployments are usually named after their model). ``profile_of`` knows the
models below by their Azure names, with or without a version suffix (``gpt-5-mini-2025-08-07``); any other name gets
``DEFAULT_PROFILE``, the gpt-4o-like behaviour every deployment had before models were told apart.

Which models Azure serves on which API, from Azure's "Azure OpenAI reasoning models" page
(https://learn.microsoft.com/azure/ai-foundry/openai/how-to/reasoning, "API & feature support", ms.date 2026-01-14;
MicrosoftDocs/azure-ai-docs articles/ai-foundry/openai/how-to/reasoning.md): chat completions and responses for o1,
o3-mini, o3, o4-mini, gpt-5, gpt-5-mini, gpt-5-nano, gpt-5.1, gpt-5.1-chat, gpt-5.2; responses only for codex-mini,
o3-pro, gpt-5-codex, gpt-5-pro, gpt-5.1-codex, gpt-5.1-codex-mini, gpt-5.1-codex-max, gpt-5.2-codex. OpenAI's own
list of Responses-only models (openai/openai-openapi ``ModelIdsResponses``: ``ResponsesOnlyModel``) adds o1-pro,
computer-use-preview and the pro models after gpt-5-pro (gpt-5.2-pro here). No reasoning model serves legacy
completions: Azure answers those with ``OperationNotSupported``, as it does for any chat model.

``reasoning_effort`` values and defaults, from the same page (footnotes 4-7: gpt-5.1 defaults to ``none``; gpt-5-pro
supports only ``high``; gpt-5.2 and the gpt-5.1 codex models also take ``none``; gpt-5.1-codex-max adds ``xhigh``) and
OpenAI's ``ReasoningEffort`` schema ("gpt-5.1 defaults to none, which does not perform reasoning [...] All models
before gpt-5.1 default to medium reasoning effort, and do not support none"). The versions are the ones Azure lists;
a model with no dated version answers with its bare name.

Not from Azure's page: gpt-5.2-chat (like gpt-5.1-chat, a reasoning model at a fixed ``medium`` effort that refuses a
non-default temperature, per OpenAI's community compatibility matrix and reports of both), o1-pro's and
computer-use-preview's versions (OpenAI's model ids), and gpt-5-codex's (Azure's page prints "2025-09-011";
2025-09-15 is the dated id in use, e.g. DataRobot's ``azure/gpt-5-codex-2025-09-15``). gpt-5-chat is not listed: it
does not reason and takes temperature, so it plays gpt-4o like any other name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .wire import invalid, not_one_of, quoted_list

# The operations a deployment's model decides (Azure's names for them, as its OperationNotSupported message says).
CHAT_COMPLETION = "chatCompletion"
COMPLETION = "completion"
RESPONSES = "responses"

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")  # every reasoning_effort value, in OpenAI's order
# Reasoning tokens an answer reports per effort (made up, but fixed, so tests can count): none does not reason.
REASONING_TOKENS = {"none": 0, "minimal": 8, "low": 16, "medium": 64, "high": 128, "xhigh": 256}

_VERSIONED = re.compile(r"(.+)-(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """What one model serves and accepts."""

    name: str  # Azure's model name, as its errors quote it ("gpt-5-mini")
    version: str  # the version Azure appends to ``name`` in chat answers ("2025-08-07"); "" when none is known
    operations: frozenset[str]  # which of CHAT_COMPLETION, COMPLETION, RESPONSES it serves
    efforts: tuple[str, ...] = ()  # the reasoning_effort values it takes; () for a model that does not reason
    default_effort: str | None = None

    @property
    def reasoning(self) -> bool:
        return bool(self.efforts)

    @property
    def model_id(self) -> str:
        """What a chat answer's ``model`` says: the name and its version ("gpt-5-mini-2025-08-07")."""
        return f"{self.name}-{self.version}" if self.version else self.name

    def reasoning_tokens(self, effort: str | None) -> int:
        return REASONING_TOKENS.get(effort or "none", 0) if self.reasoning else 0


_ANY_OPERATION = frozenset({CHAT_COMPLETION, COMPLETION, RESPONSES})
_CHAT_AND_RESPONSES = frozenset({CHAT_COMPLETION, RESPONSES})
_RESPONSES_ONLY = frozenset({RESPONSES})
_O_SERIES = ("low", "medium", "high")
_GPT_5 = ("minimal", "low", "medium", "high")
_GPT_5_1 = ("none", "low", "medium", "high")
_GPT_5_2 = ("none", "low", "medium", "high", "xhigh")

DEFAULT_PROFILE = ModelProfile("gpt-4o", "2024-08-06", _ANY_OPERATION)  # every model the table does not know

PROFILES: dict[str, ModelProfile] = {
    profile.name: profile
    for profile in (
        # Reasoning models, on chat completions and the Responses API.
        ModelProfile("o1", "2024-12-17", _CHAT_AND_RESPONSES, _O_SERIES, "medium"),
        ModelProfile("o3-mini", "2025-01-31", _CHAT_AND_RESPONSES, _O_SERIES, "medium"),
        ModelProfile("o3", "2025-04-16", _CHAT_AND_RESPONSES, _O_SERIES, "medium"),
        ModelProfile("o4-mini", "2025-04-16", _CHAT_AND_RESPONSES, _O_SERIES, "medium"),
        ModelProfile("gpt-5", "2025-08-07", _CHAT_AND_RESPONSES, _GPT_5, "medium"),
        ModelProfile("gpt-5-mini", "2025-08-07", _CHAT_AND_RESPONSES, _GPT_5, "medium"),
        ModelProfile("gpt-5-nano", "2025-08-07", _CHAT_AND_RESPONSES, _GPT_5, "medium"),
        ModelProfile("gpt-5.1", "2025-11-13", _CHAT_AND_RESPONSES, _GPT_5_1, "none"),
        ModelProfile("gpt-5.1-chat", "2025-11-13", _CHAT_AND_RESPONSES, ("medium",), "medium"),
        ModelProfile("gpt-5.2", "2025-12-11", _CHAT_AND_RESPONSES, _GPT_5_2, "none"),
        ModelProfile("gpt-5.2-chat", "2025-12-11", _CHAT_AND_RESPONSES, ("medium",), "medium"),
        # Responses-only models: chat completions answer OperationNotSupported.
        ModelProfile("o1-pro", "2025-03-19", _RESPONSES_ONLY, _O_SERIES, "medium"),
        ModelProfile("codex-mini", "2025-05-16", _RESPONSES_ONLY, _O_SERIES, "medium"),
        ModelProfile("o3-pro", "2025-06-10", _RESPONSES_ONLY, _O_SERIES, "medium"),
        ModelProfile("gpt-5-codex", "2025-09-15", _RESPONSES_ONLY, _O_SERIES, "medium"),
        ModelProfile("gpt-5-pro", "2025-10-06", _RESPONSES_ONLY, ("high",), "high"),
        ModelProfile("gpt-5.1-codex", "2025-11-13", _RESPONSES_ONLY, _GPT_5_1, "medium"),
        ModelProfile("gpt-5.1-codex-mini", "2025-11-13", _RESPONSES_ONLY, _GPT_5_1, "medium"),
        ModelProfile("gpt-5.1-codex-max", "", _RESPONSES_ONLY, _GPT_5_2, "medium"),
        ModelProfile("gpt-5.2-codex", "", _RESPONSES_ONLY, ("low", "medium", "high", "xhigh"), "medium"),
        ModelProfile("gpt-5.2-pro", "2025-12-11", _RESPONSES_ONLY, ("medium", "high", "xhigh"), "medium"),
        ModelProfile("computer-use-preview", "2025-03-11", _RESPONSES_ONLY),
    )
}


def profile_of(model: str) -> ModelProfile:
    """The profile of a model name, with or without its version (a dated name keeps its own date)."""
    known = PROFILES.get(model)
    if known is not None:
        return known
    dated = _VERSIONED.fullmatch(model)
    if dated is not None and dated.group(1) in PROFILES:
        return replace(PROFILES[dated.group(1)], version=dated.group(2))
    return DEFAULT_PROFILE


def deployed_profile(models: Mapping[str, str], deployment: str) -> ModelProfile:
    """The profile of the model a deployment runs: the one ``models`` names, else the deployment's own name."""
    return profile_of(models.get(deployment, deployment))


def check_effort(value: Any, profile: ModelProfile, param: str) -> str | None:
    """The effort a reasoning model runs at: ``value`` if the model takes it, its default when absent.

    An effort no model knows is a schema error; one this model does not take gets the answer OpenAI sends
    (openai/openai-agents-python#2089, sst/opencode#4451): "Unsupported value: 'minimal' is not supported with the
    'gpt-5.1' model. Supported values are: 'none', 'low', 'medium', and 'high'."
    """
    if value is None:
        return profile.default_effort
    if value not in EFFORTS:
        raise not_one_of(value, EFFORTS, param)
    if value not in profile.efforts:
        message = (
            f"Unsupported value: '{value}' is not supported with the '{profile.name}' model. "
            f"Supported values are: {quoted_list(profile.efforts)}."
        )
        raise invalid(message, param, "unsupported_value")
    return str(value)
