"""Transcription-service formats: detection, headers out of the text, speakers, start times, front matter, roles,
bad input counted; the same interview exported as .txt, .docx and .vtt gives the same turns."""
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistcode.corpus import context_text, iter_segments, preceding
from assistcode.model import Document
from assistcode.project import Project
from assistcode.readers import read_path
from assistcode.segmenters import segment, transcript_turns
from assistcode.transcripts import FORMATS, parse

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"

# The one interview every fixture holds: speaker, start time (s), text (whitespace aside), role.
INTERVIEW = [
    ("Ana Silva", 13.0, "Thanks for joining. What do you do with the data?", "interviewer"),
    ("Ben Ortiz", 20.0, "I keep it on a shared drive. Sometimes on paper.", "participant"),
    ("Ana Silva", 95.0, "Why paper?", "interviewer"),
    ("Ben Ortiz", 3723.0, "Because the archive asks for it.", "participant"),
]
SPEAKER_N = {"Ana Silva": "Speaker 1", "Ben Ortiz": "Speaker 2"}


def read_turns(path: Path, **options):
    source = next(iter(read_path(path)))
    text = source.document.text
    if source.turns is not None:
        from assistcode.corpus import _parse

        parsed = _parse(source.document, source, "turn", options, path.name)
    else:
        parsed = transcript_turns(text, "turn", where=path.name, **options)
    return text, parsed


def normalised(text, parsed):
    return [(sp, t, " ".join(text[s:e].split()), r) for s, e, sp, t, r in parsed.turns]


@pytest.mark.parametrize("name, shape", [
    ("otter.txt", "otter"), ("zoom.txt", "zoom"), ("zoom_timed.txt", "timed"), ("rev.txt", "rev"),
    ("trint.txt", "trint"), ("descript.txt", "trint"), ("nvivo.txt", "timed"), ("maxqda.txt", "timed"),
    ("maxqda_hash.txt", "maxqda"), ("plain.txt", "plain"), ("teams.vtt", "vtt"), ("zoom.vtt", "vtt"),
])
def test_every_format_gives_the_same_turns(name, shape):
    text, parsed = read_turns(FIXTURES / name)
    assert parsed.format == shape
    want = INTERVIEW if shape != "plain" else [(sp, None, t, r) for sp, _, t, r in INTERVIEW]
    assert normalised(text, parsed) == want
    assert parsed.warnings == []
    for s, e, *_ in parsed.turns:  # offsets: the header is never part of the text
        assert text[s:e] == text[s:e].strip() and ":" not in text[s:e][:3]


def test_rev_numbered_speakers():
    text, parsed = read_turns(FIXTURES / "rev_speakers.txt")
    assert parsed.format == "rev"
    assert normalised(text, parsed) == [(SPEAKER_N[sp], t, x, r) for sp, t, x, r in INTERVIEW]


def test_f4_trailing_stamps_end_a_turn_and_start_the_next():
    text, parsed = read_turns(FIXTURES / "f4_trailing.txt")
    got = normalised(text, parsed)
    assert [g[2] for g in got] == [x for _, _, x, _ in INTERVIEW]  # the #..# stamp is not in the text
    assert [g[1] for g in got] == [None, 20.0, 95.0, 3723.0]


def test_otter_front_matter_is_metadata_never_a_turn():
    text, parsed = read_turns(FIXTURES / "otter.txt")
    fm = parsed.front_matter
    assert fm["title"] == "Data practices interview 07"
    assert fm["keywords"] == ["shared drive", "archive", "paper"]
    assert fm["speakers"] == ["Ana Silva", "Ben Ortiz"]
    assert fm["footer"] == "Transcribed by https://otter.ai"
    assert all("SUMMARY" not in text[s:e] and "otter.ai" not in text[s:e] for s, e, *_ in parsed.turns)


def _docx(tmp_path: Path, name: str, paragraphs: list[str]) -> Path:
    import docx

    d = docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    path = tmp_path / name
    d.save(str(path))
    return path


@pytest.mark.parametrize("txt", ["otter.txt", "zoom.txt", "rev.txt", "trint.txt", "nvivo.txt", "maxqda_hash.txt"])
def test_docx_export_gives_the_same_turns_as_the_txt(tmp_path, txt):
    lines = (FIXTURES / txt).read_text(encoding="utf-8").split("\n")
    path = _docx(tmp_path, txt.replace(".txt", ".docx"), [ln for ln in lines if ln.strip()])
    t_text, t_parsed = read_turns(FIXTURES / txt)
    d_text, d_parsed = read_turns(path)
    assert normalised(d_text, d_parsed) == normalised(t_text, t_parsed) == INTERVIEW
    assert d_parsed.front_matter.get("keywords") == t_parsed.front_matter.get("keywords")


