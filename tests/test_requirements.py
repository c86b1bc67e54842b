"""Reproducible deploys: the Function App installs requirements.txt, every package pinned, compiled
(`make lock`) from the direct dependencies in requirements.in for the Python version infra/ deploys."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def test_every_deployed_package_is_pinned() -> None:
    locked = _requirements(ROOT / "requirements.txt")
    assert locked
    loose = [str(r) for r in locked if not re.fullmatch(r"==[^,*]+", str(r.specifier)) or r.marker]
    assert loose == [], "requirements.txt pins exact versions only: run `make lock`"


def test_the_lock_satisfies_every_direct_dependency() -> None:
    pinned = {
        canonicalize_name(r.name): next(iter(r.specifier)).version for r in _requirements(ROOT / "requirements.txt")
    }
    for direct in _requirements(ROOT / "requirements.in"):
        name = canonicalize_name(direct.name)
        assert name in pinned, f"{direct.name} is in requirements.in but not locked: run `make lock`"
        assert direct.specifier.contains(pinned[name], prereleases=True), f"{direct} but locked {pinned[name]}"


def test_the_lock_is_for_the_python_the_function_app_runs() -> None:
    deployed = re.search(r"param pythonVersion string = '([\d.]+)'", (ROOT / "infra" / "main.bicep").read_text())
    locked_for = re.search(r"^LOCK_PYTHON := ([\d.]+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert deployed and locked_for and locked_for.group(1) == deployed.group(1)
    assert "--python-platform linux" in (ROOT / "Makefile").read_text()  # Flex Consumption runs Linux


def test_development_installs_the_same_pins() -> None:
    assert "-r requirements.txt" in (ROOT / "requirements-run.txt").read_text().splitlines()
    assert "-r requirements-run.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()


def test_make_run_installs_what_running_needs_and_no_test_tool(tmp_path) -> None:
    """On a fresh machine `make run` installs requirements-run.txt (the app and the local host), not the test,
    lint and benchmark tools `make test` adds (hundreds of MB: ruff, mypy, mutmut, litellm...)."""
    import subprocess

    planned = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert "pip install -q -r requirements-run.txt" in planned
    assert "requirements-dev.txt" not in planned
    lines = (line.split("#", 1)[0].strip() for line in (ROOT / "requirements-run.txt").read_text().splitlines())
    run_only = {canonicalize_name(Requirement(line).name) for line in lines if line and not line.startswith("-r")}
    assert run_only == {"uvicorn", "uvloop", "httptools"}  # the local host (core/serve.py) and its fast loop
