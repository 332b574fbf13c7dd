"""Hostile files through the real command line (issue 13, items 1, 5 and 11): sources a .qdpx names outside its
archive, YAML bombs and deep nesting in every YAML assistcode reads, damaged archive members, broken tables, and a
coder-name clash after importing assistcode's own export. Each probe: one line, exit status 2, nothing written, no
traceback, inside a hard time limit (and an address-space limit where a file could blow up memory)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistcode.project import Project

from . import assert_refused, cli, db_dump, hostile

MEMORY_MB = 1536  # the YAML bomb took 3 GB before the fix; the CLI itself needs a few hundred MB


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    Project.init(tmp_path / "proj").close()
    return tmp_path / "proj"


# ---- YAML: every file the tool reads -------------------------------------------------------------------------------

def _yaml_probe(kind: str, text: str, tmp_path: Path, proj: Path):  # noqa: ANN202
    """Write ``text`` where a ``kind`` of YAML is read, run the command that reads it."""
    if kind == "codebook validate":
        (tmp_path / "cb.yaml").write_text(text)
        return cli("codebook", "validate", tmp_path / "cb.yaml", timeout=60, memory_mb=MEMORY_MB)
    if kind == "codebook import":
        (tmp_path / "cb.yaml").write_text(text)
        return cli("codebook", "import", tmp_path / "cb.yaml", "--project", proj, timeout=60, memory_mb=MEMORY_MB)
    if kind == "template":
        (proj / "prompts").mkdir(exist_ok=True)
        (proj / "prompts" / "bomb.yaml").write_text(text)
        return cli("prompts", "list", "--project", proj, timeout=60, memory_mb=MEMORY_MB)
    if kind == "suite":
        (tmp_path / "suite.yaml").write_text(text)
        return cli("suite", "run", tmp_path / "suite.yaml", cwd=tmp_path, timeout=60, memory_mb=MEMORY_MB)
    if kind == "gold standard":
        (tmp_path / "gold").mkdir(exist_ok=True)
        (tmp_path / "gold" / "gold.yaml").write_text(text)
        (tmp_path / "suite.yaml").write_text("name: s\ngold: {standard: gold}\ngrid: {template: [deductive], "
                                             "model: [{provider: mock, model: m}]}\n")
        return cli("suite", "run", tmp_path / "suite.yaml", cwd=tmp_path, timeout=60, memory_mb=MEMORY_MB)
    raise ValueError(kind)


KINDS = ["codebook validate", "codebook import", "template", "suite", "gold standard"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_yaml_bomb_is_refused_in_seconds_and_bounded_memory(kind: str, tmp_path: Path, proj: Path) -> None:
    before = db_dump(proj)
    line = assert_refused(_yaml_probe(kind, hostile.yaml_bomb(), tmp_path, proj), "YAML bomb")
    assert db_dump(proj) == before, line
    assert not (tmp_path / ".assistcode").exists()  # a suite's project is not even created


@pytest.mark.parametrize("kind", KINDS)
def test_deeply_nested_yaml_is_refused(kind: str, tmp_path: Path, proj: Path) -> None:
    before = db_dump(proj)
    assert_refused(_yaml_probe(kind, hostile.deep_yaml(), tmp_path, proj), "levels deep", ":1:")
    assert db_dump(proj) == before
    assert not (tmp_path / ".assistcode").exists()


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cb.yaml").write_text(hostile.recursive_yaml())
    assert_refused(cli("codebook", "validate", tmp_path / "cb.yaml", timeout=60, memory_mb=MEMORY_MB),
                   "recursive alias")


def test_ordinary_anchors_still_work(tmp_path: Path) -> None:
    """The bound is on expansion, not on aliases: a codebook that reuses a definition through an alias loads."""
    (tmp_path / "cb.yaml").write_text("codes:\n  - {id: a, name: A, definition: &d Shared words.}\n"
                                      "  - {id: b, name: B, definition: *d}\n")
    p = cli("codebook", "validate", tmp_path / "cb.yaml", timeout=60)
    assert p.code == 0, p.err


# ---- .qdpx: which sources may be read ------------------------------------------------------------------------------

@pytest.fixture
def drop(tmp_path: Path) -> Path:
    """The folder a .qdpx was saved to, holding things that are not transcripts (and one that is)."""
    d = tmp_path / "drop"
    (d / ".ssh").mkdir(parents=True)
    (d / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (d / ".env").write_text("OPENAI_API_KEY=sk-secret\n")
    (d / ".ssh" / "notes.txt").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (d / ".notes.txt").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (d / "sub" / ".hidden").mkdir(parents=True)
    (d / "sub" / ".hidden" / "notes.txt").write_text("private notes")
    (d / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (d / "assistcode.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    (d / "folder.txt").mkdir()
    (tmp_path / "outside.txt").write_text("a file outside the sources folder")
    os.symlink(tmp_path / "outside.txt", d / "link.txt")
    os.symlink(d / ".ssh" / "id_rsa", d / "key.txt")
    os.mkfifo(d / "pipe.txt")
    (d / "sub" / "interview.txt").write_text("c is a transcript in a subfolder")
    return d


HOSTILE_REFS = ["file://.ssh/id_rsa", ".ssh/id_rsa", "file://.env", "sub/.hidden/notes.txt", "file://id_rsa",
                "file://.ssh/notes.txt", ".notes.txt", "file://sub/../.notes.txt",
                "assistcode.db", "folder.txt", "link.txt", "key.txt", "pipe.txt", "../outside.txt",
                "file://sub/../../outside.txt", "file:///etc/passwd", "file://%2Essh/id_rsa"]


@pytest.mark.parametrize("ref", HOSTILE_REFS)
def test_a_source_outside_the_archive_that_is_not_a_transcript_is_refused(ref: str, drop: Path, proj: Path) -> None:
    archive = hostile.qdpx_external(drop / "p.qdpx", ref)
    before = db_dump(proj)
    p = cli("import", archive, "--project", proj, timeout=60)
    assert_refused(p, "source 's'", "external source")
    assert db_dump(proj) == before
    assert "PRIVATE KEY" not in p.out + p.err


def test_a_docx_source_outside_the_archive_must_be_a_docx(drop: Path, proj: Path) -> None:
    (drop / ".ssh" / "key.docx").write_bytes(b"PK")
    archive = hostile.qdpx_external(drop / "p.qdpx", "file://.ssh/key.docx", rich=True)
    assert_refused(cli("import", archive, "--project", proj, timeout=60), "source 's'", "hidden")


def test_a_text_file_under_the_sources_folder_is_read(drop: Path, proj: Path, tmp_path: Path) -> None:
    """The positive control: a transcript in a subfolder is read, and --sources moves the folder."""
    p = cli("import", hostile.qdpx_external(drop / "p.qdpx", "file://sub/interview.txt"), "--project", proj, timeout=60)
    assert p.code == 0, p.err
    elsewhere = hostile.qdpx_external(tmp_path / "mail" / "p.qdpx", "sub/interview.txt")
    assert_refused(cli("import", elsewhere, "--project", proj, timeout=60), "not found")
    p = cli("import", elsewhere, "--sources", drop, "--project", proj, timeout=60)
    assert p.code == 0, p.err
    (drop / "manager.txt").write_text("c is the manager's transcript")  # another machine's absolute path: by name
    for ref in ("file:///C:/Users/ann/manager.txt", "C:\\Users\\ann\\manager.txt"):
        p = cli("import", hostile.qdpx_external(drop / "w.qdpx", ref), "--project", proj, timeout=60)
        assert p.code == 0 and "looked for as manager.txt" in p.err, p.err


# ---- .qdpx: damaged members ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,needle", [("crc", "damaged"), ("deflate", "damaged"), ("cut", "not a REFI-QDA archive")])
def test_a_damaged_archive_is_refused_in_one_line(kind: str, needle: str, tmp_path: Path, proj: Path) -> None:
    archive = hostile.qdpx_damaged(tmp_path / f"{kind}.qdpx", kind)
    before = db_dump(proj)
    assert_refused(cli("import", archive, "--project", proj, timeout=60), needle)
    assert db_dump(proj) == before


def test_a_damaged_word_file_is_refused_in_one_line(tmp_path: Path, proj: Path) -> None:
    from tests.test_readers import make_docx

    make_docx(tmp_path / "good.docx", ["Interviewer: how is it led? " * 40, "Nurse: by the matron. " * 40])
    bad = hostile.damaged_docx(tmp_path / "bad.docx", tmp_path / "good.docx")
    before = db_dump(proj)
    assert_refused(cli("import", bad, "--project", proj, timeout=60), "bad.docx", "not a readable .docx")
    inside = hostile.qdpx(tmp_path / "d.qdpx", {"project.qde": hostile.qde('richTextPath="internal://i.docx"'),
                                                "sources/i.docx": bad.read_bytes()})
    assert_refused(cli("import", inside, "--project", proj, timeout=60), "source 's'", "not a readable .docx")
    assert db_dump(proj) == before


# ---- tables ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make,name,needle", [
    (hostile.ragged_csv, "ragged.csv", "ragged.csv:4:"),
    (lambda p: hostile.ragged_csv(p, "\t"), "ragged.tsv", "ragged.tsv:4:"),
    (hostile.unterminated_quote_csv, "quote.csv", "quote.csv:3:"),
    (hostile.bad_jsonl, "bad.jsonl", "bad.jsonl:3:"),
    (hostile.jsonl_of_non_objects, "arrays.jsonl", "arrays.jsonl:1:"),
    (hostile.broken_parquet, "broken.parquet", "broken.parquet"),
])
def test_a_broken_table_is_refused_with_file_and_line(make, name: str, needle: str, tmp_path: Path,  # noqa: ANN001
                                                      proj: Path) -> None:
    path = make(tmp_path / name)
    before = db_dump(proj)
    assert_refused(cli("import", path, "--project", proj, timeout=120), needle)
    assert db_dump(proj) == before


@pytest.mark.parametrize("make,name,needle", [
    (hostile.ragged_codes_csv, "ragged.csv", "ragged.csv:3:"),
    (hostile.unterminated_codes_csv, "quote.csv", "quote.csv:3:"),
    (hostile.bad_jsonl, "bad.jsonl", "bad.jsonl:3:"),
    (hostile.jsonl_of_non_objects, "arrays.jsonl", "arrays.jsonl:1:"),
    (hostile.broken_parquet, "broken.parquet", "broken.parquet"),
])
def test_a_broken_file_of_human_codes_is_refused_with_file_and_line(make, name: str, needle: str,  # noqa: ANN001
                                                                    tmp_path: Path, proj: Path) -> None:
    path = make(tmp_path / name)
    before = db_dump(proj)
    assert_refused(cli("import-gold", path, "--project", proj, timeout=120), needle)
    assert db_dump(proj) == before


# ---- a coder-name clash ----------------------------------------------------------------------------------------------

def test_coding_after_importing_an_export_with_the_same_model_works(tmp_path: Path, proj: Path) -> None:
    """A .qdpx assistcode exported names its run's coder run1:MODEL:TEMPLATE@V; importing it into a fresh project
    and coding there with the same model must not collide with that name, now or on later attempts."""
    (tmp_path / "cb.yaml").write_text("codes:\n  - {id: c, name: c}\n")
    a = tmp_path / "a"
    assert cli("init", a).code == 0
    (tmp_path / "t.txt").write_text("I: c is here.\nR: and c again, with c.\n")
    for args in (("import", tmp_path / "t.txt"), ("codebook", "import", tmp_path / "cb.yaml"),
                 ("code", "--provider", "mock", "--model", "fake"),
                 ("export", "qdpx", "--output", tmp_path / "a.qdpx")):
        p = cli(*args, "--project", a, timeout=120)
        assert p.code == 0, (args, p.err)
    p = cli("import", tmp_path / "a.qdpx", "--project", proj, timeout=120)
    assert p.code == 0, p.err
    for _ in range(2):  # the second attempt resumes or reports; neither may collide
        p = cli("code", "--provider", "mock", "--model", "fake", "--project", proj, timeout=120)
        assert "Traceback" not in p.err and "UNIQUE" not in p.err, p.err
        assert p.code == 0, p.err
