"""No import cycle in core/, azure_sim/ or function_app.py, type-only imports included.

Every import statement counts, wherever it stands: at module level, under ``if TYPE_CHECKING:``, inside a function.
So does the package ``__init__`` an import runs on its way: importing ``a.b.c`` from outside ``a.b`` runs
``a/b/__init__.py`` first, while a module importing a sibling in its own package does not run that package's
``__init__`` again. ``from a.b import c`` imports the module ``a.b.c`` when there is one, else reads a name of ``a.b``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("core", "azure_sim", "function_app.py")

Graph = dict[str, set[str]]  # module -> the modules importing it runs


def _modules(root: Path, entries: tuple[str, ...]) -> dict[str, Path]:
    """Dotted name -> file, for every module of each package (a package is its ``__init__.py``) and each file."""
    modules = {}
    for entry in entries:
        files = sorted((root / entry).rglob("*.py")) if (root / entry).is_dir() else [root / entry]
        for file in files:
            parts = file.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return modules


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _imports(module: str, file: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that ``module``'s import statements run."""
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importer's package, one level up per extra dot
                base = ".".join(filter(None, [package.rsplit(".", node.level - 1)[0], node.module]))
            targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
    runs = set()
    for target in targets:
        parts = target.split(".")
        ancestors = {".".join(parts[:i]) for i in range(1, len(parts))}
        runs |= {target} | {ancestor for ancestor in ancestors if not _inside(module, ancestor)}
    return runs & modules.keys()


def _graph(root: Path, entries: tuple[str, ...]) -> Graph:
    modules = _modules(root, entries)
    return {module: _imports(module, file, modules) for module, file in modules.items()}


def _reachable(graph: Graph, start: str) -> set[str]:
    """The modules ``start`` reaches through one import or more."""
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += graph[module]
    return seen


def _cycles(graph: Graph) -> list[list[str]]:
    """A module is on a cycle when it reaches itself; its cycle (a strongly connected component) is every module it
    reaches that reaches it back. A module that imports itself is a cycle of one."""
    reach = {module: _reachable(graph, module) for module in graph}
    on_a_cycle = [module for module in graph if module in reach[module]]
    cycles = {tuple(sorted(m for m in reach[module] if module in reach[m])) for module in on_a_cycle}
    return sorted(list(cycle) for cycle in cycles)


def _describe(graph: Graph, cycle: list[str]) -> str:
    edges = "\n".join(f"    {module} -> {', '.join(sorted(graph[module] & set(cycle)))}" for module in cycle)
    return f"  a cycle of {len(cycle)} modules:\n{edges}"


def test_no_import_cycle_in_core_azure_sim_or_function_app() -> None:
    graph = _graph(ROOT, CHECKED)
    assert {"core", "core.gateway", "azure_sim", "azure_sim.server", "function_app"} <= graph.keys()
    cycles = _cycles(graph)
    assert cycles == [], "import cycles (module -> what it imports within the cycle):\n" + "\n".join(
        _describe(graph, cycle) for cycle in cycles
    )


def test_the_check_sees_type_only_imports_function_imports_and_package_inits(tmp_path: Path) -> None:
    sources = {
        "pkg/__init__.py": "",
        # a cycle only under TYPE_CHECKING; `from . import low` imports the module pkg.low
        "pkg/low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .high import High\n",
        "pkg/high.py": "from . import low\nclass High: ...\n",
        # base imports sub.helper inside a function, which runs sub/__init__.py, which imports handler, which
        # imports base; helper imports its sibling leaf without running sub/__init__.py, so it is on no cycle
        "pkg/base.py": "def helper():\n    from .sub.helper import x\n    return x\n",
        "pkg/sub/__init__.py": "from .handler import handle\n",
        "pkg/sub/handler.py": "from ..base import helper\ndef handle(): ...\n",
        "pkg/sub/helper.py": "from . import leaf\nx = 1\n",
        "pkg/sub/leaf.py": "",
        "pkg/selfish.py": "import pkg.selfish\n",
    }
    for name, source in sources.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(source)
    assert _cycles(_graph(tmp_path, ("pkg",))) == [
        ["pkg.base", "pkg.sub", "pkg.sub.handler"],
        ["pkg.high", "pkg.low"],
        ["pkg.selfish"],
    ]
