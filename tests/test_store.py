import sqlite3

import pytest

from assistcode.errors import InputError
from assistcode.store import MIGRATIONS, connect, migrate, schema


def test_migrations_produce_the_schema(tmp_path):
    db = connect(tmp_path / "a.db")
    tables = schema(db)
    assert tables["segments"] == ["id", "document_id", "position", "start", "end", "speaker", "text", "start_time", "role"]
    assert tables["annotations"] == ["id", "segment_id", "coder", "code", "confidence", "rationale", "evidence",
                                     "evidence_start", "evidence_end", "import_id", "run_id", "evidence_found"]
    assert tables["seen"] == ["segment_id", "coder", "import_id"]
    assert tables["documents"][-2:] == ["first_segment", "segment_count"]
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "segments_document" not in indexes and "annotations_coder" in indexes
    assert [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY rowid")] == [n for n, _ in MIGRATIONS]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert migrate(db) == []  # idempotent


def test_migration_names_are_unique_and_append_only():
    names = [n for n, _ in MIGRATIONS]
    assert len(set(names)) == len(names) and names == sorted(names)


def test_import_is_atomic(project, tmp_path):
    (tmp_path / "a.txt").write_text("I: fine\nR: yes")
    (tmp_path / "b.txt").write_bytes(b"\x00\x01")
    with pytest.raises(InputError, match="b.txt: binary"):
        project.import_corpus([tmp_path / "a.txt", tmp_path / "b.txt"])
    assert project.counts()["documents"] == 0 and project.counts()["segments"] == 0
    report = project.import_corpus([tmp_path / "a.txt", tmp_path / "b.txt"], skip_bad=True)
    assert report.documents_added == 1 and report.segments_added == 2 and len(report.bad_files) == 1
    again = project.import_corpus([tmp_path / "a.txt"])
    assert again.documents_added == 0 and again.documents_present == 1
    assert project.counts()["segments"] == 2


def test_codebook_versions(project, tmp_path):
    (tmp_path / "v1.yaml").write_text("codes:\n  - id: a\n")
    (tmp_path / "v2.yaml").write_text("codes:\n  - id: a\n    definition: sharper\n")
    v1, new1 = project.import_codebook(tmp_path / "v1.yaml")
    v2, new2 = project.import_codebook(tmp_path / "v2.yaml")
    assert new1 and new2 and project.codebook().hash == v2.hash
    _, new = project.import_codebook(tmp_path / "v1.yaml")
    assert not new and project.codebook().hash == v1.hash
    assert [v["current"] for v in project.codebook_versions()] == [True, False]
    assert project.codebook(v2.hash[:8]).by_id["a"].definition == "sharper"


def test_003_fills_segment_ranges_of_existing_documents(tmp_path):
    from assistcode.store.db import split_statements

    db = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, sql in MIGRATIONS[:2]:
        for statement in split_statements(sql):
            db.execute(statement)
        db.execute("INSERT INTO _migrations VALUES (?, 'then')", (name,))
    db.execute("INSERT INTO documents (id, title, text, text_hash, encoding, segmenter) VALUES ('d1', 't', 'ab', 'h', 'utf-8', 'turn')")
    db.executemany('INSERT INTO segments VALUES (?, ?, ?, ?, ?, NULL, ?)', [("s1", "d1", 0, 0, 1, "a"), ("s2", "d1", 1, 1, 2, "b")])
    assert migrate(db)[0] == "003_segments_clustered_by_document"
    assert db.execute("SELECT first_segment, segment_count FROM documents").fetchone() == (1, 2)


def test_segments_of_a_document_come_back_in_order(project, tmp_path):
    (tmp_path / "a.txt").write_text("I: one\nR: two\nI: three")
    (tmp_path / "b.txt").write_text("I: four\nR: five")
    project.import_corpus([tmp_path / "a.txt", tmp_path / "b.txt"])
    docs = [r[0] for r in project.db.execute("SELECT id FROM documents ORDER BY rowid")]
    assert [s.text for s in project.segments([docs[1]])] == ["four", "five"]
    assert [s.text for s in project.segments()] == ["one", "two", "three", "four", "five"]
    assert [s.position for s in project.segments([docs[0]])] == [0, 1, 2]
