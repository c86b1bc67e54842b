"""Azure OpenAI api-versions: which ones exist, and which serve the resource-scoped APIs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

# Assistants (and files, threads, vector stores, batches) need a preview api-version from
# 2024-02-15 on; /responses one from 2025-03-01 on. GA versions serve neither.
ASSISTANTS_MIN_DATE = date(2024, 2, 15)
RESPONSES_MIN_DATE = date(2025, 3, 1)
# Chat's `developer` message role: from 2024-12-01-preview on (Azure's API version lifecycle page); the GA
# 2024-10-21 and older take only system, user, assistant, tool and function messages.
DEVELOPER_ROLE_MIN_DATE = date(2024, 12, 1)
DEFAULT_PREVIEW_VERSION = "2025-04-01-preview"  # the newest preview in the project's specs
_PREVIEW = re.compile(r"(\d{4}-\d{2}-\d{2})-preview")
_DATED = re.compile(r"(\d{4}-\d{2}-\d{2})(?:-preview)?")
# Version names Azure accepts besides dates (its v1 API's).
VERSION_NAMES = ("latest", "preview")

# For the JSON Schema; is_api_version() also checks that the date exists.
API_VERSION_PATTERN = r"^(?:\d{4}-\d{2}-\d{2}(?:-preview)?|latest|preview)$"
PREVIEW_PATTERN = r"^\d{4}-\d{2}-\d{2}-preview$"
API_VERSION_FORMS = (
    'expected a date YYYY-MM-DD, optionally followed by -preview (e.g. "2024-10-21"), or "latest" / "preview".'
)
ASSISTANTS_VERSION_FORMS = (
    f"expected a YYYY-MM-DD-preview version dated {ASSISTANTS_MIN_DATE.isoformat()} or later "
    '(e.g. "2025-04-01-preview").'
)


def is_api_version(version: str) -> bool:
    """A real date (optionally `-preview`) or one of Azure's version names."""
    if version in VERSION_NAMES:
        return True
    match = _DATED.fullmatch(version)
    return match is not None and _day(match.group(1)) is not None


def is_assistants_version(version: str) -> bool:
    """A preview version recent enough for the Assistants and related APIs."""
    day = preview_date(version)
    return day is not None and day >= ASSISTANTS_MIN_DATE


def preview_date(version: str) -> date | None:
    """The date of a `YYYY-MM-DD-preview` api-version; None for GA and malformed versions."""
    match = _PREVIEW.fullmatch(version)
    return _day(match.group(1)) if match else None


def takes_developer_role(version: str | None) -> bool:
    """Whether chat completions on this api-version take `developer` messages (the v1 API's and names do)."""
    day = version_date(version)
    return day is None or day >= DEVELOPER_ROLE_MIN_DATE


def version_date(version: str | None) -> date | None:
    """The date of a dated api-version, GA or preview; None for a version name or None."""
    match = _DATED.fullmatch(version or "")
    return _day(match.group(1)) if match else None


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def newest_preview(versions: Iterable[str | None], minimum: date) -> str | None:
    """The newest preview version dated `minimum` or later, if any."""
    dated = [(day, v) for v in versions if v and (day := preview_date(v)) and day >= minimum]
    return max(dated)[1] if dated else None
