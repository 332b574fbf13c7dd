"""REFI-QDA: round trip, schema validity of everything written, a realistic NVivo-style project, and hostile archives."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from assistcode.errors import InputError
from assistcode.project import Project
from assistcode.refi import Limits, export_qdpx, import_qdpx, problems, read_qdc, write_qdc
from assistcode.refi.qdpx import project_xml

from ..conftest import seed_project
from ..review.conftest import suggest
from .fixtures import INTERVIEW_2, archive, minimal, nvivo_project

SOURCE = b"Plain text of the source."


def snapshot(p: Project) -> dict:
    def rows(sql: str) -> list[tuple]:
        return sorted(tuple(r) for r in p.db.execute(sql))

    return {
        "documents": rows("SELECT id, title, text FROM documents"),
        "segments": rows('SELECT id, document_id, start, "end", text FROM segments'),
        "annotations": rows("SELECT segment_id, coder, code FROM annotations"),
        "seen": rows("SELECT segment_id, coder FROM seen"),
        "coders": rows("SELECT name, kind FROM coders"),
        "codes": [c.as_dict() for c in p.codebook().codes],
    }


def test_round_trip_of_the_gold_standard(tmp_path: Path, run) -> None:
    src = seed_project(tmp_path / "a")
    assert run("export", "qdpx", "--output", tmp_path / "seed.qdpx", "--segments", "all", "--project", src).code == 0
    assert problems(project_xml(tmp_path / "seed.qdpx"), "project") == []
    run("init", tmp_path / "b")
    r = run("import", tmp_path / "seed.qdpx", "--project", tmp_path / "b")
    assert r.code == 0, r.err
    assert "15 documents" in r.out and "20 codings by McKee et al. 2013 (human)" in r.out
    with Project(src) as a, Project(tmp_path / "b") as b:
        sa, sb = snapshot(a), snapshot(b)
    for key in sa:
        assert sa[key] == sb[key], key
    again = run("import", tmp_path / "seed.qdpx", "--json", "--project", tmp_path / "b")  # idempotent
    assert again.code == 0 and json.loads(again.out)["documents_present"] == 15
    with Project(tmp_path / "b") as b:
        assert snapshot(b) == sb
    # exporting twice gives the same GUIDs (tools that merge by GUID see the same objects)
    export_again = tmp_path / "again.qdpx"
    with Project(src) as a:
        export_qdpx(a, export_again, segments="all")
    strip = lambda x: x.split(b"creationDateTime=")[0] + x.split(b"<Sources>")[1].split(b"<Description>")[0]  # noqa: E731
    assert strip(project_xml(export_again)) == strip(project_xml(tmp_path / "seed.qdpx"))


def test_model_runs_and_reviewers_export_as_users_with_notes(tmp_path: Path) -> None:
    from assistcode import review

    with Project(seed_project(tmp_path / "a")) as p:
        coder = suggest(p)
        review.enqueue(p.db, coder, audit=0.0)
        it = review.claim(p.db, "ann")
        review.decide(p.db, it, "ann", "edit", codes=["organisations"], codebook=p.codebook())
        out = export_qdpx(p, tmp_path / "x.qdpx")
        assert set(out.users) >= {coder, "reviewer:ann", "reviewed", "McKee et al. 2013"}
    xml = project_xml(tmp_path / "x.qdpx")
    assert problems(xml, "project") == []
    # a model coding's note is prose a reader of NVivo or ATLAS.ti can follow, not JSON
    assert f"Suggested by {coder} (model ".encode() in xml and b"Confidence: 0.05" in xml and b"Rationale: reason 1" in xml
    assert b'"confidence"' not in xml
    with Project.init(tmp_path / "b") as b:
        r = import_qdpx(b, tmp_path / "x.qdpx")
        assert r.coders[coder] == "model" and r.coders["McKee et al. 2013"] == "human"
        assert r.coders["reviewer:ann"] == r.coders["reviewed"] == "reviewer"
        row = b.db.execute("SELECT rationale, confidence FROM annotations WHERE coder = ? AND confidence IS NOT NULL "
                           "ORDER BY confidence LIMIT 1", (coder,)).fetchone()
        assert tuple(row) == ("reason 1", 0.05)


def test_codebook_qdc_out_and_in(tmp_path: Path, run) -> None:
    src = seed_project(tmp_path / "a")
    assert run("export", "qdc", "--output", tmp_path / "c.qdc", "--project", src).code == 0
    xml = (tmp_path / "c.qdc").read_bytes()
    assert problems(xml, "codebook") == []
    codebook, warnings = read_qdc(tmp_path / "c.qdc")
    with Project(src) as p:
        original = p.codebook()
    assert [c.name for c in codebook.codes] == [c.name for c in original.codes] and warnings == []
    assert codebook.codes[0].definition.startswith(original.codes[0].definition)
    run("init", tmp_path / "b")
    r = run("codebook", "import", tmp_path / "c.qdc", "--project", tmp_path / "b")
    assert r.code == 0, r.err


def test_qdc_keeps_hierarchy_and_colour(tmp_path: Path) -> None:
    from assistcode.model import Code, Codebook

    cb = Codebook("t", (Code("a", "Alpha", "A def", color="#112233"), Code("b", "Beta", parent="a"),
                        Code("c", "Gamma", parent="b")))
    write_qdc(cb, tmp_path / "t.qdc")
    back, _ = read_qdc(tmp_path / "t.qdc")
    assert [(c.id, c.parent, c.color) for c in back.codes] == [("alpha", None, "#112233"), ("beta", "alpha", None),
                                                               ("gamma", "beta", None)]


def test_nvivo_style_project_imports_correctly(tmp_path: Path) -> None:
    path = nvivo_project(tmp_path / "export")
    with Project.init(tmp_path / "p") as p:
        r = import_qdpx(p, path, segment_uncoded="turn")
        assert (r.documents_added, r.codings) == (2, 4)
        assert r.coders == {"Ann Smith": "human", "Bob Jones": "human"}
        assert r.skipped == {"PictureSource": 1}
        text = "\n".join(r.warnings)
        for quirk in ("named 'Ward safety.qde'", "braces", "Description instead of a Note", "isCodable"):
            assert quirk in text, quirk
        cb = p.codebook()
        assert [(c.id, c.parent) for c in cb.codes] == [
            ("leadership", None), ("distributed-leadership", "leadership"),
            ("national-level", "distributed-leadership"), ("organisations", "leadership")]
        assert cb.by_id["leadership"].color == "#FF0000"
        assert cb.by_id["distributed-leadership"].definition == "Leadership shared across levels."
        got = sorted(tuple(r) for r in p.db.execute("SELECT a.coder, a.code, s.text, a.rationale FROM annotations a "
                                                    "JOIN segments s ON s.id = a.segment_id"))
        assert got == [
            ("Ann Smith", "distributed-leadership", "Our matron walks the ward every morning and everyone owns safety.",
             "Matron as an ordinary leader."),
            ("Ann Smith", "organisations", "The chief nurse drives it, with the medical director backing her", None),
            ("Bob Jones", "leadership", "Our matron walks the ward every morning and everyone owns safety.", None),
            ("Bob Jones", "national-level", "Too many national bodies send mixed messages.",
             "Bob: clear national-level complaint."),
        ]
        # CRLF became LF, and every segment still equals its document between its offsets
        for doc_text, start, end, seg_text in p.db.execute(
                'SELECT d.text, s.start, s."end", s.text FROM segments s JOIN documents d ON d.id = s.document_id'):
            assert doc_text[start:end] == seg_text and "\r" not in doc_text
        # the uncoded turns were segmented too; the external source was read from beside the archive
        assert p.db.execute("SELECT count(*) FROM segments").fetchone()[0] > 3
        assert p.db.execute("SELECT text FROM documents WHERE title = 'Manager interview'").fetchone()[0] == INTERVIEW_2


def counts(p: Project) -> list[int]:
    return [p.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("documents", "segments", "annotations", "seen", "coders", "codebooks", "imports")]


def _refused(tmp_path: Path, path: Path, match: str, **kw) -> None:
    with Project.init(tmp_path / f"p-{path.stem}") as p:
        with pytest.raises(InputError, match=match):
            import_qdpx(p, path, **kw)
        assert counts(p) == [0] * 7  # nothing written


def test_zip_slip_absolute_paths_and_links_are_refused(tmp_path: Path) -> None:
    ok = {"project.qde": minimal(), "sources/s.txt": SOURCE}
    _refused(tmp_path, archive(tmp_path / "slip.qdpx", {**ok, "../../evil.txt": b"x"}), "path traversal")
    _refused(tmp_path, archive(tmp_path / "abs.qdpx", {**ok, "/etc/cron.d/x": b"x"}), "path traversal")
    _refused(tmp_path, archive(tmp_path / "link.qdpx", ok, symlink="sources/link.txt"), "symbolic link")


def test_billion_laughs_and_external_entities_are_refused(tmp_path: Path) -> None:
    laughs = ('<!DOCTYPE Project [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
              '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>\n')
    _refused(tmp_path, archive(tmp_path / "laughs.qdpx", {"project.qde": minimal(laughs, "&lol3;"),
                                                          "sources/s.txt": SOURCE}), "DTD, entities")
    xxe = '<!DOCTYPE Project [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    _refused(tmp_path, archive(tmp_path / "xxe.qdpx", {"project.qde": minimal(xxe, "&xxe;"),
                                                       "sources/s.txt": SOURCE}), "DTD, entities")


def test_zip_bombs_and_oversized_members_are_refused(tmp_path: Path) -> None:
    bomb = archive(tmp_path / "bomb.qdpx", {"project.qde": minimal(), "sources/s.txt": b"\0" * (50 << 20)})
    assert bomb.stat().st_size < 1 << 20
    _refused(tmp_path, bomb, "zip bomb")
    big = archive(tmp_path / "big.qdpx", {"project.qde": minimal(), "sources/s.txt": SOURCE * 1000})
    _refused(tmp_path, big, "over the 10,000 byte limit", limits=Limits(member_bytes=10_000))


def test_forged_sizes_cannot_get_past_the_cap(tmp_path: Path) -> None:
    path = archive(tmp_path / "forged.qdpx", {"project.qde": minimal(), "sources/s.txt": SOURCE * 100})
    data = bytearray(path.read_bytes())
    # lower the declared size of sources/s.txt in its central directory entry
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("sources/s.txt")
    cd = data.rfind(b"PK\x01\x02", 0, data.rfind(b"sources/s.txt"))
    data[cd + 24:cd + 28] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert info.file_size == len(SOURCE) * 100
    with Project.init(tmp_path / "p") as p:
        # a one-line refusal naming the member (a raw zipfile.BadZipFile is not a refusal), and nothing written
        with pytest.raises(InputError, match=r"forged.qdpx: member 'sources/s.txt' (is damaged|.*limit)") as exc:
            import_qdpx(p, path)
        assert "\n" not in str(exc.value)
        assert counts(p) == [0] * 7


def test_text_not_valid_utf8_and_other_bad_input(tmp_path: Path) -> None:
    _refused(tmp_path, archive(tmp_path / "latin.qdpx", {"project.qde": minimal(), "sources/s.txt": "caf\xe9".encode("latin-1")}),
             "not valid UTF-8")
    _refused(tmp_path, archive(tmp_path / "noqde.qdpx", {"sources/s.txt": SOURCE}), r"no project file \(.qde\)")
    (tmp_path / "notzip.qdpx").write_bytes(b"hello")
    _refused(tmp_path, tmp_path / "notzip.qdpx", "is a zip file")
    _refused(tmp_path, archive(tmp_path / "broken.qdpx", {"project.qde": b"<Project", "sources/s.txt": SOURCE}),
             "not well-formed XML")
    bad_sel = minimal().replace(b'plainTextPath="internal://s.txt"/>',
                                b'plainTextPath="internal://s.txt"><PlainTextSelection guid="aaaaaaaa-0000-4000-8000-0000'
                                b'00000001" startPosition="5" endPosition="999"/></TextSource>')
    _refused(tmp_path, archive(tmp_path / "sel.qdpx", {"project.qde": bad_sel, "sources/s.txt": SOURCE}),
             "outside its text")


def test_external_sources_are_read_only_beside_the_archive(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    qde = minimal().replace(b'plainTextPath="internal://s.txt"', f'plainTextPath="file://{outside}"'.encode())
    folder = tmp_path / "drop"
    folder.mkdir()
    _refused(tmp_path, archive(folder / "ext.qdpx", {"project.qde": qde}), "not found")


def test_the_cli_reports_bad_archives_in_one_line(tmp_path: Path, run) -> None:
    run("init", tmp_path / "p")
    path = archive(tmp_path / "slip.qdpx", {"project.qde": minimal(), "../evil": b"x"})
    r = run("import", path, "--project", tmp_path / "p")
    assert r.code == 2 and "path traversal" in r.err and len(r.err.strip().splitlines()) == 1


def test_json_report_of_an_import(tmp_path: Path, run) -> None:
    path = nvivo_project(tmp_path / "export")
    run("init", tmp_path / "p")
    r = run("import", path, "--json", "--project", tmp_path / "p")
    assert r.code == 0
    assert json.loads(r.out)["codings"] == 4


def test_a_docx_only_source_is_read_for_its_text(tmp_path: Path) -> None:
    from ..test_readers import make_docx

    make_docx(tmp_path / "i.docx", ["Interviewer: How is it led?", "Nurse: The matron leads every morning."])
    text = "Interviewer: How is it led?\n\nNurse: The matron leads every morning."
    at = text.index("The matron")
    qde = minimal().replace(b'plainTextPath="internal://s.txt"/>',
                            b'richTextPath="internal://i.docx"><PlainTextSelection guid="aaaaaaaa-0000-4000-8000-'
                            b'000000000001" startPosition="' + str(at).encode() + b'" endPosition="'
                            + str(len(text)).encode() + b'"><Coding guid="bbbbbbbb-0000-4000-8000-000000000001" '
                            b'creatingUser="6B29FC40-CA47-1067-B31D-00DD010662DA"><CodeRef targetGUID="0A1B2C3D-0000-'
                            b'4000-8000-000000000001"/></Coding></PlainTextSelection></TextSource>')
    path = archive(tmp_path / "d.qdpx", {"project.qde": qde, "sources/i.docx": (tmp_path / "i.docx").read_bytes()})
    with Project.init(tmp_path / "p") as p:
        r = import_qdpx(p, path)
        assert any("only a .docx" in w for w in r.warnings)
        seg = p.db.execute("SELECT s.text FROM annotations a JOIN segments s ON s.id = a.segment_id").fetchone()[0]
        assert seg == "The matron leads every morning."
