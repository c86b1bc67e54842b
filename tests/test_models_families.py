"""The model-family table (core/models/families.py): names recognised by their longest family, whatever follows
it; what each kind of model is; and every row citing a source."""

from __future__ import annotations

import pytest

from core.models.families import FAMILIES, MODELS_SOURCE, NONE_EFFORT_SOURCE, REASONING_SOURCE, family_of


@pytest.mark.parametrize(
    ("name", "family", "kind"),
    [
        ("gpt-5-mini", "gpt-5", "reasoning"),
        ("gpt-5-mini-2025-08-07", "gpt-5", "reasoning"),
        ("GPT-5-nano", "gpt-5", "reasoning"),
        ("gpt-5-chat", "gpt-5-chat", "chat"),  # not a reasoning model, unlike the later -chat models
        ("gpt-5.1-chat", "gpt-5.1-chat", "reasoning"),
        ("gpt-5.1", "gpt-5.1", "reasoning"),
        ("gpt-5.4-mini", "gpt-5.4", "reasoning"),
        ("gpt-5-codex", "gpt-5-codex", "Responses-only reasoning"),
        ("gpt-5.1-codex-max", "gpt-5.1-codex", "Responses-only reasoning"),
        ("gpt-5-pro", "gpt-5-pro", "Responses-only reasoning"),
        ("o3-pro", "o3-pro", "Responses-only reasoning"),
        ("o3-mini", "o3-mini", "reasoning"),
        ("o3", "o3", "reasoning"),
        ("o4-mini_prod", "o4-mini", "reasoning"),
        ("computer-use-preview", "computer-use-preview", "Responses-only"),
        ("gpt-4o-mini", "gpt-4o-mini", "chat"),
        ("gpt-4o-2024-11-20", "gpt-4o", "chat"),
        ("gpt-4.1-nano", "gpt-4.1", "chat"),
        ("gpt-5.7", "gpt-5", "reasoning"),  # a newer model of a known line: its line's safe guess
    ],
)
def test_a_name_belongs_to_its_most_specific_family(name: str, family: str, kind: str) -> None:
    found = family_of(name)
    assert found is not None and (found.name, found.kind) == (family, kind)


@pytest.mark.parametrize("name", ["my-deployment", "gpt-5x", "o33", "text-embedding-3-small", "gpt", ""])
def test_a_name_of_no_family_is_unknown(name: str) -> None:
    assert family_of(name) is None


def test_every_row_cites_a_source_and_no_row_hides_behind_an_earlier_one() -> None:
    for index, family in enumerate(FAMILIES):
        assert family.source.startswith("https://"), family.name
        assert family_of(family.name) is family, f"{family.name} is caught by an earlier row"
        assert all(other.name != family.name for other in FAMILIES[:index])


@pytest.mark.parametrize(
    ("name", "api_version", "source"),
    [
        ("gpt-5-mini", "v1", REASONING_SOURCE),
        ("gpt-5.1-chat", "v1", REASONING_SOURCE),
        ("o3-mini", "2025-04-01-preview", REASONING_SOURCE),
        ("gpt-5-codex", "v1", MODELS_SOURCE),
        ("computer-use-preview", "v1", MODELS_SOURCE),
        ("gpt-5.1", "v1", NONE_EFFORT_SOURCE),
        ("gpt-5-chat", None, MODELS_SOURCE),
        ("gpt-4o", None, MODELS_SOURCE),
    ],
)
def test_each_row_names_the_oldest_api_version_documented_for_it_and_its_source(
    name: str, api_version: str | None, source: str
) -> None:
    """What `core check` compares a group's api-version with ("v1": only the v1 API is documented; None: any), and
    the page that says so."""
    found = family_of(name)
    assert found is not None and (found.api_version, found.source) == (api_version, source)
