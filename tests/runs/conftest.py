import pytest

from assistcode.project import Project
from assistcode.testing import FakeOpenAIServer, Plan

CODEBOOK = """name: Test codebook
codes:
  - id: safety
    name: Patient safety
    definition: Talk about keeping patients safe.
  - id: leadership
    name: Leadership
    definition: Who leads, and how.
  - id: workload
    name: Workload
    definition: Too much to do.
"""


def make_project(tmp_path, n_docs=4, turns=6) -> Project:
    """Transcripts whose turns mention code ids, so the keyword coder has something to find."""
    folder = tmp_path / "t"
    folder.mkdir()
    words = ["safety first", "leadership matters", "the workload is heavy", "nothing to add", "safety and leadership"]
    for d in range(n_docs):
        lines = [f"{'I' if t % 2 == 0 else 'R'}: turn {t} of interview {d}: {words[(d + t) % len(words)]}." for t in range(turns)]
        (folder / f"i{d}.txt").write_text("\n".join(lines))
    (tmp_path / "cb.yaml").write_text(CODEBOOK)
    project = Project.init(tmp_path / "proj")
    project.import_corpus([folder])
    # a plain corpus: every turn coded, no context (the interview defaults, skipping the interviewer's turns with one
    # turn of context, are tested in tests/test_transcripts.py)
    with project.db:
        project.db.execute("UPDATE segments SET role = NULL")
    project.import_codebook(tmp_path / "cb.yaml")
    return project


@pytest.fixture
def coded_project(tmp_path):
    p = make_project(tmp_path)
    yield p
    p.close()


@pytest.fixture
def server():
    with FakeOpenAIServer(Plan()) as s:
        yield s