@pytest.mark.parametrize("header", ["{name}  {mm}", "{name} {hh}"])
def test_teams_docx(tmp_path, header):
    paras = ["Project interview", "12 May 2026, 10:03"]
    for sp, t, x, _ in INTERVIEW:
        h, rest = divmod(int(t), 3600)
        m, s = divmod(rest, 60)
        mm = f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
        paras += [header.format(name=sp, mm=mm, hh=f"{h:02d}:{m:02d}:{s:02d}"), x]
    text, parsed = read_turns(_docx(tmp_path, "teams.docx", paras))
    assert normalised(text, parsed) == INTERVIEW
    assert parsed.front_matter["title"] == "Project interview"


def test_forced_format():
    text = (FIXTURES / "trint.txt").read_text(encoding="utf-8")
    assert parse(text, "trint").format == "trint"
    plain = parse(text, "plain")  # forced plain: the timestamps stay in the `Name:` labels' prefix
    assert [t[2] for t in plain.turns] == [sp for sp, *_ in INTERVIEW]
    missing = parse("Ana: hi\nBen: hello", "rev", where="x.txt")
    assert missing.warnings == ["x.txt: no rev header found; read as plain `Name:` turns"]
    with pytest.raises(Exception, match="unknown transcript format 'otr'"):
        parse("x", "otr")
    assert set(FORMATS) >= {"otter", "teams", "zoom", "rev", "trint", "descript", "nvivo", "maxqda", "plain"}


def test_bad_input_still_cuts_turns_and_counts_each_case():
    text, parsed = read_turns(FIXTURES / "bad.txt")
    got = normalised(text, parsed)
    assert [(sp, t, x) for sp, t, x, _ in got] == [
        ("Ana Silva", 13.0, "Thanks for joining. What do you do with the data?"),
        ("Ben Ortiz", 18.0, "I keep it on a shared drive."),
        ("Ana Silva", 95.0, "Why paper?"),
        (None, 3723.0, "Because the archive asks for it."),
    ]
    w = parsed.warnings
    assert "bad.txt:2: a header with no text after it (Ben Ortiz); no turn to code" in w
    assert "bad.txt:3: time 00:00:18 goes back from the turn before" in w
    assert "bad.txt:4: a rev header in a trint transcript (mixed formats); the turn is cut there" in w
    assert "bad.txt:5: a header with no speaker name; the turn is cut with no speaker" in w
    assert len(w) == 4


def test_roles_inferred_named_and_labelled():
    text = (FIXTURES / "rev_speakers.txt").read_text(encoding="utf-8")
    parsed = transcript_turns(text)
    assert [t[4] for t in parsed.turns] == ["interviewer", "participant"] * 2
    assert parsed.roles["how"] == "inferred" and parsed.roles["questions"] == {"Speaker 1": 2, "Speaker 2": 0}
    named = transcript_turns(text, interviewers=["speaker 2"])  # overrides the inference
    assert [t[4] for t in named.turns] == ["participant", "interviewer"] * 2 and named.roles["how"] == "named"
    labelled = transcript_turns("I: Is it? I wonder?\nR: Yes? Maybe?\nR: Really?\nI: ok")
    assert [t[4] for t in labelled.turns] == ["interviewer", "participant", "participant", "interviewer"]
    assert labelled.roles["how"] == "label"
    tie = transcript_turns("Ann: why?\nBob: how?\nAnn: so.\nBob: yes.")
    assert tie.roles["how"] == "none" and {t[4] for t in tie.turns} == {"participant"}
    assert transcript_turns("just text").turns[0][4] is None


def test_import_stores_times_roles_front_matter_and_context(tmp_path):
    project = Project.init(tmp_path / "p")
    report = project.import_corpus([FIXTURES / "otter.txt", FIXTURES / "bad.txt"])
    assert report.formats == {"otter": 1, "trint": 1}
    assert sum("bad.txt" in w for w in report.warnings) == 4
    segs = list(iter_segments(project.db))
    otter = [s for s in segs if s.text.startswith(("Thanks", "I keep it on a shared drive.\n", "Why", "Because"))][:4]
    assert [(s.speaker, s.start_time, s.role) for s in otter] == [(sp, t, r) for sp, t, _, r in INTERVIEW]
    meta = project.db.execute("SELECT metadata FROM documents WHERE title = 'otter'").fetchone()[0]
    assert '"keywords": ["shared drive", "archive", "paper"]' in meta and '"how": "inferred"' in meta
    ctx = preceding(segs, 1)
    assert ctx[otter[0].id] == [] and ctx[otter[1].id] == [otter[0]]
    assert context_text(ctx[otter[1].id]) == "Ana Silva (interviewer): " + otter[0].text
    assert [s.id for s in preceding(segs, 2)[otter[3].id]] == [otter[1].id, otter[2].id]
    project.close()


