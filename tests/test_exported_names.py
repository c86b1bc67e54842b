"""No dead code in the shipped app: every public name a module in core/ defines (top-level names,
methods, properties and dataclass fields) is read somewhere else in core/ or function_app.py.

Read means loaded by name or attribute (or, for a dataclass's fields, the class passed to
`dataclasses.fields`/`asdict`, as the access log does); passing a value as a keyword argument to a
constructor does not count, so a settings field nothing reads shows up here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted([*ROOT.joinpath("core").rglob("*.py"), ROOT / "function_app.py"])
# Entry points called by the Python runtime rather than by our code, and names only tests use on purpose.
NOT_CALLED_BY_CORE = {
    "core/__main__.py:main": "`python -m core` runs it",
    "core/gateway.py:bind": "the tests' in-process host serves several gateways in one process",
}
# The accepted configuration vocabulary: LibreChat keys the gateway parses and ignores are not dead code.
VOCABULARY = {ROOT / "core" / "config" / "schema.py"}


def _reads(trees: dict[Path, ast.Module]) -> set[str]:
    names = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                names.add(node.attr)
            elif isinstance(node, ast.ImportFrom):
                names |= {alias.name for alias in node.names}
    return names


def _read_field_by_field(tree: ast.Module) -> set[str]:
    """Classes whose fields are read generically: `fields(AccessRecord)`."""
    return {
        arg.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", "")) in {"fields", "asdict"}
        for arg in node.args
        if isinstance(arg, ast.Name)
    }


def _public_definitions(tree: ast.Module) -> list[str]:
    generic = _read_field_by_field(tree)
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef):
            names.append(node.name)
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.append(member.name)
                elif (
                    isinstance(member, ast.AnnAssign)
                    and isinstance(member.target, ast.Name)
                    and node.name not in generic
                ):
                    names.append(member.target.id)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return [name for name in names if not name.startswith("_")]


def test_every_public_name_in_core_is_used() -> None:
    trees = {path: ast.parse(path.read_text()) for path in SHIPPED}
    reads = _reads(trees)
    unused = [
        f"{path.relative_to(ROOT)}:{name}"
        for path, tree in trees.items()
        if path not in VOCABULARY
        for name in _public_definitions(tree)
        if name not in reads and f"{path.relative_to(ROOT)}:{name}" not in NOT_CALLED_BY_CORE
    ]
    assert unused == []


def test_the_exceptions_are_still_there() -> None:
    for entry in NOT_CALLED_BY_CORE:
        path, name = entry.split(":")
        assert name in _public_definitions(ast.parse((ROOT / path).read_text())), f"{entry} is gone: drop it here"
