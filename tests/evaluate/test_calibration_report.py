import json

import numpy as np
import pytest

from assistcode.calibration import calibrate
from assistcode.evaluate import from_store
from assistcode.evaluate.calibration import summarise
from assistcode.project import Project
from assistcode.runs import store as rs
from assistcode.runs.replies import Proposal
from assistcode.runs.scores import load_scores, record_scores, store_calibration

from ..conftest import seed_project

GOLD = "McKee et al. 2013"


def test_summarise_by_hand():
    nan = np.nan
    prob = np.array([[0.9, 0.2], [0.7, 0.4], [0.15, nan]])
    outcome = np.array([[1, 0], [0, 1], [0, 1]])
    s = summarise(prob, outcome, ["a", "b"])
    # pairs: (0.9, 1), (0.2, 0), (0.7, 0), (0.4, 1), (0.15, 0); the NaN probability is left out
    # Brier = (0.01 + 0.04 + 0.49 + 0.36 + 0.0225) / 5 = 0.9225 / 5
    assert s["n"] == 5 and s["brier"] == pytest.approx(0.9225 / 5)
    # bins: [0.1,0.2): 0.15 vs 0 -> 0.15 ; [0.2,0.3): 0.2 vs 0 -> 0.2 ; [0.4,0.5): 0.4 vs 1 -> 0.6 ;
    #       [0.7,0.8): 0.7 vs 0 -> 0.7 ; [0.9,1]: 0.9 vs 1 -> 0.1 ; ECE = (0.15 + 0.2 + 0.6 + 0.7 + 0.1) / 5
    assert s["ece"] == pytest.approx(1.75 / 5)
    a, b = s["per_code"]
    # code a: (0.9, 1), (0.7, 0), (0.15, 0): Brier (0.01 + 0.49 + 0.0225) / 3 ; ECE (0.1 + 0.7 + 0.15) / 3
    assert a["n"] == 3 and a["brier"] == pytest.approx(0.5225 / 3) and a["ece"] == pytest.approx(0.95 / 3)
    assert a["prevalence"] == pytest.approx(1 / 3) and a["mean_prob"] == pytest.approx(1.75 / 3)
    # code b: (0.2, 0), (0.4, 1): Brier (0.04 + 0.36) / 2 ; ECE (0.2 + 0.6) / 2
    assert b["n"] == 2 and b["brier"] == pytest.approx(0.2) and b["ece"] == pytest.approx(0.4)
    assert sum(r["n"] for r in s["reliability"]) == 5


def _project_with_runs(path):
    """The seed with a scoring run (P 0.8 where the authors coded, 0.3 elsewhere) and a generative run (one proposal
    per quote, confidence 0.9, right on the even quotes)."""
    proj = seed_project(path)
    with Project(proj) as p:
        codebook = p.codebook()
        codes = [c.id for c in codebook.codes]
        gold = from_store(p.db, [GOLD], codebook)
        truth = dict(zip(gold.units, gold.sets[0]))
        segments = p.segments()
        scoring = rs.create_run(p.db, "m:score-per-code@1", "fp-scores", {"provider": {"provider": "test"}})
        for seg in segments:
            rs.record_segment(p.db, scoring, seg.id, status="ok")
            record_scores(p.db, scoring.id, seg.id, {c: 0.8 if c in truth[seg.id] else 0.3 for c in codes})
        matrix = load_scores(p.db, scoring.id)
        # a threshold of 0.9: the run proposes nothing, so its probabilities are checked against the reference's
        # codes, not its own decisions
        store_calibration(p.db, scoring, codebook, matrix,
                          calibrate(matrix.raw, method="none", codes=matrix.codes, default_threshold=0.9))
        rs.update_run(p.db, scoring.id, "finished", scoring.manifest, True)
        generative = rs.create_run(p.db, "m:deductive@1", "fp-gen", {"provider": {"provider": "test"}})
        for i, seg in enumerate(segments):
            right = sorted(truth[seg.id])[0]
            code = right if i % 2 == 0 else next(c for c in codes if c != right)
            rs.record_segment(p.db, generative, seg.id, status="ok", proposals=[Proposal(code, "r", confidence=0.9)])
        rs.update_run(p.db, generative.id, "finished", generative.manifest, True)
        positives = sum(len(s) for s in truth.values())
    return proj, len(segments), len(codes), positives


