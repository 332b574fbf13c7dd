"""Importing a coder's human codes again (issue 13 item 12): a file replaces that coder's codes on the units it
names with ``--replace`` and reports what changed; without it, a file that would change codes already stored is
refused in one line (exit 2, nothing written); an identical file changes nothing. Never a silent merge."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.runs.conftest import make_project


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, list[str]]:
    project = make_project(tmp_path)
    segs = [s.id for s in project.segments()]
    project.close()
    return tmp_path / "proj", segs


def write(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("segment_id,coder,code\n" + "".join(f"{s},{c},{k}\n" for s, c, k in rows))
    return path


def codes(proj: Path) -> set[tuple[str, str, str]]:
    db = sqlite3.connect(proj / "assistcode.db")
    try:
        return set(db.execute("SELECT segment_id, coder, code FROM annotations"))
    finally:
        db.close()


def seen(proj: Path) -> set[tuple[str, str]]:
    db = sqlite3.connect(proj / "assistcode.db")
    try:
        return set(db.execute("SELECT segment_id, coder FROM seen"))
    finally:
        db.close()


def test_a_corrected_file_is_refused_without_replace_and_replaces_with_it(setup, tmp_path, run):
    proj, segs = setup
    a, b, c = segs[:3]
    first = write(tmp_path / "v1.csv", [(a, "ann", "safety"), (a, "ann", "workload"), (b, "ann", "leadership"),
                                         (c, "ann", "workload"), (a, "bob", "safety"), (b, "bob", "")])
    r = run("import-gold", first, "--project", proj)
    assert r.code == 0, r.err
    before = codes(proj)

    # ann corrects a (drops workload) and b (leadership -> safety), adds a unit seen with no code; c is not named
    fixed = write(tmp_path / "v2.csv", [(a, "ann", "safety"), (b, "ann", "safety"), (segs[6], "ann", "")])
    r = run("import-gold", fixed, "--project", proj)
    assert r.code == 2, (r.out, r.err)
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "ann" in lines[0] and "--replace" in lines[0] and "2 segments" in lines[0], r.err
    assert codes(proj) == before  # nothing written

    r = run("import-gold", fixed, "--replace", "--project", proj)
    assert r.code == 0, r.err
    assert "Replaced" in r.out and "ann" in r.out and "2 segments" in r.out
    assert "1 code added" in r.out and "2 codes removed" in r.out
    after = codes(proj)
    assert {(s, k) for s, coder, k in after if coder == "ann"} == {(a, "safety"), (b, "safety"), (c, "workload")}
    assert {x for x in after if x[1] == "bob"} == {x for x in before if x[1] == "bob"}  # another coder: untouched
    assert {(c, "ann"), (segs[6], "ann")} <= seen(proj)  # a unit the file does not name keeps what it had


def test_an_identical_file_changes_nothing_and_a_new_unit_is_added(setup, tmp_path, run):
    proj, segs = setup
    a, b = segs[:2]
    rows = [(a, "ann", "safety"), (b, "ann", "")]
    f = write(tmp_path / "g.csv", rows)
    assert run("import-gold", f, "--project", proj).code == 0
    before, seen_before = codes(proj), seen(proj)
    r = run("import-gold", f, "--project", proj)
    assert r.code == 0, r.err
    assert codes(proj) == before and seen(proj) == seen_before
    assert "unchanged" in r.out
    # a unit the coder had not coded yet is new, not a change: no --replace needed
    more = write(tmp_path / "more.csv", [*rows, (segs[2], "ann", "workload")])
    r = run("import-gold", more, "--project", proj)
    assert r.code == 0, r.err
    assert (segs[2], "ann", "workload") in codes(proj)


def test_replace_through_the_api_reports_each_change(setup, tmp_path):
    from assistcode.gold import read_gold
    from assistcode.project import Project

    proj, segs = setup
    a = segs[0]
    with Project(proj) as project:
        project.import_gold(read_gold(write(tmp_path / "1.csv", [(a, "ann", "safety")])))
        with pytest.raises(Exception) as refused:
            project.import_gold(read_gold(write(tmp_path / "2.csv", [(a, "ann", "leadership")])))
        assert getattr(refused.value, "exit_code", None) == 2
        report = project.import_gold(read_gold(tmp_path / "2.csv"), replace=True)
    assert report.replaced == {"ann": 1}
    assert (report.codes_added, report.codes_removed) == (1, 1)
    assert {(s, k) for s, c, k in codes(proj) if c == "ann"} == {(a, "leadership")}
