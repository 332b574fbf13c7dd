from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from types import ModuleType

import pytest

from assistcode.cli import main
from assistcode.project import Project

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self):  # noqa: ANN201
        return json.loads(self.out)


@pytest.fixture
def run(capsys, monkeypatch):
    """Run the CLI in-process: ``run("init", "dir")`` -> CliResult(code, stdout, stderr)."""

    def _run(*args: str, cwd: Path | None = None) -> CliResult:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return _run


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.init(tmp_path / "proj")
    yield p
    p.close()


def in_ci() -> bool:
    """``CI=true`` (or 1/yes): every test dependency must be present, and a missing one fails the run."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def need(module: str, why: str = "") -> ModuleType:
    """Import a test dependency, inside the test (or fixture) that needs it: skip only that test where the module is
    missing or fails to import locally, but fail under ``CI=true``, so a broken install never turns into skips."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a module that breaks while importing
        unavailable(f"test dependency {module} is not usable ({type(exc).__name__}: {exc})" + (f"; {why}" if why else ""))
        raise  # unreachable: unavailable() always raises


def unavailable(message: str) -> None:
    """Something a test needs is missing (a module, a model file that fails to load): skip that test locally,
    fail it under ``CI=true``."""
    if in_ci():
        pytest.fail(message + " (CI=true: a missing test dependency fails the run; install the test extras)",
                    pytrace=False)
    pytest.skip(message, allow_module_level=True)


def needs_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not present")
    return path


def seed_project(path: Path) -> Path:
    """A project holding the shipped seed gold standard (what `assistcode demo` imports first)."""
    from assistcode import gold_standards

    with Project.init(path) as p:
        gold_standards.load_into(p, "leadership-quality-safety")
    return path
