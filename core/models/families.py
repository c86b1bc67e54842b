"""What the model behind a deployment accepts: a dated table of the Azure OpenAI model families.

The gateway fits each request to the model that serves it (core/models/fit.py): reasoning
models refuse `max_tokens` (they take `max_completion_tokens`), any non-default sampling parameter and
log probabilities; Responses-only models refuse chat completions altogether. A model entry names its
Azure model with `baseModel`; without it the gateway recognises the model id, then the deployment
name, when either names a known family (deployments are usually named after their model).

Each row cites its public source. The table is a starting point, not the last word: when Azure refuses
a parameter the gateway knows how to repair, it learns that for the deployment (fit.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

CHECKED = "2026-12-06"  # when the rows below were last compared with their sources

# Microsoft Learn, "Azure OpenAI reasoning models" (ms.date 2026-07-29): which models reason, what they refuse
# ("Not Supported": temperature, top_p, presence_penalty, frequency_penalty, logprobs, top_logprobs, logit_bias,
# max_tokens), their reasoning_effort values and defaults, and the API each needs (o-series: 2025-04-01-preview or
# the v1 API; the GPT-5 family: the v1 API).
REASONING_SOURCE = "https://learn.microsoft.com/azure/foundry/openai/how-to/reasoning"
# Microsoft Learn, "Foundry Models sold directly by Azure" (ms.date 2026-06-11): each model's API (Responses API
# only for the codex and pro models), and which are not reasoning models (gpt-5-chat).
MODELS_SOURCE = "https://learn.microsoft.com/azure/foundry/foundry-models/concepts/models-sold-directly-by-azure"
# OpenAI, "Using GPT-5.x": temperature, top_p and logprobs are only supported while reasoning_effort is "none"
# (gpt-5.1 and later with a "none" effort, which is their default). Azure mirrors it; its pages keep the blanket list.
NONE_EFFORT_SOURCE = "https://developers.openai.com/api/docs/guides/latest-model"


@dataclass(frozen=True, slots=True)
class Family:
    name: str  # as Azure names the model, e.g. "gpt-5-mini"
    reasoning: bool
    responses_only: bool = False  # refuses chat and text completions (OperationNotSupported)
    # Takes temperature, top_p, penalties and log probabilities while its reasoning_effort is "none".
    samples_without_effort: bool = False
    default_effort_none: bool = False  # its reasoning_effort is "none" unless the call says otherwise
    # The oldest dated api-version Microsoft documents for it; "v1": only the v1 API is documented; None: any.
    api_version: str | None = None
    source: str = REASONING_SOURCE

    @property
    def kind(self) -> str:
        if self.responses_only:
            return "Responses-only reasoning" if self.reasoning else "Responses-only"
        return "reasoning" if self.reasoning else "chat"


_O_SERIES = "2025-04-01-preview"


def _reasoning(name: str, api_version: str = "v1", **facts: Any) -> Family:
    return Family(name, reasoning=True, api_version=api_version, **facts)


def _responses_only(name: str, reasoning: bool = True) -> Family:
    return Family(name, reasoning=reasoning, responses_only=True, api_version="v1", source=MODELS_SOURCE)


def _samples_when_none(name: str) -> Family:
    """A GPT-5.x reasoning model that samples (temperature, top_p, logprobs) while its effort is "none", its default."""
    return Family(
        name, reasoning=True, samples_without_effort=True, default_effort_none=True, api_version="v1",
        source=NONE_EFFORT_SOURCE,
    )  # fmt: skip


def _chat(name: str) -> Family:
    return Family(name, reasoning=False, source=MODELS_SOURCE)


# Most specific first: the first family whose name starts a model name (then ends it, or is followed by a
# separator: "-2025-08-07", "-mini", ".1") is the model's. A newer model of a known line (gpt-5.7) falls to
# its line's oldest row (gpt-5): a reasoning model that refuses sampling, the safe guess.
FAMILIES: tuple[Family, ...] = (
    # GPT-5.x with "-chat" names: reasoning-class parameters from 5.1 on; gpt-5-chat itself is not a reasoning model.
    _chat("gpt-5-chat"),
    _reasoning("gpt-5.1-chat"),
    _reasoning("gpt-5.2-chat"),
    _reasoning("gpt-5.3-chat"),
    _reasoning("gpt-chat-latest"),
    # Responses API only: chat completions answer OperationNotSupported.
    _responses_only("gpt-5-codex"),
    _responses_only("gpt-5.1-codex"),  # -mini and -max too
    _responses_only("gpt-5.2-codex"),
    _responses_only("gpt-5.3-codex"),
    _responses_only("gpt-5-pro"),
    _responses_only("gpt-5.4-pro"),
    _responses_only("codex-mini"),
    _responses_only("o3-pro"),
    _responses_only("computer-use-preview", reasoning=False),
    # GPT-5.x reasoning models whose default effort is "none".
    _samples_when_none("gpt-5.6"),  # -sol, -terra, -luna
    _samples_when_none("gpt-5.5"),
    _samples_when_none("gpt-5.4"),  # -mini, -nano
    _samples_when_none("gpt-5.2"),
    _samples_when_none("gpt-5.1"),
    _reasoning("gpt-5"),  # -mini, -nano: effort minimal to high, medium by default
    # The o-series.
    _reasoning("o1-mini", _O_SERIES),
    _reasoning("o3-mini", _O_SERIES),
    _reasoning("o4-mini", _O_SERIES),
    _reasoning("o1", _O_SERIES),
    _reasoning("o3", _O_SERIES),
    # Chat models that take every parameter.
    _chat("gpt-4.1"),  # -mini, -nano
    _chat("gpt-4o-mini"),
    _chat("gpt-4o"),
)


def family_of(name: str) -> Family | None:
    """The family `name` (a model or deployment name) belongs to, if the table knows it."""
    lowered = name.strip().lower()
    for family in FAMILIES:
        if _PATTERNS[family.name].fullmatch(lowered):
            return family
    return None


def _pattern(family: str) -> re.Pattern[str]:
    # The family's name, then nothing, or a separator and anything: "gpt-5-mini-2025-08-07", "o3_prod".
    return re.compile(re.escape(family) + r"(?:[-_ .:@].*)?")


_PATTERNS: dict[str, re.Pattern[str]] = {family.name: _pattern(family.name) for family in FAMILIES}
