"""A chat completion request fitted to the model that serves it, and what Azure teaches about a deployment.

For a reasoning model (core/models/families.py) the gateway sends `max_completion_tokens` for
`max_tokens`, and leaves out what such a model refuses: a sampling parameter that is not its default,
and log probabilities. A model that samples while its reasoning_effort is "none" (gpt-5.1) keeps them
when the call's effort is none. On an api-version older than the `developer` message role, a developer
message goes as the system message it stands for (OpenAI: "developer messages replace system messages").
Each change is named, so the answer and the access log can say what was changed.

Azure names the parameter it refuses (`unsupported_parameter`, `unsupported_value`, a 400 nothing was
generated or billed for): when it is one the gateway knows how to repair, the call is repaired and sent
once more, and the deployment keeps the repair for the life of the process. A deployment that refuses
chat completions (`OperationNotSupported`) is remembered as Responses-only the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import orjson

from core.models.families import Family

# What a reasoning model refuses: sampling parameters other than their default, and these outright.
SAMPLING_DEFAULTS: dict[str, float] = {"temperature": 1, "top_p": 1, "presence_penalty": 0, "frequency_penalty": 0}
UNSUPPORTED = ("logprobs", "top_logprobs", "logit_bias")
# What a GPT-5.x model takes again while its reasoning_effort is "none" (core/models/families.py's source).
WITH_NO_EFFORT = frozenset({"temperature", "top_p", "logprobs", "top_logprobs"})
_REPAIRABLE = frozenset({"max_tokens", *SAMPLING_DEFAULTS, *UNSUPPORTED})
_ROLE = re.compile(r"messages\[\d+\]\.role")


@dataclass(frozen=True, slots=True)
class Fit:
    """How calls to one deployment are fitted: from the model table, then from what Azure refused."""

    rename_max_tokens: bool = False
    drop_sampling: frozenset[str] = frozenset()  # sent only when it is the default (or the effort is none)
    drop: frozenset[str] = frozenset()  # never sent
    samples_without_effort: bool = False
    default_effort_none: bool = False
    responses_only: bool = False
    developer_as_system: bool = False  # the api-version predates the developer role

    @classmethod
    def of(cls, family: Family | None, *, developer_as_system: bool = False) -> Fit:
        if family is None or not family.reasoning:
            responses_only = family is not None and family.responses_only
            return cls(responses_only=responses_only, developer_as_system=developer_as_system)
        return cls(
            rename_max_tokens=True,
            drop_sampling=frozenset(SAMPLING_DEFAULTS),
            drop=frozenset(UNSUPPORTED),
            samples_without_effort=family.samples_without_effort,
            default_effort_none=family.default_effort_none,
            responses_only=family.responses_only,
            developer_as_system=developer_as_system,
        )

    @property
    def changes_parameters(self) -> bool:
        return self.rename_max_tokens or bool(self.drop_sampling) or bool(self.drop)

    def apply(self, payload: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """`payload` fitted, and each change: "max_tokens->max_completion_tokens", "-temperature"."""
        changes: list[str] = []
        fitted = payload
        if self.developer_as_system and (messages := _developer_as_system(payload.get("messages"))) is not None:
            fitted = {**payload, "messages": messages}
            changes.append("developer->system")
        if not self.changes_parameters or _REPAIRABLE.isdisjoint(payload):
            return fitted, changes
        fitted = dict(fitted)
        if self.rename_max_tokens and "max_tokens" in fitted:
            value = fitted.pop("max_tokens")
            if "max_completion_tokens" not in fitted and value is not None:
                fitted["max_completion_tokens"] = value
            changes.append("max_tokens->max_completion_tokens")
        effort = fitted.get("reasoning_effort", "none" if self.default_effort_none else None)
        samples = self.samples_without_effort and effort == "none"
        for name in sorted(self.drop_sampling):
            kept = samples and name in WITH_NO_EFFORT
            if name in fitted and not kept and fitted[name] != SAMPLING_DEFAULTS.get(name):
                del fitted[name]
                changes.append(f"-{name}")
        for name in sorted(self.drop):
            if name in fitted and not (samples and name in WITH_NO_EFFORT):
                del fitted[name]
                changes.append(f"-{name}")
        return (fitted if changes else payload), changes

    def learned_from(self, error: bytes) -> Fit | None:
        """A fit that repairs what `error` (a 400 body) says the deployment refuses; None when there is
        nothing new to repair (another kind of error, a parameter the gateway cannot repair)."""
        code, param, message = _refusal(error)
        if code == "OperationNotSupported":
            return None if self.responses_only else replace(self, responses_only=True)
        if code == "invalid_value" and _ROLE.fullmatch(param or "") and "'developer'" in message:
            # The api-version predates the role: "Invalid value: 'developer'. Supported values are: ..."
            return None if self.developer_as_system else replace(self, developer_as_system=True)
        if code not in ("unsupported_parameter", "unsupported_value") or param not in _REPAIRABLE:
            return None
        if param == "max_tokens":
            return None if self.rename_max_tokens else replace(self, rename_max_tokens=True)
        if param in SAMPLING_DEFAULTS:
            if param in self.drop_sampling:
                return None
            return replace(self, drop_sampling=self.drop_sampling | {param}, samples_without_effort=False)
        if param in self.drop:
            return None
        return replace(self, drop=self.drop | {param}, samples_without_effort=False)


def _developer_as_system(messages: Any) -> list[Any] | None:
    """`messages` with each developer message as a system message; None when there is none to change."""
    if not isinstance(messages, list):
        return None
    for message in messages:  # (a loop, not any() over a generator: every chat completion of such a model asks)
        if isinstance(message, dict) and message.get("role") == "developer":
            break
    else:
        return None
    return [
        {**message, "role": "system"} if isinstance(message, dict) and message.get("role") == "developer" else message
        for message in messages
    ]


def _refusal(error: bytes) -> tuple[str | None, str | None, str]:
    """The error's code, parameter and message, from Azure's `{"error": {"code", "param", "message"}}`."""
    try:
        body = orjson.loads(error)
    except orjson.JSONDecodeError:
        return None, None, ""
    inner = body.get("error") if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        return None, None, ""
    code, param, message = inner.get("code"), inner.get("param"), inner.get("message")
    return (
        code if isinstance(code, str) else None,
        param if isinstance(param, str) else None,
        message if isinstance(message, str) else "",
    )


class LearnedFits:
    """What each deployment taught the gateway, for the life of the process (each instance learns alone;
    a relearning costs one refused call)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._fits: dict[tuple[str, str], Fit] = {}
        self._max_entries = max_entries

    def get(self, key: tuple[str, str]) -> Fit | None:
        return self._fits.get(key)

    def remember(self, key: tuple[str, str], fit: Fit) -> None:
        if key not in self._fits and len(self._fits) >= self._max_entries:
            self._fits.pop(next(iter(self._fits)))  # the oldest: a bound, not a policy
        self._fits[key] = fit
