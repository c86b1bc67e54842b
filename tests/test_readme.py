"""The README and the pages under docs/ describe the repository as it is: the files they cite exist, their links
land, the README stays an entry point that links every page, and docs/architecture.md's project layout names every
module and every top-level entry, each where it is."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
# Every Markdown page a reader reaches from the README; their links must land too.
LINKED = [*PAGES, ROOT / "bench" / "README.md", ROOT / "infra" / "README.md"]
LAYOUT = ROOT / "docs" / "architecture.md"
TESTING = ROOT / "docs" / "testing.md"
README_MAX_WORDS = 1500  # what a user needs first; the rest belongs in docs/ (issue 23)


def _layout() -> str:
    section = LAYOUT.read_text().split("## Project layout", 1)[1]
    return section.split("```", 2)[1]


def _without_code(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.DOTALL)


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#{1,6} (.+)$", _without_code(page.read_text()), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_the_pages_exist() -> None:
    names = {page.name for page in DOCS}
    assert {"clients.md", "configuration.md", "operations.md", "architecture.md", "testing.md"} <= names


def test_every_file_the_pages_cite_is_in_the_repository() -> None:
    cited = set()
    for page in PAGES:
        cited |= set(re.findall(r"`([\w.-]+(?:/[\w.-]+)+\.\w+)`", page.read_text()))
    assert "infra/main.bicep" in cited and "core/models/families.py" in cited
    assert sorted(path for path in cited if not (ROOT / path).is_file()) == []


def test_every_link_lands() -> None:
    broken = []
    for page in LINKED:
        for target in re.findall(r"\]\(([^)\s]+)\)", _without_code(page.read_text())):
            if re.match(r"https?:|mailto:", target):
                continue
            path, _, anchor = target.partition("#")
            destination = (page.parent / path).resolve() if path else page
            if not destination.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and destination.suffix == ".md" and anchor not in _anchors(destination):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_the_readme_is_an_entry_point_to_every_page() -> None:
    text = README.read_text()
    words = len(text.split())
    assert words <= README_MAX_WORDS, f"README.md has {words} words: move the detail to a page under docs/"
    assert sorted(page.name for page in DOCS if f"](docs/{page.name})" not in text) == [], "link every page"
    assert "make run" in text and "make test" in text and "curl" in text and "from openai import OpenAI" in text


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
    cited = re.findall(r"\b((?:core|azure_sim|tests|bench|config|infra|docs)/[\w./]*)", layout)
    assert all((ROOT / path).exists() for path in cited)


def test_the_request_path_names_modules_that_exist() -> None:
    section = LAYOUT.read_text().split("## One request's path", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"\b((?:core|azure_sim)/[\w/]+\.py)\b", section)) | {"function_app.py"}
    assert len(named) > 15 and "core/exchange.py" in named
    assert sorted(path for path in named if not (ROOT / path).is_file()) == []
    bare = set(re.findall(r"[<(, ]([a-z_]+\.py)\b", section)) - {Path(path).name for path in named}
    assert sorted(name for name in bare if not list(ROOT.joinpath("core").rglob(name))) == []


def test_the_testing_page_documents_every_simulator_directive() -> None:
    from azure_sim import FAIL_MODES

    section = TESTING.read_text().split("## The local upstream", 1)[1].split("\n## ", 1)[0]
    headers = set(re.findall(r'"(x-sim-[a-z-]+)"', (ROOT / "azure_sim" / "behaviour.py").read_text()))
    assert len(headers) > 5
    assert sorted(h for h in headers if f"`{h}" not in section) == []
    assert sorted(mode for mode in FAIL_MODES if f"`{mode}`" not in section) == []
    assert "curl" in section and "forwardHeaders" in section


def test_a_librechat_file_is_said_to_need_a_gateway_section() -> None:
    """Issue 23: "a real librechat.yaml loads unchanged" was true only with a `gateway:` section; without one the
    gateway refuses to start (an open relay), and every page that says it loads unchanged must say so."""
    for page in PAGES:
        for paragraph in page.read_text().split("\n\n"):
            if "loads unchanged" in paragraph:
                assert "`gateway:`" in paragraph and "refuses to start" in paragraph, page.relative_to(ROOT)


def test_the_functions_host_setup_says_what_its_storage_setting_needs() -> None:
    example = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    section = TESTING.read_text().split("## With the Functions host", 1)[1].split("\n## ", 1)[0]
    assert "cp local.settings.json.example local.settings.json" in section and "func start" in section
    if example.get("AzureWebJobsStorage") == "UseDevelopmentStorage=true":
        assert "Azurite" in section and "azurite" in section, "UseDevelopmentStorage=true needs Azurite running"
    for name in example:
        assert f"`{name}" in section, f"say what local.settings.json.example's {name} is for"


def test_the_quoted_refusal_is_what_check_prints(tmp_path: Path) -> None:
    """The pages quote `python -m core check` on a librechat.yaml without `gateway:`: the quote must stay the output."""
    librechat = tmp_path / "librechat.yaml"
    librechat.write_text(
        "version: 1.2.1\nendpoints:\n  azureOpenAI:\n    titleModel: gpt-4o-mini\n    groups:\n"
        "      - group: westus\n        apiKey: ${WESTUS_API_KEY}\n        instanceName: my-resource-westus\n"
        '        version: "2024-10-21"\n        deploymentName: gpt-4o\n        models: {gpt-4o: true}\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "core", "check", str(librechat)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "WESTUS_API_KEY": "x"},
    )
    assert result.returncode == 1 and "open relay" in result.stdout
    for page in (README, ROOT / "docs" / "configuration.md"):
        assert f"```\n{result.stdout}```" in page.read_text(), f"{page.relative_to(ROOT)} quotes another message"
