"""Azure OpenAI api-versions: which ones exist, and which serve the resource-scoped APIs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

# Assistants (and files, threads, vector stores, batches) need a preview api-version from
# 2024-02-15 on; /responses one from 2025-03-01 on. GA versions serve neither.
ASSISTANTS_MIN_DATE = date(2024, 2, 15)
RESPONSES_MIN_DATE = date(2025, 3, 1)
DEFAULT_PREVIEW_VERSION = "2025-04-01-preview"  # the newest preview in the project's specs
_PREVIEW = re.compile(r"(\d{4}-\d{2}-\d{2})-preview")


def preview_date(version: str) -> date | None:
    """The date of a `YYYY-MM-DD-preview` api-version; None for GA and malformed versions."""
    match = _PREVIEW.fullmatch(version)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def newest_preview(versions: Iterable[str | None], minimum: date) -> str | None:
    """The newest preview version dated `minimum` or later, if any."""
    dated = [(day, v) for v in versions if v and (day := preview_date(v)) and day >= minimum]
    return max(dated)[1] if dated else None
