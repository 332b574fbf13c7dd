from __future__ import annotations

from pathlib import Path

import pytest

from assistcode.project import Project
from assistcode.runs import store as rs
from assistcode.runs.replies import Proposal

from ..conftest import seed_project


def suggest(project: Project, name: str = "model", every: int = 3) -> str:
    """A run over the seed with known suggestions: segment i gets 'every-level' (confidence i/20) unless
    i % every == 0, which gets nothing; segment 7 fails."""
    manifest = {"provider": {"provider": "test", "model": name}, "template": {"name": "deductive", "version": 1}}
    run = rs.create_run(project.db, name, f"fp-{name}", manifest)
    for i, seg in enumerate(project.segments()):
        if i == 7:
            rs.record_segment(project.db, run, seg.id, status="failed", reason="timeout")
            continue
        props = [] if i % every == 0 else [Proposal("every-level", f"reason {i}", evidence=seg.text[:12],
                                                     evidence_start=seg.start, evidence_end=seg.start + 12,
                                                     confidence=i / 20)]
        rs.record_segment(project.db, run, seg.id, status="ok", proposals=props)
    rs.update_run(project.db, run.id, "finished", manifest, True)
    return run.coder


@pytest.fixture
def queued(tmp_path: Path) -> Project:
    """The seed project with one suggesting run, queued (no audit draw, single review)."""
    from assistcode import review

    p = Project(seed_project(tmp_path / "proj"))
    coder = suggest(p)
    review.enqueue(p.db, coder, audit=0.0)
    yield p
    p.close()
