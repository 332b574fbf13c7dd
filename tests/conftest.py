from __future__ import annotations

import json
from pathlib import Path

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