def test_eval_reports_brier_ece_and_a_reliability_diagram(run, tmp_path):
    proj, n_seg, n_codes, positives = _project_with_runs(tmp_path / "p")
    assert n_seg == 20 and n_codes == 3 and positives == 20  # one theme per quote
    html = tmp_path / "report.html"
    out = run("eval", "--project", proj, "--n-boot", "0", "--json", "--html", html)
    assert out.code == 0, out.err
    entries = {e["coder"]: e for e in json.loads(out.out)["calibration"]}
    scoring, generative = entries["run1:m:score-per-code@1"], entries["run2:m:deductive@1"]
    # scoring run: 60 pairs; the 20 coded pairs at 0.8 (bin [0.8, 0.9), frequency 1), the 40 others at 0.3 (frequency 0)
    # Brier = (20 * 0.2^2 + 40 * 0.3^2) / 60 = (0.8 + 3.6) / 60 ; ECE = (20 * 0.2 + 40 * 0.3) / 60 = 16 / 60
    assert scoring["n"] == 60 and scoring["reference"] == GOLD
    assert scoring["brier"] == pytest.approx(4.4 / 60) and scoring["ece"] == pytest.approx(16 / 60)
    assert scoring["probability"].startswith("P(code), calibrated")
    # calibrated with `none`: the raw scores on the same pairs give the same figures
    assert scoring["uncalibrated"] == {"brier": pytest.approx(4.4 / 60), "ece": pytest.approx(16 / 60)}
    assert "uncalibrated" not in generative
    assert len(scoring["per_code"]) == 3 and sum(c["n"] for c in scoring["per_code"]) == 60
    bins = {round(b["lower"], 1): b for b in scoring["reliability"]}
    assert bins[0.8]["n"] == 20 and bins[0.8]["frequency"] == 1.0 and bins[0.3]["n"] == 40
    # generative run: 20 proposals at 0.9, 10 right: Brier = (10 * 0.01 + 10 * 0.81) / 20 = 0.41 ; ECE = |0.9 - 0.5|
    assert generative["n"] == 20 and generative["probability"].startswith("self-reported")
    assert generative["brier"] == pytest.approx(0.41) and generative["ece"] == pytest.approx(0.4)
    page = html.read_text(encoding="utf-8")
    assert page.count('aria-label="Reliability: ') == 2 and "Calibration against McKee et al. 2013" in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    table = run("eval", "--project", proj, "--n-boot", "0")
    assert "Calibration against" in table.out and "0.267" in table.out  # the scoring run's ECE, 16/60


def test_a_run_calibrated_on_the_reference_says_so(run, tmp_path):
    from assistcode.similarity import run_similarity

    pytest.importorskip("onnxruntime")
    proj = seed_project(tmp_path / "p")
    with Project(proj) as p:
        try:
            run_similarity(p, calibrate_with=GOLD)
        except Exception as exc:  # the similarity extra is not installed
            pytest.skip(str(exc))
    out = run("eval", "--project", proj, "--n-boot", "0", "--json")
    (entry,) = json.loads(out.out)["calibration"]
    assert entry["calibrated_on"] == GOLD and "out-of-fold" in entry["note"]
    assert entry["probability"] == "P(code), calibrated (platt)" and entry["n"] == 60
    assert 0 <= entry["ece"] <= 1 and 0 <= entry["brier"] <= 1
    assert "uncalibrated" not in entry  # cosines are no probabilities: nothing raw to compare
    with Project(proj) as p:
        manifest = json.loads(p.db.execute("SELECT manifest FROM runs").fetchone()[0])
    # national-level (4 of the 20 quotes) has under 3 positives in one fold's training part: counted, and reported
    assert entry["fallbacks"] == manifest["calibration"]["fallbacks"] == {"national-level": 1}
    table = run("eval", "--project", proj, "--n-boot", "0")
    assert "national-level (1 fold)" in table.out


def test_low_confidence_signal_reads_calibrated_probabilities(tmp_path):
    from assistcode import review

    proj, _, _, _ = _project_with_runs(tmp_path / "p")
    with Project(proj) as p:
        # the scoring run proposes nothing (threshold 0.9), yet every quote holds a code at P 0.8 it left out:
        # the decision "not this code" is right with probability 0.2, so the signal is 1 - 0.2 = 0.8 (with only the
        # proposals' confidences there would be nothing to flag)
        review.enqueue(p.db, "run1:m:score-per-code@1", signals=("confidence",), audit=0.0)
        rows = p.db.execute("SELECT priority, reasons FROM review_items WHERE coder = 'run1:m:score-per-code@1'").fetchall()
        assert len(rows) == 20 and all(r[0] == pytest.approx(0.8) and json.loads(r[1]) == ["confidence"] for r in rows)
        # the generative run has no per-code probabilities: its proposals' confidence, 1 - 0.9
        review.enqueue(p.db, "run2:m:deductive@1", signals=("confidence",), audit=0.0)
        rows = p.db.execute("SELECT priority FROM review_items WHERE coder = 'run2:m:deductive@1'").fetchall()
        assert len(rows) == 20 and all(r[0] == pytest.approx(0.1) for r in rows)
