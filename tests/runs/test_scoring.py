"""Scoring templates end to end: the mock provider, the OpenAI path against the real testing server (and LangChain's
ChatOpenAI on it), refusals, calibration into proposals, the cache."""
from __future__ import annotations

import json

import pytest

from assistcode.errors import AssistcodeError, InputError
from assistcode.providers.mock import MockProvider
from assistcode.runs import scores as sc
from assistcode.runs import store as rs
from assistcode.runs.engine import RunConfig, code_project
from assistcode.runs.scoring import CONTENT_FREE, MAX_OPTIONS
from assistcode.testing import Plan

from .conftest import make_project


def _mentioned(project) -> dict[str, set[str]]:
    """What the keyword rule says: the codes whose ids occur in each segment."""
    return {s.id: {c.id for c in project.codebook().codes if c.id in s.text.lower()} for s in project.segments()}


def _proposals(project, coder) -> dict[str, set[str]]:
    out = {s.id: set() for s in project.segments()}
    for seg, code in project.db.execute("SELECT segment_id, code FROM annotations WHERE coder = ?", (coder,)):
        out[seg].add(code)
    return out


def test_per_code_run_scores_every_code_and_proposes_over_threshold(coded_project):
    r = code_project(coded_project, RunConfig(template="score-per-code"))
    assert r.run.coder == "run1:mock:score-per-code@1"
    assert r.counts["ok"] == 24 and r.calls == 24 + len(CONTENT_FREE)
    m = sc.load_scores(coded_project.db, r.run.id)
    assert m.raw.shape == (24, 3) and m.prob is not None
    assert _proposals(coded_project, r.run.coder) == _mentioned(coded_project)
    rows = coded_project.db.execute("SELECT rationale, evidence, confidence FROM annotations WHERE coder = ?",
                                    (r.run.coder,)).fetchall()
    assert all(e is None and "threshold 0.50 (calibration: none)" in why and c == pytest.approx(0.9, abs=1e-6)
               for why, e, c in rows)
    assert coded_project.db.execute("SELECT count(*) FROM content_free_scores WHERE run_id = ?", (r.run.id,)).fetchone()[0] == 9
    manifest = rs.get_run(coded_project.db, r.run.id).manifest
    assert manifest["calibration"]["method"] == "none" and manifest["scoring"]["kind"] == "per-code"


def test_choice_run_is_exclusive_and_another_calibration_is_paid_for_once(coded_project):
    r = code_project(coded_project, RunConfig(template="score-choice", calibration="none"))
    m = sc.load_scores(coded_project.db, r.run.id)
    assert (m.raw.sum(axis=1) < 1).all() and (m.raw.sum(axis=1) > 0.1).all()  # P(option) per code; "none" has the rest
    proposed = _proposals(coded_project, r.run.coder)
    assert all(len(codes) <= 1 for codes in proposed.values())
    for seg, codes in _mentioned(coded_project).items():
        assert proposed[seg] == ({sorted(codes, key=[c.id for c in coded_project.codebook().codes].index)[0]} if codes else set())
    again = code_project(coded_project, RunConfig(template="score-choice"))  # contextual: the default for choice
    assert again.run.id != r.run.id and again.calls == 0 and again.cache_hits == 24 + len(CONTENT_FREE)
    assert rs.get_run(coded_project.db, again.run.id).manifest["calibration"]["content_free_inputs"] == 3


def test_cross_fitted_calibration_on_a_coder(coded_project):
    truth = _mentioned(coded_project)
    rows = [{"segment_id": s, "code": c, "coder": "ann"} for s, codes in truth.items() for c in codes]
    seen = [s for s in truth]
    coded_project.db.execute("INSERT INTO coders (name, kind, created_at) VALUES ('ann', 'human', 'now')")
    coded_project.db.executemany("INSERT INTO seen (segment_id, coder) VALUES (?, 'ann')", [(s,) for s in seen])
    coded_project.db.executemany("INSERT INTO annotations (segment_id, coder, code) VALUES (?, ?, ?)",
                                 [(r["segment_id"], r["coder"], r["code"]) for r in rows])
    r = code_project(coded_project, RunConfig(template="score-per-code", calibration="threshold", calibrate_with="ann"))
    cal = r.run.manifest["calibration"]
    assert cal["method"] == "threshold" and cal["labelled_units"] == 24 and cal["labelled_documents"] == 4
    assert _proposals(coded_project, r.run.coder) == truth


