"""Fault and hostile-input tests: every probe runs the real command line in a subprocess under a hard time limit
(and, where a file could blow up memory, an address-space limit), and asserts one line on stderr, no traceback,
exit status 2 and nothing written."""
from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Probe:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        """Lines of stderr but warnings and the progress display (``coding ...``)."""
        return [ln for ln in self.err.splitlines() if ln.strip() and not ln.startswith(("warning:", "coding"))]


def cli(*args: object, cwd: Path | None = None, timeout: float = 60.0, memory_mb: int | None = None,
        env: dict[str, str] | None = None) -> Probe:
    """Run ``python -m assistcode ARGS`` in a subprocess; a probe that runs past ``timeout`` seconds fails the test
    (the process is killed), and one that needs more than ``memory_mb`` of address space dies of MemoryError."""

    def limit() -> None:  # runs in the child, before exec
        if memory_mb is not None:
            cap = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    full_env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", **(env or {})}
    try:
        done = subprocess.run([sys.executable, "-m", "assistcode", *map(str, args)], cwd=cwd, capture_output=True,
                              text=True, timeout=timeout, preexec_fn=limit, env=full_env)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"`assistcode {' '.join(map(str, args))}` ran past its hard limit of {timeout:g} s") from exc
    return Probe(done.returncode, done.stdout, done.stderr)


def assert_refused(p: Probe, *needles: str, code: int = 2) -> str:
    """Exit status ``code``, no traceback, exactly one error line (warnings aside) that holds every needle."""
    assert "Traceback" not in p.err, p.err[-3000:]
    assert p.code == code, (p.code, p.err[-2000:])
    assert len(p.lines) == 1, p.err
    line = p.lines[0]
    assert line.startswith("assistcode: error: "), line
    for n in needles:
        assert n in line, (n, line)
    return line


def tree_digest(folder: Path) -> str:
    """A digest of every file's path and bytes under ``folder``: equal before and after means nothing was written."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def db_dump(project_dir: Path) -> str:
    """Every row of a project's store, as SQL text (read-only): equal before and after means nothing was stored."""
    import sqlite3

    con = sqlite3.connect(f"file:{project_dir / 'assistcode.db'}?mode=ro", uri=True)
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()
