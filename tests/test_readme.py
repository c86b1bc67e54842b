"""The README describes the repository as it is: the files it cites exist, and its project layout
names every module and every top-level entry, each where it is."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _layout() -> str:
    section = README.split("## Project layout", 1)[1]
    return section.split("```", 2)[1]


def test_every_file_the_readme_cites_is_in_the_repository() -> None:
    cited = set(re.findall(r"`([\w.-]+(?:/[\w.-]+)+\.\w+)`", README))
    assert "bench/README.md" in cited
    assert sorted(path for path in cited if not (ROOT / path).is_file()) == []


def test_the_layout_names_every_top_level_entry_where_it_is() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    top_level = {path.split("/")[0] for path in tracked.split() if not path.startswith(".")} - {"README.md"}
    listed = {line.split()[0] for line in _layout().splitlines() if line and not line[0].isspace()}
    assert top_level - {entry.split("/")[0] for entry in listed} == set(), "the layout misses these"
    assert sorted(entry for entry in listed if not (ROOT / entry).exists()) == [], "the layout names what is not there"


def test_the_layout_names_every_module() -> None:
    layout = _layout()
    modules = sorted(
        p.relative_to(ROOT)
        for package in ("core", "azure_sim")
        for p in ROOT.joinpath(package).rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    )
    assert [str(m) for m in modules if not re.search(rf"\b{re.escape(m.name)}\b", layout)] == []
    cited = re.findall(r"\b((?:core|azure_sim|tests|bench|config|infra)/[\w./]*)", layout)
    assert all((ROOT / path).exists() for path in cited)


def test_the_quick_start_documents_every_simulator_directive() -> None:
    from azure_sim import FAIL_MODES

    section = README.split("### The local upstream", 1)[1].split("\n## ", 1)[0]
    headers = set(re.findall(r'"(x-sim-[a-z-]+)"', (ROOT / "azure_sim" / "behaviour.py").read_text()))
    assert len(headers) > 5
    assert sorted(h for h in headers if f"`{h}" not in section) == []
    assert sorted(mode for mode in FAIL_MODES if f"`{mode}`" not in section) == []
    assert "curl" in section and "forwardHeaders" in section
