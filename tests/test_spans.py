"""Span codings: import (spans files, .qdpx), bad input, runs' quotes as spans, eval --spans and its reports."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistcode.errors import GoldError
from assistcode.project import Project
from assistcode.providers.mock import MockProvider
from assistcode.runs import store as rs
from assistcode.runs.engine import RunConfig, code_project
from assistcode.spans import Span, check_offsets, import_span_file, merge, read_spans

CODEBOOK = """name: Ward codes
codes:
  - id: safety
    name: Patient safety
    definition: Keeping patients safe.
  - id: leadership
    name: Leadership
    definition: Who leads, and how.
"""
TEXT_A = "R: Safety comes first here. The matron leads every round. We talk about safety daily."
TEXT_B = "R: Leadership is shared. Nobody owns safety alone, and the matron listens."


def spans_project(tmp_path: Path) -> Project:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "ward-a.txt").write_text(TEXT_A, encoding="utf-8")
    (folder / "ward-b.txt").write_text(TEXT_B, encoding="utf-8")
    (tmp_path / "cb.yaml").write_text(CODEBOOK)
    project = Project.init(tmp_path / "proj")
    project.import_corpus([folder])
    project.import_codebook(tmp_path / "cb.yaml")
    return project


def doc_ids(project: Project) -> dict[str, str]:
    """title -> document id."""
    return {r[0]: r[1] for r in project.db.execute("SELECT title, id FROM documents")}


def at(text: str, phrase: str) -> tuple[int, int]:
    i = text.index(phrase)
    return i, i + len(phrase)


def write_csv(path: Path, rows: list[list[object]], header: str = "document,start,end,coder,code") -> Path:
    path.write_text(header + "\n" + "\n".join(",".join(str(c) for c in r) for r in rows) + "\n", encoding="utf-8")
    return path


def stored(project: Project, coder: str | None = None) -> list[tuple]:
    sql = 'SELECT document_id, start, "end", coder, code FROM span_codings'
    args: tuple = ()
    if coder:
        sql, args = sql + " WHERE coder = ?", (coder,)
    return sorted(tuple(r) for r in project.db.execute(sql + " ORDER BY 1, 2, 3, 4, 5", args))


# -- checking and merging -----------------------------------------------------------------------------------------

def test_offsets_are_clipped_or_refused():
    assert check_offsets(2, 9, 20, "f", 3) == (2, 9, False)
    assert check_offsets(2, 25, 20, "f", 3) == (2, 20, True)
    with pytest.raises(GoldError, match=r"^f:4: negative offset"):
        check_offsets(-1, 5, 20, "f", 4)
    with pytest.raises(GoldError, match=r"^f:5: end 3 is not after start 7"):
        check_offsets(7, 3, 20, "f", 5)
    with pytest.raises(GoldError, match=r"^f:6: start 20 is past the end of the document \(20 characters\)"):
        check_offsets(20, 24, 20, "f", 6)


def test_overlapping_spans_of_one_code_and_coder_merge_and_are_counted():
    spans = [Span("d", 0, 10, "A", "x"), Span("d", 5, 15, "A", "x"), Span("d", 12, 20, "A", "x"),
             Span("d", 20, 25, "A", "x"),  # touches: stays apart
             Span("d", 5, 15, "B", "x"), Span("d", 5, 15, "A", "y")]  # another coder, another code: apart
    merged, n = merge(spans)
    assert n == 2
    assert merged == [Span("d", 0, 20, "A", "x"), Span("d", 20, 25, "A", "x"), Span("d", 5, 15, "A", "y"),
                      Span("d", 5, 15, "B", "x")]


# -- spans files --------------------------------------------------------------------------------------------------

def test_spans_file_by_id_title_and_quote_with_clipping_merging_and_unlocated_quotes(tmp_path, run):
    project = spans_project(tmp_path)
    ids = doc_ids(project)
    a, b = ids["ward-a"], ids["ward-b"]
    s1 = at(TEXT_A, "Safety comes first here.")
    s2 = at(TEXT_A, "The matron leads every round.")
    path = tmp_path / "spans.csv"
    path.write_text("document,start,end,quote,coder,code\n"
                    f"{a},{s1[0]},{s1[1]},,Ann,safety\n"
                    f"ward-a,{s1[0] + 5},{s1[1] + 3},,Ann,safety\n"          # overlaps the first: merged
                    f"ward-a,{s2[0]},{s2[1]},,Ann,Leadership\n"              # code by name
                    f"ward-b,{len(TEXT_B) - 6},{len(TEXT_B) + 40},,Ann,leadership\n"  # past the end: clipped
                    "ward-b,,,nobody owns SAFETY alone,Bob,safety\n"          # located despite case
                    "ward-b,,,a sentence that is not there,Bob,safety\n",     # not located: counted, listed
                    encoding="utf-8")
    project.close()
    r = run("import-gold", path, "--format", "spans", "--project", tmp_path / "proj")
    assert r.code == 0, r.err
    assert "1 span ran past the end of their document: clipped to it" in r.err
    assert "1 overlapping span of the same code by the same coder merged" in r.err
    assert "1 quote could not be located" in r.err and "'a sentence that is not there'" in r.err
    assert "Imported 4 span codings on 2 documents from 2 coders (Ann, Bob)" in r.out
    with Project(tmp_path / "proj") as p:
        q = at(TEXT_B, "Nobody owns safety alone")
        assert stored(p) == sorted([(a, s1[0], s1[1] + 3, "Ann", "safety"), (a, *s2, "Ann", "leadership"),
                                    (b, len(TEXT_B) - 6, len(TEXT_B), "Ann", "leadership"), (b, *q, "Bob", "safety")])
        assert {r[0]: r[1] for r in p.db.execute("SELECT name, kind FROM coders")} == {"Ann": "human", "Bob": "human"}
    again = run("import-gold", path, "--format", "spans", "--project", tmp_path / "proj")
    assert again.code == 0 and "Imported 0 span codings" in again.out and "4 already imported" in again.out


@pytest.mark.parametrize("row, message", [
    ("{a},-1,5,Ann,safety", "spans.csv:3: negative offset"),
    ("{a},9,4,Ann,safety", "spans.csv:3: end 4 is not after start 9"),
    ("{a},500,510,Ann,safety", "spans.csv:3: start 500 is past the end of the document"),
    ("{a},1,5,Ann,unknown-code", "spans.csv:3: field 'code': unknown code 'unknown-code'"),
    ("no such doc,1,5,Ann,safety", "spans.csv:3: field 'document': unknown document 'no such doc'"),
])
def test_bad_rows_refuse_the_whole_file(tmp_path, run, row, message):
    project = spans_project(tmp_path)
    a = doc_ids(project)["ward-a"]
    project.close()
    path = write_csv(tmp_path / "spans.csv", [[a, 0, 6, "Ann", "safety"], [row.format(a=a)]])
    r = run("import-gold", path, "--format", "spans", "--project", tmp_path / "proj")
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0]
    with Project(tmp_path / "proj") as p:
        assert stored(p) == [] and p.db.execute("SELECT count(*) FROM coders").fetchone()[0] == 0


def test_a_coder_spans_imported_again_differently_need_replace(tmp_path):
    project = spans_project(tmp_path)
    a = doc_ids(project)["ward-a"]
    import_span_file(project, write_csv(tmp_path / "one.csv", [[a, 0, 6, "Ann", "safety"]]))
    second = write_csv(tmp_path / "two.csv", [[a, 3, 12, "Ann", "safety"]])
    with pytest.raises(GoldError, match="differ from those already imported for Ann on 1 document.*--replace"):
        import_span_file(project, second)
    assert stored(project) == [(a, 0, 6, "Ann", "safety")]
    report = import_span_file(project, second, replace=True)
    assert report.replaced == 1 and stored(project) == [(a, 3, 12, "Ann", "safety")]
    project.close()


# -- REFI-QDA -----------------------------------------------------------------------------------------------------

def test_qdpx_selections_become_spans_and_spans_go_back_as_selections(tmp_path):
    from assistcode.refi import export_qdpx, import_qdpx
    from assistcode.refi.qdpx import read_qdpx
    from tests.refi.fixtures import INTERVIEW_1, INTERVIEW_2, nvivo_project, span

    path = nvivo_project(tmp_path / "in")
    project = Project.init(tmp_path / "p1")
    report = import_qdpx(project, path)
    assert report.spans == 4  # one selection coded by two users, and two more
    nurse, manager = (project.db.execute("SELECT id FROM documents WHERE title = ?", (t,)).fetchone()[0]
                      for t in ("Nurse interview", "Manager interview"))
    text1 = INTERVIEW_1.replace("\r\n", "\n")
    s1 = span(text1, "Our matron walks the ward every morning and everyone owns safety.")
    s3 = span(INTERVIEW_2, "The chief nurse drives it, with the medical director backing her")
    assert (nurse, *s1, "Ann Smith", "distributed-leadership") in stored(project)
    assert (nurse, *s1, "Bob Jones", "leadership") in stored(project)
    assert (manager, *s3, "Ann Smith", "organisations") in stored(project)
    # a span that matches no segment (another boundary for the same passage) travels as its own selection
    shorter = span(text1, "Our matron walks the ward")
    project.db.execute('INSERT INTO span_codings (document_id, start, "end", coder, code) VALUES (?, ?, ?, ?, ?)',
                       (nurse, *shorter, "Bob Jones", "distributed-leadership"))
    out = export_qdpx(project, tmp_path / "out.qdpx")
    before = stored(project)
    project.close()
    refi = read_qdpx(tmp_path / "out.qdpx")
    ranges = [(src.name, sel.start, sel.end) for src in refi.sources for sel in src.selections]
    assert ranges.count(("Nurse interview", *shorter)) == 1 and out.selections == len(ranges) == 5
    again = Project.init(tmp_path / "p2")
    import_qdpx(again, tmp_path / "out.qdpx")
    assert stored(again) == before  # document ids, offsets, coders and codes survive the round trip
    again.close()


# -- models as span coders ----------------------------------------------------------------------------------------

def fast(**kw):
    return RunConfig(provider="mock", model="m", backoff_base=0.001, backoff_cap=0.01, concurrency=1, **kw)


def test_a_run_located_quotes_become_its_span_codings_several_per_code(tmp_path):
    project = spans_project(tmp_path)
    ids = doc_ids(project)

    def reply(messages):
        text = messages[-1]["content"]
        if "Safety comes first" in text:
            return json.dumps({"codes": [
                {"code": "safety", "rationale": "r", "evidence": "Safety comes first here.", "confidence": 0.9},
                {"code": "safety", "rationale": "r", "evidence": "we talk about safety daily", "confidence": 0.8},
                {"code": "safety", "rationale": "r", "evidence": "not in the text at all", "confidence": 0.8},
                {"code": "leadership", "rationale": "r", "evidence": "The matron leads", "confidence": 0.7}]})
        return json.dumps({"codes": []})

    result = code_project(project, fast(template="span"), provider=MockProvider("m", default=reply))
    coder = result.run.coder
    a = ids["ward-a"]
    assert stored(project, coder) == sorted([(a, *at(TEXT_A, "Safety comes first here."), coder, "safety"),
                                             (a, *at(TEXT_A, "We talk about safety daily"), coder, "safety"),
                                             (a, *at(TEXT_A, "The matron leads"), coder, "leadership")])
    # one proposal per code for segment-level work; the quote not found is counted
    assert project.db.execute("SELECT count(*) FROM annotations WHERE coder = ?", (coder,)).fetchone()[0] == 2
    assert project.db.execute("SELECT sum(quotes_not_found) FROM run_segments").fetchone()[0] == 1
    rs.delete_run(project.db, result.run.id)
    assert stored(project, coder) == []
    project.close()


def test_span_quotes_through_the_openai_client_against_the_testing_server(tmp_path):
    from assistcode.testing import FakeOpenAIServer, Plan

    from .conftest import need

    need("openai")
    project = spans_project(tmp_path)
    a, b = doc_ids(project)["ward-a"], doc_ids(project)["ward-b"]
    reply_a = {"codes": [{"code": "safety", "rationale": "", "evidence": "Safety comes first here.", "confidence": 0.9},
                         {"code": "safety", "rationale": "", "evidence": "We talk about safety daily.", "confidence": 0.9}]}
    reply_b = {"codes": [{"code": "leadership", "rationale": "", "evidence": "Leadership is shared.", "confidence": 0.8}]}

    with FakeOpenAIServer(Plan()) as server:  # one call per segment, in document order: the replies in that order
        texts = {r[0]: r[1] for r in project.db.execute("SELECT document_id, text FROM segments")}
        order = [r[0] for r in project.db.execute("SELECT document_id FROM segments ORDER BY rowid")]
        server.set_plan(Plan(queue=[{"content": json.dumps(reply_a if "Safety comes first" in texts[d] else reply_b)}
                                    for d in order]))
        result = code_project(project, RunConfig(provider="openai", model="fake", base_url=server.base_url,
                                                 api_key="sk-test", template="span", concurrency=1, timeout=5.0,
                                                 backoff_base=0.01, backoff_cap=0.05))
    coder = result.run.coder
    assert stored(project, coder) == sorted([(a, *at(TEXT_A, "Safety comes first here."), coder, "safety"),
                                             (a, *at(TEXT_A, "We talk about safety daily."), coder, "safety"),
                                             (b, *at(TEXT_B, "Leadership is shared."), coder, "leadership")])
    project.close()


def test_a_repeated_code_adds_a_quote_and_an_unlocated_one_is_counted():
    from assistcode.model import Segment
    from assistcode.runs.replies import validate_codes

    seg = Segment("s", "d", 0, 100, 100 + len(TEXT_A), TEXT_A, "R")
    v = validate_codes([{"code": "safety", "evidence": "Safety comes first"},
                        {"code": "safety", "evidence": "safety daily"},
                        {"code": "safety", "evidence": "nowhere to be found"}], seg, {"safety"})
    assert len(v.proposals) == 1 and v.quotes_not_found == 1
    s, e = at(TEXT_A, "safety daily")
    assert v.proposals[0].more_quotes == [(100 + s, 100 + e)]


def test_quotes_of_runs_coded_before_spans_were_stored_are_read_from_annotations(tmp_path):
    project = spans_project(tmp_path)
    result = code_project(project, fast(template="deductive"), provider=MockProvider("m"))  # keyword coder
    coder = result.run.coder
    project.db.execute("DELETE FROM span_codings")  # as a run made before migration 010 would be
    got = {(s.document, s.start, s.end, s.code) for s in read_spans(project.db, [coder])}
    want = {(d, s, e, c) for d, s, e, _, c in [tuple(r) for r in project.db.execute(
        "SELECT s.document_id, a.evidence_start, a.evidence_end, a.coder, a.code FROM annotations a "
        "JOIN segments s ON s.id = a.segment_id WHERE a.coder = ? AND a.evidence_found = 1", (coder,))]}
    assert got == want and len(got) >= 2
    project.close()


# -- eval --spans and the reports ---------------------------------------------------------------------------------

def human_spans(tmp_path: Path, project: Project) -> Path:
    ids = doc_ids(project)
    a, b = ids["ward-a"], ids["ward-b"]
    rows = [[a, *at(TEXT_A, "Safety comes first here."), "Ann", "safety"],
            [a, *at(TEXT_A, "The matron leads every round."), "Ann", "leadership"],
            [a, *at(TEXT_A, "We talk about safety daily."), "Ann", "safety"],
            [b, *at(TEXT_B, "Leadership is shared."), "Ann", "leadership"],
            [b, *at(TEXT_B, "Nobody owns safety alone"), "Ann", "safety"],
            [a, *at(TEXT_A, "Safety comes first"), "Bob", "safety"],
            [a, *at(TEXT_A, "The matron leads every round."), "Bob", "leadership"],
            [b, *at(TEXT_B, "Leadership is shared. Nobody owns safety alone"), "Bob", "leadership"],
            [b, *at(TEXT_B, "Nobody owns safety alone"), "Bob", "safety"]]
    return write_csv(tmp_path / "humans.csv", rows)


def test_eval_spans_sets_a_run_beside_the_human_ceiling_with_the_json_shape_of_eval(tmp_path, run):
    project = spans_project(tmp_path)
    import_span_file(project, human_spans(tmp_path, project))
    ids = doc_ids(project)

    def copy_ann(messages):  # the model quotes exactly what Ann coded
        text = messages[-1]["content"]
        if "Safety comes first" in text:
            quotes = [("safety", "Safety comes first here."), ("leadership", "The matron leads every round."),
                      ("safety", "We talk about safety daily.")]
        else:
            quotes = [("leadership", "Leadership is shared."), ("safety", "Nobody owns safety alone")]
        return json.dumps({"codes": [{"code": c, "rationale": "", "evidence": q, "confidence": 0.9} for c, q in quotes]})

    coder = code_project(project, fast(template="span"), provider=MockProvider("m", default=copy_ann)).run.coder
    project.close()
    proj = tmp_path / "proj"
    seg = run("eval", "--json", "--n-boot", "0", "--project", proj).json()
    r = run("eval", "--spans", "--json", "--n-boot", "30", "--project", proj)
    assert r.code == 0, r.err
    res = r.json()
    assert set(res) >= set(seg) and res["meta"]["unit"] == "span"  # eval's shape, and more
    assert res["meta"]["n_documents"] == 2 and {c["name"] for c in res["meta"]["coders"]} == {"Ann", "Bob", coder}
    comps = {c["comparison"]: c for c in res["overall"]}
    assert list(comps) == ["humans (ceiling)", f"{coder} vs Ann", f"{coder} vs Bob", f"humans + {coder}"]
    same = {e["statistic"]: e for e in comps[f"{coder} vs Ann"]["estimates"]}
    assert set(same) == {"u_alpha", "cu_alpha", "Cu_alpha"}
    assert same["u_alpha"]["value"] == pytest.approx(1.0)  # identical spans
    ceiling = {e["statistic"]: e for e in comps["humans (ceiling)"]["estimates"]}["u_alpha"]
    assert ceiling["value"] < 1.0 and ceiling["n_boot"] == 30 and ceiling["low"] <= ceiling["high"]
    rows = {(tuple(p["coders"]), p["code"]): p for p in res["per_code"]}
    assert set(rows) == {(("Ann", "Bob", coder), c) for c in ("safety", "leadership")}
    assert all("ceiling" in p and p["estimates"][0]["statistic"] == "|u_alpha" for p in res["per_code"])
    assert [p["coder"] for p in res["place"]][0] in ("Ann", coder)
    strip = {d["id"]: d for d in res["spans"]["documents"]}[ids["ward-a"]]
    assert strip["coders"][coder] == [[*at(TEXT_A, "Safety comes first here."), "safety"],
                                      [*at(TEXT_A, "The matron leads every round."), "leadership"],
                                      [*at(TEXT_A, "We talk about safety daily."), "safety"]]
    # --coders and --reference: the model against one human, with span F1
    one = run("eval", "--spans", "--json", "--n-boot", "0", "--coders", f"Bob,{coder}", "--project", proj).json()
    assert [c["comparison"] for c in one["overall"]] == [f"{coder} vs Bob"]
    by_code = {p["code"]: p for p in one["per_code"]}
    assert by_code["leadership"]["iou"] == 0.5 and 0 <= by_code["leadership"]["f1"] <= 1
    assert by_code["safety"]["precision"] is not None


def test_span_reports_terminal_markdown_html(tmp_path, run):
    project = spans_project(tmp_path)
    import_span_file(project, human_spans(tmp_path, project))
    project.close()
    proj = tmp_path / "proj"
    r = run("eval", "--spans", "--n-boot", "20", "--markdown", tmp_path / "r.md", "--html", tmp_path / "r.html",
            "-o", tmp_path / "r.json", "--project", proj)
    assert r.code == 0, r.err
    assert "Overall span agreement" in r.out and "humans (ceiling)" in r.out
    md = (tmp_path / "r.md").read_text()
    assert "## Overall span agreement" in md and "| humans (ceiling) |" in md and "Per code, spans (Ann vs Bob)" in md
    assert "human ceiling |u-alpha" not in md  # humans alone: their per-code row is the ceiling, not shown twice
    html = (tmp_path / "r.html").read_text()
    assert html.count('aria-label="spans in ward-') == 2  # one strip per document
    a_start, a_end = at(TEXT_A, "Safety comes first")
    assert f"<title>Bob: safety {a_start}-{a_end}</title>" in html
    assert json.loads((tmp_path / "r.json").read_text())["meta"]["unit"] == "span"


def test_the_span_template_is_shipped_and_asks_for_exact_quotes_per_stretch():
    from assistcode.prompts import get_template

    t = get_template("span")
    assert t.output == "codes" and t.version == 1
    text = t.render(segment={"id": "1", "text": TEXT_A, "speaker": None}, codes=[{"id": "safety", "name": "S",
                    "definition": "", "include": "", "exclude": "", "examples": []}], codebook_name="c", examples=[]).text
    assert "repeat a code for each of its stretches" in text and TEXT_A in text


def test_a_document_a_spans_file_names_counts_as_seen_by_each_of_its_coders(tmp_path, run):
    project = spans_project(tmp_path)
    ids = doc_ids(project)
    a, b = ids["ward-a"], ids["ward-b"]
    import_span_file(project, write_csv(tmp_path / "f.csv", [[a, 3, 20, "Ann", "safety"], [a, 3, 20, "Bob", "safety"],
                                                             [b, 3, 20, "Ann", "safety"]]))  # Bob: nothing on b
    project.close()
    res = run("eval", "--spans", "--json", "--n-boot", "0", "--project", tmp_path / "proj").json()
    assert res["meta"]["n_documents"] == 2 and not any("left out" in n for n in res["notes"])
    assert res["overall"][0]["estimates"][0]["value"] < 1  # Bob's "no code" on b is a disagreement


def test_eval_spans_with_one_coder_says_so(tmp_path, run):
    project = spans_project(tmp_path)
    a = doc_ids(project)["ward-a"]
    import_span_file(project, write_csv(tmp_path / "one.csv", [[a, 0, 6, "Ann", "safety"]]))
    project.close()
    r = run("eval", "--spans", "--project", tmp_path / "proj")
    assert r.code == 2 and "only 1 coder with spans (Ann): nothing to compare" in r.err
    r = run("eval", "--spans", "--by", "role", "--project", tmp_path / "proj")
    assert r.code == 2 and "--rollup, --by and --no-cluster do not apply" in r.err