def test_tables_are_one_row_one_segment(tmp_path):
    csv = tmp_path / "survey.csv"
    csv.write_text('id,text\n1,"First paragraph.\n\nSecond paragraph."\n2,"I: a question?\nR: an answer"\n',
                   encoding="utf-8")
    project = Project.init(tmp_path / "p")
    report = project.import_corpus([csv])
    segs = list(iter_segments(project.db))
    assert report.segments_added == 2 and report.formats == {"row": 2}
    assert segs[0].text == "First paragraph.\n\nSecond paragraph." and {s.role for s in segs} == {None}
    project.close()
    again = Project.init(tmp_path / "q")
    assert again.import_corpus([csv], segmenter="turn").segments_added == 4  # asked for: paragraphs, turns
    again.close()


# Headers of every shape, with names, times and text, for the offset invariant.
_headers = st.sampled_from([
    "Ana Silva  00:13\n", "[Ben] 00:00:20\n", "00:01:35 Ana: ", "Ben (01:02:03):\n", "[00:00:05] Ana: ",
    "#00:00:07-0# Ben: ", "Ben 01:02:03\n", "00:00:09 Speaker 1\n", "I: ", "  00:13\n", "[00:01:02] : ", " #00:00:12-5#",
])
_bodies = st.lists(st.sampled_from(list("aZ é.?…:\n\t #[]()") + ["\n\n", "Why?", "Transcribed by https://otter.ai"]),
                   max_size=15).map("".join)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.tuples(_headers, _bodies), max_size=8), lead=_bodies,
       method=st.sampled_from(["turn", "sentence"]))
def test_offsets_invariant_on_service_formats(parts, lead, method):
    text = lead + "".join(h + b + "\n" for h, b in parts)
    doc = Document(text)
    segs = segment(doc, method)
    previous_end = 0
    for s in segs:
        assert doc.text[s.start:s.end] == s.text and s.text == s.text.strip() and s.text
        assert s.start >= previous_end
        previous_end = s.end
    parsed = transcript_turns(text, method)
    assert [(s, e, sp) for s, e, sp, _, _ in parsed.turns] == [(s.start, s.end, s.speaker) for s in segs]


CODEBOOK = "name: t\ncodes:\n  - {id: paper, name: Paper, definition: Talk of paper records.}\n"


def _interview_project(tmp_path):
    (tmp_path / "cb.yaml").write_text(CODEBOOK)
    project = Project.init(tmp_path / "p")
    project.import_corpus([FIXTURES / "otter.txt"])
    project.import_codebook(tmp_path / "cb.yaml")
    return project


def test_interview_defaults_skip_the_interviewer_and_show_the_question(tmp_path):
    from assistcode.providers.mock import MockProvider
    from assistcode.runs.engine import Engine, RunConfig, code_project
    from assistcode.runs.selection import select_segments

    project = _interview_project(tmp_path)
    config = RunConfig(provider="mock", model="kw", context_turns=None, skip_roles=None)
    result = code_project(project, config, provider=MockProvider("kw"))
    assert result.counts["ok"] == 2  # Ben's two answers; Ana's questions are context only
    manifest = result.run.manifest
    assert manifest["selection"] == {"context_turns": 1, "skip_roles": ["interviewer"], "skip_speakers": []}
    segs = project.segments()
    engine = Engine(project.db, project.codebook(), RunConfig(provider="mock", model="kw", context_turns=1))
    engine.contexts = {segs[1].id: context_text([segs[0]])}
    prompt = engine.render([segs[1]]).text
    assert 'Context: the turn before the segment' in prompt and segs[0].text in prompt
    assert prompt.index(segs[0].text) < prompt.index(segs[1].text)
    plain = Engine(project.db, project.codebook(), RunConfig(provider="mock", model="kw")).render([segs[1]]).text
    assert segs[0].text not in plain and "Context" not in plain
    fingerprints = {Engine(project.db, project.codebook(), RunConfig(provider="mock", model="kw", context_turns=n))
                    .fingerprint(segs) for n in (0, 1, 2)}
    assert len(fingerprints) == 3  # the setting is part of what a run is
    assert len(select_segments(segs, RunConfig(skip_roles=("none",), skip_speakers=("ANA SILVA",)))) == 2
    with pytest.raises(Exception, match="unknown role 'boss'"):
        select_segments(segs, RunConfig(skip_roles=("boss",)))
    project.close()