def test_labelled_calibration_without_labels_is_refused_before_any_call(coded_project):
    provider = MockProvider()
    with pytest.raises(InputError, match="needs labels"):
        code_project(coded_project, RunConfig(template="score-per-code", calibration="platt"), provider=provider)
    assert provider.history == [] and rs.list_runs(coded_project.db) == []
    with pytest.raises(InputError, match="scoring templates"):
        code_project(coded_project, RunConfig(template="deductive", calibration="contextual"))


def test_choice_refuses_more_than_20_options(tmp_path):
    project = make_project(tmp_path, n_docs=1, turns=2)
    codes = "\n".join(f"  - id: c{i}\n    name: Code {i}" for i in range(MAX_OPTIONS))
    (tmp_path / "big.yaml").write_text(f"name: big\ncodes:\n{codes}\n")
    project.import_codebook(tmp_path / "big.yaml")
    provider = MockProvider()
    with pytest.raises(InputError) as err:
        code_project(project, RunConfig(template="score-choice"), provider=provider)
    assert "20 codes" in str(err.value) and "score-per-code" in str(err.value)
    assert provider.history == [] and rs.list_runs(project.db) == []
    project.close()


@pytest.mark.parametrize("bad", [float("nan"), 1.2, -0.5])
def test_invalid_scores_are_refused_naming_segment_and_code(coded_project, bad):
    seg = coded_project.segments()[0]
    provider = MockProvider()
    provider.enqueue_scores(*([{"yes": 0.5, "no": 0.5}] * 9))  # the content-free inputs
    provider.enqueue_scores({"yes": 0.4, "no": 0.6}, {"yes": bad, "no": 0.1})
    with pytest.raises(InputError) as err:
        code_project(coded_project, RunConfig(template="score-per-code", concurrency=1), provider=provider,
                     segment_ids=[seg.id])
    assert seg.id in str(err.value) and "'leadership'" in str(err.value)
    assert coded_project.db.execute("SELECT count(*) FROM scores").fetchone()[0] == 0


# -- the OpenAI path, against the real testing server ----------------------------------------------------------------

def _http(server, **kw) -> RunConfig:
    return RunConfig(provider="openai", model="fake", base_url=server.base_url, api_key="sk-test", timeout=5.0,
                     backoff_base=0.01, backoff_cap=0.05, **kw)


def test_openai_logprobs_path(coded_project, server):
    r = code_project(coded_project, _http(server, template="score-per-code", concurrency=4))
    assert r.counts["ok"] == 24 and server.calls == (24 + len(CONTENT_FREE)) * 3
    assert _proposals(coded_project, r.run.coder) == _mentioned(coded_project)
    m = sc.load_scores(coded_project.db, r.run.id)
    # 0.9 x 0.98 for yes, 0.1 x 0.98 for no, both variants summed: normalised over yes/no, P(yes) is 0.9 exactly
    assert sorted(set(m.raw.round(6).ravel())) == [0.1, 0.9]
    assert r.counts["completion_tokens"] == 24 * 3


def test_an_endpoint_without_logprobs_is_one_clear_error_after_one_call(coded_project, server):
    server.set_plan(Plan(no_logprobs=True))
    with pytest.raises(AssistcodeError) as err:
        code_project(coded_project, _http(server, template="score-per-code", concurrency=8))
    assert server.calls == 1  # the probe alone, though a segment's three questions would go together
    assert server.base_url in str(err.value) and "score-per-code" in str(err.value) and "log-probabilities" in str(err.value)
    assert err.value.exit_code == 2 and rs.list_runs(coded_project.db) == []


def _langchain(server, template: str) -> RunConfig:
    # one run per server: ChatOpenAI keeps an async HTTP client per base URL, bound to the first run's event loop
    return RunConfig(provider="langchain", model="fake", template=template,
                     provider_options={"chat_model": "langchain_openai:ChatOpenAI", "base_url": server.base_url,
                                       "api_key": "sk-test", "max_retries": 0})


