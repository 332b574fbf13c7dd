"""Inductive coding, measured: free-text code tables, grouping proposals, and codebook comparison."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistcode.candidates import Candidate
from assistcode.inductive import compare_codesets, induce_codebook, load_operand, normalise_code
from assistcode.inductive.codeset import CodeEntry, CodeSet, read_code_table, singular
from assistcode.inductive.compare import render_text
from assistcode.inductive.induce import cluster
from assistcode.runs import store as rs

from .conftest import need


def _codes(label: str, names: list[str], units: dict[str, set[str]] | None = None) -> CodeSet:
    return CodeSet(label, "codes", [CodeEntry(n.replace(" ", "-"), n) for n in names],
                   None if units is None else {k: frozenset(v) for k, v in units.items()})


def test_normalise_code_folds_case_space_and_edge_punctuation():
    assert normalise_code("  Emotional   Response. ") == "emotional response"
    assert normalise_code('"Beauty"') == "beauty"
    assert normalise_code("...") == ""


def test_code_table_folds_variants_and_counts_empty_codes(tmp_path: Path):
    f = tmp_path / "codes.csv"
    f.write_text('answer,human_codes\nIt moved me,"emotion; Emotion ;beauty"\nPure art,"beauty;;"\nNothing,\n', encoding="utf-8")
    cs = read_code_table(f, "human_codes", "answer")
    assert [c.id for c in cs.codes] == ["beauty", "emotion"]  # most used first, then by name
    assert [c.members for c in cs.codes] == [2, 2]
    assert cs.units == {"It moved me": frozenset({"emotion", "beauty"}), "Pure art": frozenset({"beauty"}),
                        "Nothing": frozenset()}
    assert "1 variant spellings (case, spaces, punctuation) folded into their codes" in cs.notes
    assert "2 empty codes left out" in cs.notes


def test_singular_folds_regular_plurals_only():
    assert [singular(w) for w in ("stories", "emotions", "lasting impressions", "bosses", "boxes")] == \
        ["story", "emotion", "lasting impression", "boss", "box"]
    # -ss, -us, -is, -ics, short words and listed exceptions are not plurals
    assert [singular(w) for w in ("class", "status", "analysis", "aesthetics", "game mechanics", "art", "gas", "news",
                                  "series")] == ["class", "status", "analysis", "aesthetics", "game mechanics", "art",
                                                 "gas", "news", "series"]


def test_code_table_folds_a_plural_into_its_singular_when_both_occur(tmp_path: Path):
    f = tmp_path / "codes.csv"
    f.write_text("answer,human_codes\na,emotions;stories\nb,emotion\nc,Emotion;graphics\nd,stories\n", encoding="utf-8")
    cs = read_code_table(f, "human_codes", "answer")
    assert {c.id: c.members for c in cs.codes} == {"emotion": 3, "stories": 2, "graphics": 1}
    assert cs.code_units()["emotion"] == {"a", "b", "c"}  # "emotions" on a is now "emotion"
    assert "1 plural codes folded into their singular (e.g. 'emotions' into 'emotion')" in cs.notes
    # "stories" alone has no singular to fold into: it stays as it is


def test_names_equal_but_for_a_plural_match_exactly():
    ref = _codes("ref", ["story", "feelings", "graphics"])
    other = _codes("other", ["stories", "feeling", "graphic"])
    c = compare_codesets(ref, other, embeddings=False, threshold=0.99)
    assert sorted((m.reference, m.other, m.how) for m in c.matches) == [
        ("feelings", "feeling", "exact"), ("story", "stories", "exact")]  # "graphics" is not a plural of "graphic"


def test_coverage_and_precision_carry_wilson_intervals():
    ref = _codes("ref", ["story", "music", "beauty", "immersion"])
    other = _codes("other", ["story", "music", "zebra crossing"])
    c = compare_codesets(ref, other, embeddings=False, n_boot=0)
    assert (c.coverage, c.precision) == (0.5, pytest.approx(2 / 3))
    # Wilson 95% for 2 of 4: centre (0.5), half-width 1.96 * sqrt(.25/4 + 1.96^2/64) / (1 + 1.96^2/4)
    assert c.coverage_interval == (pytest.approx(0.1500, abs=1e-4), pytest.approx(0.8500, abs=1e-4))
    lo, hi = c.precision_interval
    assert lo < 2 / 3 < hi and hi - lo > 0.5  # three codes say little
    assert "Coverage 0.50 [0.15, 0.85]" in render_text(c)


def test_code_table_errors_say_what_and_where(tmp_path: Path, run):
    f = tmp_path / "codes.csv"
    f.write_text("answer,codes\na,x\n", encoding="utf-8")
    r = run("codebook", "compare", f"codes:{f}", f"codes:{f}", "--project", tmp_path)
    assert r.code == 2 and "no column 'human_codes'" in r.err and "columns: answer, codes" in r.err
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("answer,human_codes\na,x\nb,y,z\n", encoding="utf-8")
    r = run("codebook", "compare", f"codes:{ragged}", f"codes:{ragged}", "--project", tmp_path)
    assert r.code == 2 and "ragged.csv:3" in r.err and "3 cells where the header names 2" in r.err
    r = run("codebook", "compare", "nothing-here.yaml", f"codes:{f}", "--project", tmp_path)
    assert r.code == 2 and "'nothing-here.yaml' names nothing" in r.err
    r = run("codebook", "compare", "run:1", f"codes:{f}", "--project", tmp_path)
    assert r.code == 2 and "inside a project" in r.err


def test_exact_matches_hungarian_and_near_many_to_one():
    ref = _codes("ref", ["emotional response", "story"])
    other = _codes("other", ["emotional response", "emotional responses", "zebra crossing"])
    c = compare_codesets(ref, other, embeddings=False)
    assert [(m.reference, m.other, m.how) for m in c.matches] == [("emotional-response", "emotional-response", "exact")]
    assert c.coverage == 0.5 and c.precision == pytest.approx(1 / 3)
    assert {u["id"] for u in c.unmatched["reference"]} == {"story"}
    assert {u["id"] for u in c.unmatched["other"]} == {"emotional-responses", "zebra-crossing"}
    assert c.near == [{"side": "other", "code": "emotional-responses", "near": "emotional-response",
                       "score": pytest.approx(c.near[0]["score"]), "which_matched": "emotional-response"}]
    assert c.near[0]["score"] >= c.threshold


def test_threshold_decides_a_meaning_match():
    ref = _codes("ref", ["musical score"])
    other = _codes("other", ["music score"])
    assert len(compare_codesets(ref, other, embeddings=False).matches) == 1  # names 0.92 alike
    assert compare_codesets(ref, other, embeddings=False, threshold=0.99).matches == []


def test_mapped_agreement_is_perfect_for_a_renamed_copy_and_negative_for_a_swap():
    units = {"u1": {"a"}, "u2": {"b"}, "u3": set(), "u4": {"a", "b"}, "u5": {"a"}, "u6": {"b"}}
    ref = CodeSet("ref", "codes", [CodeEntry("a", "music"), CodeEntry("b", "story")],
                  {k: frozenset(v) for k, v in units.items()})
    same = CodeSet("other", "codes", [CodeEntry("x", "music"), CodeEntry("y", "story")],
                   {k: frozenset({"x" if c == "a" else "y" for c in v}) for k, v in units.items()})
    c = compare_codesets(ref, same, embeddings=False, n_boot=200)
    assert c.agreement["value"] == pytest.approx(1.0) and c.agreement["n_units"] == 6
    assert [(m.units_both, m.units_reference_only, m.units_other_only) for m in c.matches] == [(3, 0, 0), (3, 0, 0)]
    swapped = CodeSet("other", "codes", same.codes,
                      {k: frozenset({"y" if c == "a" else "x" for c in v}) for k, v in units.items()})
    c = compare_codesets(ref, swapped, embeddings=False, n_boot=200)
    assert c.agreement["value"] < 0.1  # mapped by name, the codes fall on each other's units (only u3, u4 agree)


def test_coverage_counts_only_codes_used_often_enough():
    ref = CodeSet("ref", "codes", [CodeEntry("a", "music"), CodeEntry("b", "story")],
                  {"u1": frozenset({"a"}), "u2": frozenset({"a"}), "u3": frozenset({"a", "b"})})
    other = CodeSet("other", "codes", [CodeEntry("m", "music")], {"u1": frozenset({"m"})})
    assert compare_codesets(ref, other, embeddings=False, min_units=1, n_boot=0).coverage == 0.5
    assert compare_codesets(ref, other, embeddings=False, min_units=3, n_boot=0).coverage == 1.0


def test_a_codebook_compared_with_itself_covers_everything(run, tmp_path: Path):
    cb = Path(__file__).resolve().parent.parent / "gold_standard" / "leadership-quality-safety" / "codebook.yaml"
    r = run("codebook", "compare", cb, cb, "--no-embeddings", "--json", "--project", tmp_path)
    assert r.code == 0, r.err
    out = r.json()
    assert out["coverage"] == 1 and out["precision"] == 1 and out["unmatched"] == {"reference": [], "other": []}
    assert set(out) >= {"coverage", "precision", "matches", "unmatched", "near", "method"}


def test_a_codebook_compared_with_itself_by_embeddings(tmp_path: Path):
    need("onnxruntime")
    cb = Path(__file__).resolve().parent.parent / "gold_standard" / "leadership-quality-safety" / "codebook.yaml"
    a = load_operand(str(cb))
    renamed = CodeSet("renamed", "codebook", [CodeEntry(f"c{i}", c.name + " (theme)", c.definition)
                                              for i, c in enumerate(a.codes)])
    c = compare_codesets(a, renamed, embeddings=True)
    assert "MiniLM" in c.method
    assert c.coverage == 1 and c.precision == 1
    assert [m.other for m in c.matches] == [f"c{i}" for i in range(len(a.codes))]  # each to its own rewording


def test_cluster_cuts_at_the_cosine_distance():
    v = np.array([[1, 0, 0], [0.99, 0.14, 0], [0, 1, 0], [0, 0.99, 0.14]], dtype=float)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    labels = cluster(v, 0.2)
    assert labels[0] == labels[1] and labels[2] == labels[3] and labels[0] != labels[2]
    assert len(set(cluster(v, 1.5).tolist())) == 1


def _cand(i: int, name: str, seg: str) -> Candidate:
    return Candidate(i, 1, seg, name, f"about {name}", f"quote {i}", 0.8, "new")


def test_induce_by_names_keeps_members_and_takes_the_most_frequent_name():
    found = [_cand(1, "Sense of beauty", "s1"), _cand(2, "sense of beauty", "s2"), _cand(3, "sense of beauty!", "s3"),
             _cand(4, "Plot twists", "s2")]
    induced = induce_codebook(found, embeddings=False)
    assert [c.id for c in induced] == ["sense-of-beauty", "plot-twists"]
    assert [len(c.members) for c in induced] == [3, 1]
    assert induced[0].segments == {"s1", "s2", "s3"}
    assert induced[0].examples == ("quote 1", "quote 2", "quote 3")


def test_induce_and_compare_a_run_through_the_cli(run, tmp_path: Path):
    run("init", tmp_path / "p")
    table = tmp_path / "answers.csv"
    table.write_text("id,answer\n1,The music was wonderful.\n2,The story made me cry.\n", encoding="utf-8")
    assert run("import", table, "--text-column", "answer", "--id-column", "id", "--project", tmp_path / "p").code == 0
    from assistcode.model import Codebook
    from assistcode.project import Project

    with Project(tmp_path / "p") as p:
        p.import_codebook(Codebook(name="open", codes=()))
        segs = p.segments()
        r1 = rs.create_run(p.db, "mock:inductive@1", "fp", {})
        for s, name in zip(segs, ["Music", "Moving story"]):
            rs.record_segment(p.db, r1, s.id, status="ok")
            rs.record_candidates(p.db, r1, s.id, [{"name": name, "definition": "", "evidence": "", "evidence_found": True,
                                                   "confidence": 0.9}])
        p.db.commit()
    human = tmp_path / "human.csv"
    human.write_text("answer,human_codes\nThe music was wonderful.,music\nThe story made me cry.,moving story;sadness\n",
                     encoding="utf-8")
    r = run("codebook", "induce", "1", "--no-embeddings", "--json", "--project", tmp_path / "p")
    assert r.code == 0, r.err
    assert [c["id"] for c in r.json()["codes"]] == ["music", "moving-story"]
    out = tmp_path / "cmp.json"
    page = tmp_path / "cmp.html"
    r = run("codebook", "compare", f"codes:{human}", "run:1", "--text-column", "answer", "--no-embeddings", "--json",
            "-o", out, "--html", page, "--project", tmp_path / "p")
    assert r.code == 0, r.err
    result = json.loads(out.read_text())
    assert result["coverage"] == pytest.approx(2 / 3) and result["precision"] == 1
    assert result["agreement"]["n_units"] == 2
    assert [u["name"] for u in result["unmatched"]["reference"]] == ["sadness"]
    assert "sadness" in page.read_text() and "Coverage" not in r.out  # the report went to the file


def test_shared_units_alone_do_not_make_a_match():
    ref = CodeSet("ref", "codes", [CodeEntry("a", "music")], {"u1": frozenset({"a"}), "u2": frozenset()})
    other = CodeSet("other", "codes", [CodeEntry("z", "zebra crossing")], {"u1": frozenset({"z"}), "u2": frozenset()})
    c = compare_codesets(ref, other, embeddings=False, n_boot=0)
    assert c.matches == [] and "unit overlap" in c.method


def _project_with_run(tmp_path: Path, texts: list[str], names: list[list[str]]):
    from assistcode.model import Codebook
    from assistcode.project import Project
    from assistcode.readers import ReadOptions

    table = tmp_path / "answers.csv"
    table.write_text("id,answer\n" + "".join(f"{i},{t}\n" for i, t in enumerate(texts)), encoding="utf-8")
    p = Project.init(tmp_path / "p")
    p.import_corpus([table], segmenter="paragraph", options=ReadOptions(text_column="answer", id_columns=("id",)))
    p.import_codebook(Codebook(name="open", codes=()))
    r1 = rs.create_run(p.db, "mock:inductive@1", "fp", {"provider": {"provider": "mock", "model": "m"}})
    for s, these in zip(p.segments(), names):
        rs.record_segment(p.db, r1, s.id, status="ok")
        rs.record_candidates(p.db, r1, s.id, [{"name": n, "definition": f"about {n}", "evidence": "", "evidence_found": True,
                                               "confidence": 0.9} for n in these])
    p.db.commit()
    return p, r1


def test_rounds_apply_codes_by_name_keep_unapplied_ones_and_add_new_ones(tmp_path: Path):
    from assistcode.inductive.rounds import constant_comparison
    from assistcode.providers.mock import MockProvider
    from assistcode.runs.engine import RunConfig

    texts = ["The music was wonderful.", "Great music and a story.", "The story made me cry.", "Pure beauty."]
    p, r1 = _project_with_run(tmp_path, texts, [["Music"], ["music"], ["Story"], []])

    def constant(messages: list[dict[str, str]]) -> str:
        assert "- Music: about Music" in messages[0]["content"]  # the codebook so far is shown
        text = messages[-1]["content"]
        cands = []
        if "music" in text:
            cands.append({"name": "MUSIC.", "definition": "", "evidence": "music", "confidence": 0.9})
        if "cry" in text:
            cands.append({"name": "Sadness", "definition": "feeling sad", "evidence": "cry", "confidence": 0.9})
        return json.dumps({"candidates": cands})

    provider = MockProvider(default=constant)
    out = constant_comparison(p, str(r1.id), 2, embeddings=False, provider=provider,
                              config=RunConfig(provider="mock", model="m", concurrency=1))
    assert [x.as_dict()["applied"] for x in out.rounds] == [0, 2]
    assert [(x.new_codes, x.codes) for x in out.rounds] == [(2, 2), (1, 3)]
    by_id = {c.id: c for c in out.codes}
    assert set(by_id) == {"music", "story", "sadness"}  # "story" was not applied in round 2: kept, no segments
    segs = {s.text: s.id for s in p.segments()}
    assert by_id["music"].segments == {segs[texts[0]], segs[texts[1]]}
    assert by_id["story"].segments == set() and by_id["sadness"].segments == {segs[texts[2]]}
    assert out.last_run == out.rounds[1].run_id != r1.id
    assert len(provider.history) == 4  # each segment of the run coded once more
    p.close()


def test_rounds_refuse_zero_and_a_run_with_no_proposals(tmp_path: Path):
    from assistcode.errors import InputError
    from assistcode.inductive.rounds import constant_comparison

    p, r1 = _project_with_run(tmp_path, ["a b c", "d e f"], [[], []])
    with pytest.raises(InputError, match="must be 1 or more"):
        constant_comparison(p, str(r1.id), 0)
    with pytest.raises(InputError, match="proposed no codes"):
        constant_comparison(p, str(r1.id), 2)
    p.close()


def test_model_names_groups_from_their_members_and_caches_replies(tmp_path: Path):
    from assistcode.inductive.naming import Namer
    from assistcode.providers.mock import MockProvider

    found = [_cand(1, "Sense of beauty", "s1"), _cand(2, "sense of beauty", "s2"), _cand(3, "Beautiful looks", "s3"),
             _cand(4, "Plot twists", "s2"), _cand(5, "Great music", "s4"), _cand(6, "great music", "s1")]
    induced = induce_codebook(found, embeddings=False)
    assert [c.id for c in induced] == ["sense-of-beauty", "great-music", "beautiful-looks", "plot-twists"]
    provider = MockProvider().enqueue('{"name": "Aesthetic beauty", "definition": "Praise of how a game looks."}',
                                      "not json at all")
    cache = tmp_path / "names.json"
    report = Namer(provider, "m", cache).name(induced)
    assert (report.calls, report.groups_named, report.unusable) == (2, 1, 1)
    members = provider.history[0][-1]["content"]
    assert "- sense of beauty: about Sense of beauty" in members or "- Sense of beauty: about Sense of beauty" in members
    assert members.count("beauty:") == 1  # one line per distinct name
    assert [c.id for c in induced] == ["aesthetic-beauty", "great-music", "beautiful-looks", "plot-twists"]
    assert induced[0].definition == "Praise of how a game looks." and len(induced[0].members) == 2
    again = induce_codebook(found, embeddings=False)
    report = Namer(MockProvider(default=lambda m: pytest.fail("called again")), "m", cache).name(again)
    assert (report.calls, report.cache_hits, report.groups_named) == (0, 2, 1)
    assert again[0].name == "Aesthetic beauty"


def test_induce_cli_rounds_and_names_errors(run, tmp_path: Path):
    p, r1 = _project_with_run(tmp_path, ["The music was wonderful.", "Music again."], [["Music"], ["music"]])
    p.close()
    r = run("codebook", "induce", "1", "--rounds", "0", "--project", tmp_path / "p")
    assert r.code == 2 and "--rounds" in r.err
    r = run("codebook", "induce", "1", "--names", "model", "--no-embeddings", "--json", "--project", tmp_path / "p")
    assert r.code == 0, r.err
    out = r.json()
    assert [c["id"] for c in out["codes"]] == ["music"]  # the mock's reply names nothing: the member's name stays
    assert out["rounds"][0]["naming"]["unusable"] == 1 and "kept their central member's name" not in r.out


def test_inductive_suite_runs_compares_and_reports(run, tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "answers.csv").write_text(
        "why,codes\nThe music is great.,music\nLovely music here.,Music;story\nA story about loss.,story\n"
        "Music and a story.,music;story\n", encoding="utf-8")
    reply = json.dumps({"candidates": [{"name": "Music", "definition": "the soundtrack", "evidence": "", "confidence": 1}]})
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "name: t\nkind: inductive\ndata: {file: answers.csv, text_column: why, codes_column: codes, env: T_DATA_DIR}\n"
        f"coders:\n  - provider: mock\n    model: m\n    options: {{default: '{reply}'}}\n"
        "floor: null\nmin_units: 2\nembeddings: false\nn_boot: 0\n", encoding="utf-8")
    r = run("suite", "run", suite, "--project", tmp_path / "p")
    assert r.code == 2 and "needs its data: give --data DIR (or T_DATA_DIR=DIR)" in r.err
    r = run("suite", "run", suite, "--data", data, "--project", tmp_path / "p")
    assert r.code == 0, r.err
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    coder = report["coders"]["m / inductive, member names"]
    assert report["answers"] == 4 and coder["coverage"] == 0.5 and coder["precision"] == 1
    assert coder["unmatched_reference"] == ["story"]  # every code used in 2+ answers and not found is listed
    assert "| m / inductive, member names | 0.50 [0.09, 0.91] (1/2) | 1.00 [0.21, 1.00] |" in r.out
    assert "4 calls" in r.err
    assert coder["seconds_per_answer"] > 0 and coder["seconds_note"] == "this session's calls"
    r = run("suite", "run", suite, "--data", data, "--project", tmp_path / "p")
    assert r.code == 0 and "already done, no call" in r.err
    coder = json.loads((tmp_path / "p" / "report.json").read_text())["coders"]["m / inductive, member names"]
    assert coder["seconds_per_answer"] is None and "cached" in coder["seconds_note"]  # a cached session costs nothing
    r = run("suite", "report", suite, "--project", tmp_path / "p")
    assert r.code == 0 and "not found: story" in r.out
