"""docs/configuration.md's key reference is the schema's: generated from it, complete, and never edited apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.config import reference
from core.config.schema import json_schema

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "configuration.md"
# Other shapes of the same file: the azureOpenAI section alone, or its groups alone; their keys are the tables'.
ALTERNATE_SHAPES = {"SectionFile", "GroupsFile"}


def test_the_page_holds_the_reference_the_schema_generates() -> None:
    page = PAGE.read_text()
    assert page.count(reference.BEGIN) == 1 and page.count(reference.END) == 1
    generated = reference.markdown(json_schema())
    assert reference.replaced(page, generated) == page, "the schema changed: run `make schema` and commit the page"


def test_the_reference_names_every_key_of_every_object() -> None:
    schema = json_schema()
    tables = [
        {row.split("`")[1] for row in table.splitlines() if row.startswith("| `")}
        for table in reference.markdown(schema).split("\n### ")
    ]
    missing = []
    for name, definition in schema["$defs"].items():
        if name in ALTERNATE_SHAPES:
            continue
        keys = set(definition.get("properties", {}))
        # The definition's table is the one listing all its keys (rows are "| `key` | ...").
        if not any(keys <= listed for listed in tables):
            missing.append(name)
    assert missing == []
    for name in ALTERNATE_SHAPES:
        keys = set(schema["$defs"][name]["properties"])
        covered = set(schema["$defs"]["AzureOpenAISection"]["properties"]) | {"azureOpenAI", "gateway"}
        assert keys <= covered, f"{name} has keys no table lists: {keys - covered}"


def test_make_schema_writes_the_page_and_the_cli_prints_the_same(tmp_path: Path) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "core", "schema", "--markdown"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert printed == reference.markdown(json_schema())
    page = tmp_path / "page.md"
    page.write_text(f"# Title\n\n{reference.BEGIN}\nstale\n{reference.END}\nafter\n")
    subprocess.run([sys.executable, "-m", "core", "schema", "--doc", str(page)], cwd=ROOT, check=True)
    assert page.read_text() == f"# Title\n\n{reference.BEGIN}\n\n{printed}\n{reference.END}\nafter\n"
    recipe = (ROOT / "Makefile").read_text().split("\nschema: install\n", 1)[1].split("\n\n", 1)[0]
    assert "core schema --doc docs/configuration.md" in recipe