def test_langchain_chat_openai_reads_logprobs(coded_project, server):
    r = code_project(coded_project, _langchain(server, "score-choice"))
    assert r.counts["ok"] == 24 and server.calls == 24 + len(CONTENT_FREE)
    assert _proposals(coded_project, r.run.coder) == {
        s: ({sorted(c, key=["safety", "leadership", "workload"].index)[0]} if c else set())
        for s, c in _mentioned(coded_project).items()}


def test_langchain_without_logprobs_is_one_clear_error_after_one_call(coded_project, server):
    server.set_plan(Plan(no_logprobs=True))
    with pytest.raises(AssistcodeError, match=r"'score-per-code'.*http://127\.0\.0\.1:\d+/v1 gave none \(.*ChatOpenAI"):
        code_project(coded_project, _langchain(server, "score-per-code"))
    assert server.calls == 1


def test_cli_scoring_run_and_refusals(run, coded_project):
    proj = coded_project.path
    r = run("code", "--provider", "mock", "--model", "kw", "--template", "score-per-code", "--dry-run", "--project", proj)
    assert r.code == 0 and "Dry run: 24 segments in 27 calls (0 already cached" in r.out
    r = run("code", "--provider", "mock", "--model", "kw", "--template", "score-per-code", "--calibration",
            "contextual", "--project", proj)
    assert r.code == 0 and "Ran run1:kw:score-per-code@1: 24 coded, 0 failed" in r.out
    shown = json.loads(run("runs", "show", "1", "--project", proj).out)
    assert shown["manifest"]["calibration"]["method"] == "contextual"
    r = run("code", "--provider", "mock", "--model", "kw", "--template", "score-per-code", "--calibration",
            "isotonic", "--project", proj)
    assert r.code == 2 and "needs labels" in r.err


def test_choice_without_labels_proposes_the_most_probable_option_none_included(coded_project):
    segs = coded_project.segments()[:2]
    provider = MockProvider()
    provider.enqueue_scores(*([{"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25}] * 3))  # content-free inputs
    provider.enqueue_scores({"A": 0.1, "B": 0.4, "C": 0.2, "D": 0.3}, {"A": 0.3, "B": 0.1, "C": 0.2, "D": 0.4})
    r = code_project(coded_project, RunConfig(template="score-choice", calibration="none", concurrency=1), provider=provider,
                     segment_ids=[s.id for s in segs])
    got = _proposals(coded_project, r.run.coder)
    assert got[segs[0].id] == {"leadership"} and got[segs[1].id] == set()  # B at 0.4 < 0.5 wins; then "none" wins
    why = coded_project.db.execute("SELECT rationale FROM annotations WHERE coder = ?", (r.run.coder,)).fetchone()[0]
    assert "P(leadership) 0.40 >= threshold 0.30" in why


def test_local_without_a_template_uses_the_best_offline_method(tmp_path):
    from assistcode.runs.scoring import best_local_template

    project = make_project(tmp_path, n_docs=1, turns=2)
    assert best_local_template(project.codebook()) == "score-per-code"
    (tmp_path / "excl.yaml").write_text("exclusive: true\n" + (tmp_path / "cb.yaml").read_text())
    project.import_codebook(tmp_path / "excl.yaml")
    assert best_local_template(project.codebook()) == "score-choice"
    project.close()


def test_labels_with_several_codes_on_an_exclusive_codebook_are_warned_about(run, coded_project, tmp_path):
    (tmp_path / "excl.yaml").write_text("exclusive: true\n" + (tmp_path / "cb.yaml").read_text())
    coded_project.import_codebook(tmp_path / "excl.yaml")
    segs = [s.id for s in coded_project.segments()]
    coded_project.db.execute("INSERT INTO coders (name, kind, created_at) VALUES ('ann', 'human', 'now')")
    coded_project.db.executemany("INSERT INTO seen (segment_id, coder) VALUES (?, 'ann')", [(s,) for s in segs])
    coded_project.db.executemany("INSERT INTO annotations (segment_id, coder, code) VALUES (?, 'ann', ?)",
                                 [(s, "safety") for s in segs] + [(s, "workload") for s in segs[:2]])
    r = run("code", "--provider", "mock", "--model", "kw", "--template", "score-choice", "--calibrate-with", "ann",
            "--project", coded_project.path)
    assert r.code == 0 and "warning: the codebook is exclusive, yet ann put several codes on 2 unit(s)" in r.err
