import json

import pandas as pd
import pytest

from assistcode.errors import InputError
from assistcode.readers import ReadOptions, expand_paths, read_path

from .conftest import DATA, needs_shared


def docs(path, **options):
    return [s for s in read_path(path, ReadOptions(**options)) if s.document is not None]


def make_docx(path, paragraphs, table=None):
    import docx

    d = docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    if table:
        t = d.add_table(rows=0, cols=2)
        for a, b in table:
            cells = t.add_row().cells
            cells[0].text, cells[1].text = a, b
    d.save(path)


def test_docx_paragraphs_and_tables_in_order(tmp_path):
    path = tmp_path / "i.docx"
    make_docx(path, ["Interviewer: How was it?", "", "P1: Fine, mostly."], table=[("Interviewer", "And now?"), ("P1", "Better.")])
    (src,) = docs(path)
    assert src.document.text == "Interviewer: How was it?\n\nP1: Fine, mostly.\n\nInterviewer: And now?\n\nP1: Better."
    assert src.document.title == "i" and src.document.metadata["source"] == "i.docx"


def test_docx_that_is_not_a_zip(tmp_path):
    path = tmp_path / "bad.docx"
    path.write_text("not a zip")
    with pytest.raises(InputError, match="bad.docx: not a readable .docx"):
        docs(path)


VTT = """WEBVTT

NOTE recorded 3 May

1
00:00:01.000 --> 00:00:04.000
<v Interviewer>How did the pilot go?</v>

00:00:04.500 --> 00:00:06.000 align:start
<v Dr Ana Ruiz>It went <b>well</b>,

00:00:06.000 --> 00:00:08.000
<v Dr Ana Ruiz>mostly.</v>

00:00:08.000 --> 00:00:09.000
<v.loud Interviewer>Why?
"""


def test_vtt_voice_tags_become_turns(tmp_path):
    path = tmp_path / "a.vtt"
    path.write_text(VTT)
    (src,) = docs(path)
    assert src.document.text == "Interviewer: How did the pilot go?\n\nDr Ana Ruiz: It went well, mostly.\n\nInterviewer: Why?"
    assert src.speakers == ("Interviewer", "Dr Ana Ruiz")


SRT = """1
00:00:01,000 --> 00:00:02,000
INTERVIEWER: Tell me more.

2
00:00:02,500 --> 00:00:04,000
[Participant 4] We had no lead
nurse then.

3
00:00:04,000 --> 00:00:05,000
It changed later.
"""


def test_srt_speaker_prefixes_and_continuations(tmp_path):
    path = tmp_path / "a.srt"
    path.write_text(SRT)
    (src,) = docs(path)
    assert src.document.text == "INTERVIEWER: Tell me more.\n\nParticipant 4: We had no lead nurse then. It changed later."


def test_vtt_without_header(tmp_path):
    path = tmp_path / "a.vtt"
    path.write_text("00:00:01.000 --> 00:00:02.000\nhi\n")
    with pytest.raises(InputError, match="WEBVTT"):
        docs(path)


def test_tables_in_every_format_give_the_same_documents(tmp_path):
    frame = pd.DataFrame({"rid": ["r1", "r2", "r3"], "answer": ["Yes.\r\nSure", "", "Because 3"], "site": ["A", "B", "A"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_excel(tmp_path / "t.xlsx", index=False)
    seen = []
    for name in ("t.csv", "t.jsonl", "t.parquet", "t.xlsx"):
        sources = list(read_path(tmp_path / name, ReadOptions(text_column="answer", id_columns=("rid",), cache_dir=tmp_path / "c")))
        got = [(s.document.key, s.document.text, s.document.metadata["site"]) for s in sources if s.document]
        assert got == [("r1", "Yes.\nSure", "A"), ("r3", "Because 3", "A")], name
        assert sum(s.skipped for s in sources) == 1, name  # the empty answer is counted, not lost
        seen.append([s.document.id for s in sources if s.document])
    assert all(ids == seen[0] for ids in seen)


def test_missing_text_column_names_the_file_and_the_columns(tmp_path):
    (tmp_path / "t.csv").write_text("id,answer\n1,x\n")
    with pytest.raises(InputError) as err:
        docs(tmp_path / "t.csv", text_column="response")
    assert str(err.value) == f"{tmp_path / 't.csv'}: field '--text-column': no column named 'response' (columns: id, answer)"


def test_cp1252_survey_csv_streams_with_a_warning():
    path = needs_shared(DATA / "llmcode-games-as-art" / "bopp_test_why_art_coded.cp1252.csv")
    sources = docs(path, text_column="why_art")
    assert len(sources) == 174
    assert "cp1252" in sources[0].warnings[0]
    import csv

    with path.open(encoding="cp1252", newline="") as fh:
        expected = [r["why_art"].replace("\r\n", "\n") for r in csv.DictReader(fh) if r["why_art"].strip()]
    assert [s.document.text for s in sources] == expected


def test_datasets_cache_stays_in_the_project(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    (tmp_path / "t.jsonl").write_text(json.dumps({"text": "hi"}) + "\n")
    docs(tmp_path / "t.jsonl", cache_dir=tmp_path / "proj-cache")
    assert not (home / ".cache" / "huggingface").exists()


def test_expand_paths_reads_folders_and_skips_hidden(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / ".hidden.txt").write_text("x")
    (tmp_path / "notes.pdf").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("y")
    assert [p.name for p in expand_paths([tmp_path])] == ["a.txt", "b.md"]
    with pytest.raises(InputError, match="no such file"):
        expand_paths([tmp_path / "nope.txt"])
    with pytest.raises(InputError, match="unsupported file type .pdf"):
        list(read_path(tmp_path / "notes.pdf"))
