"""Validation that keeps going: the parts of a document that fail the schema are left out,
so the rules still run on the rest and every problem is reported at once.

The schema's own errors are always reported; this only decides what the rules may see.
A part is left out as narrowly as possible: an optional key (its default then applies), an
entry of a mapping or list, or, for a missing required key, the list item holding it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from . import Path
from .schema import Section, document_path

ROUNDS = 3  # a key, then the list item holding it, with room for one nested item
Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class Unchecked:
    """The parts left out of a document, and the names found in them: a reference to one of
    those names is not dangling, the part is just unchecked."""

    paths: tuple[Path, ...] = ()
    group_names: frozenset[str] = frozenset()
    model_names: frozenset[str] = frozenset()

    def covers(self, section: Section | None) -> bool:
        """True when the schema left out some of `section` (so its own rules would misfire)."""
        if section is None or section.path is None:
            return False
        prefix = section.path
        return any(path[: len(prefix)] == prefix for path in self.paths)


@dataclass
class Salvage(Generic[Model]):
    parsed: Model | None  # None: too little is valid to check any rule
    errors: ValidationError | None
    unchecked: Unchecked = field(default_factory=Unchecked)


def validate_salvaging(shape: type[Model], document: dict[str, Any]) -> Salvage[Model]:
    """Validate `document`; on errors, validate it again without the failing parts."""
    try:
        parsed = shape.model_validate(document)
    except ValidationError as exc:
        errors = exc
    else:
        stamp_paths(parsed, (), {})
        return Salvage(parsed, None)
    # A left-out key may be a required one: the next round then leaves out its list item.
    # Targets stay in the document's own coordinates; `kept` maps list indices back to them.
    targets: list[Path] = []
    kept: dict[Path, list[int]] = {}
    failures = errors.errors()
    for _ in range(ROUNDS):
        found = [_left_out(_original(document_path(item["loc"]), kept), item["type"]) for item in failures]
        if any(target is None for target in found):
            return Salvage(None, errors)
        targets += [target for target in found if target is not None and target not in targets]
        kept = {}
        try:
            parsed = shape.model_validate(_without(document, (), set(targets), kept))
        except ValidationError as exc:
            failures = exc.errors()
            continue
        stamp_paths(parsed, (), kept)
        groups, models = _names_in(_parts(document, targets))
        return Salvage(parsed, errors, Unchecked(tuple(targets), frozenset(groups), frozenset(models)))
    return Salvage(None, errors)


def _original(path: Path, kept: dict[Path, list[int]]) -> Path:
    """A path in a document with parts left out, as a path in the whole document."""
    original: Path = ()
    for part in path:
        if isinstance(part, int) and original in kept:
            part = kept[original][part]
        original = (*original, part)
    return original


def _left_out(path: Path, error_type: str) -> Path | None:
    """What to leave out for one error: the key itself, or for a missing required key the
    list item holding it (None: the document's skeleton is wrong, nothing can be salvaged)."""
    if error_type != "missing":
        return path or None
    items = [i for i, part in enumerate(path) if isinstance(part, int)]
    return path[: items[-1] + 1] if items else None


def _without(value: Any, path: Path, targets: set[Path], kept: dict[Path, list[int]]) -> Any:
    """A copy of `value` without the targets; `kept` records which original list indices remain."""
    if isinstance(value, dict):
        return {
            key: _without(item, (*path, key), targets, kept)
            for key, item in value.items()
            if (*path, key) not in targets
        }
    if isinstance(value, list):
        indices = [i for i in range(len(value)) if (*path, i) not in targets]
        if len(indices) < len(value):
            kept[path] = indices
        return [_without(value[i], (*path, i), targets, kept) for i in indices]
    return value


def stamp_paths(model: BaseModel, path: Path, kept: dict[Path, list[int]]) -> None:
    """Record on each section where in the document it came from (for line numbers)."""
    if isinstance(model, Section):
        model.set_path(path)
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            stamp_paths(value, (*path, key), kept)
        elif isinstance(value, list):
            original = kept.get((*path, key), range(len(value)))
            for index, item in zip(original, value, strict=True):
                if isinstance(item, BaseModel):
                    stamp_paths(item, (*path, key, index), kept)
        elif isinstance(value, dict):
            for item_key, item in value.items():
                if isinstance(item, BaseModel):
                    stamp_paths(item, (*path, key, item_key), kept)


def _parts(document: Any, paths: Iterable[Path]) -> list[tuple[Path, Any]]:
    found = []
    for path in paths:
        value = document
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                break
        else:
            found.append((path, value))
    return found


def _names_in(parts: list[tuple[Path, Any]]) -> tuple[set[str], set[str]]:
    """Group names and model ids written in the left-out parts (LibreChat's and stulzq's keys)."""
    groups: set[str] = set()
    models: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("group"), str):
                groups.add(value["group"])
            if isinstance(value.get("models"), dict):
                models.update(str(key) for key in value["models"])
            if isinstance(value.get("model_name"), str):
                models.add(value["model_name"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for path, value in parts:
        if len(path) >= 2 and path[-2] == "models" and isinstance(path[-1], str):
            models.add(path[-1])
        walk(value)
    return groups, models