def test_cli_import_and_code_with_roles_and_skips(run, tmp_path):
    import json

    proj = tmp_path / "p"
    (tmp_path / "cb.yaml").write_text(CODEBOOK)
    assert run("init", proj).code == 0
    r = run("import", FIXTURES / "rev_speakers.txt", FIXTURES / "bad.txt", "--project", proj)
    assert r.code == 0 and "formats: 1 rev, 1 trint" in r.out
    assert "note: rev_speakers.txt: interviewer: Speaker 1 (asked the most questions; turns with a question: " \
           "Speaker 1 2, Speaker 2 0); override with --interviewer NAME" in r.err
    assert r.err.count("warning: bad.txt:") == 4
    assert run("codebook", "import", tmp_path / "cb.yaml", "--project", proj).code == 0
    code = ("code", "--provider", "mock", "--model", "kw", "--json", "--project", proj)
    r = run(*code)
    assert json.loads(r.out)["counts"]["ok"] == 4  # all but the interviewer: 2 in each file (1 unnamed)
    assert "note: interviews: the interviewer turns left uncoded (--skip-role none codes them) and 1 preceding turn " \
           "shown as context" in r.err
    assert json.loads(run(*code, "--skip-role", "none").out)["counts"]["ok"] == 8
    assert json.loads(run(*code, "--skip-role", "none", "--skip-speaker", "speaker 2").out)["counts"]["ok"] == 6
    r = run(*code, "--skip-speaker", "Nobody")
    assert r.code == 2 and "no speaker named 'nobody'" in r.err and len(r.err.strip().splitlines()) == 1
    named = tmp_path / "q"
    run("init", named)
    r = run("import", FIXTURES / "rev_speakers.txt", "--interviewer", "Speaker 2", "--transcript-format", "rev",
            "--project", named)
    assert r.code == 0 and "note:" not in r.err
    opened = Project.init(named)
    roles = {s.speaker: s.role for s in opened.segments()}
    opened.close()
    assert roles == {"Speaker 1": "participant", "Speaker 2": "interviewer"}
    r = run("import", FIXTURES / "plain.txt", "--transcript-format", "otr", "--project", named)
    assert r.code == 2


def test_an_interviewer_named_but_absent_is_said_so():
    from assistcode.transcripts import describe_roles

    parsed = transcript_turns((FIXTURES / "rev.txt").read_text(encoding="utf-8"), interviewers=["Carla"])
    assert {t[4] for t in parsed.turns} == {"participant"}
    assert describe_roles("rev.txt", parsed.roles) == (
        "rev.txt: interviewer: no one (no --interviewer name speaks here); override with --interviewer NAME")


def test_segments_export_carries_start_time_and_role(run, tmp_path):
    import json

    proj = tmp_path / "p"
    run("init", proj)
    assert run("import", FIXTURES / "zoom.txt", "--project", proj).code == 0
    rows = [json.loads(line) for line in run("segments", "--format", "jsonl", "--project", proj).out.splitlines()]
    assert [(r["speaker"], r["start_time"], r["role"]) for r in rows] == [(sp, t, r) for sp, t, _, r in INTERVIEW]


def test_sentences_keep_their_turns_time_and_role(tmp_path):
    project = Project.init(tmp_path / "p")
    project.import_corpus([FIXTURES / "teams.vtt", FIXTURES / "rev.txt"], segmenter="sentence")
    segs = project.segments()
    first = [(s.text, s.speaker, s.start_time, s.role) for s in segs[:3]]
    assert first == [("Thanks for joining.", "Ana Silva", 13.0, "interviewer"),
                     ("What do you do with the data?", "Ana Silva", 13.0, "interviewer"),
                     ("I keep it on a shared drive.", "Ben Ortiz", 20.0, "participant")]
    assert len(segs) == 2 * 6
    project.close()


def test_batch_template_shows_each_segments_context(tmp_path):
    from assistcode.runs.engine import Engine, RunConfig

    project = _interview_project(tmp_path)
    segs = project.segments()
    engine = Engine(project.db, project.codebook(), RunConfig(provider="mock", model="kw", template="deductive-batch"))
    engine.contexts = {segs[1].id: context_text([segs[0]]), segs[3].id: context_text([segs[2]])}
    prompt = engine.render([segs[1], segs[3]]).text
    assert "Context before segment 1 (do not code it)" in prompt and "Context before segment 2" in prompt
    assert prompt.index("Ana Silva (interviewer): Why paper?") < prompt.index(segs[3].text)
    project.close()


def test_time_marks_in_a_typed_transcript_leave_its_labels_alone():
    text = "[00:05:12]\nInterviewer: How did it start?\nP1: Slowly.\n[00:06:40]\nInterviewer: And then?\nP1: Fast."
    parsed = transcript_turns(text)
    assert parsed.format == "plain" and parsed.warnings == []
    assert [t[2] for t in parsed.turns] == [None, "Interviewer", "P1", "Interviewer", "P1"]
