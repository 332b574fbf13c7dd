"""The scores store: raw scores in, matrices out, calibrated proposals written in one transaction."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from assistcode.errors import InputError
from assistcode.runs import scores as sc
from assistcode.runs import store as rs

from .conftest import make_project


@dataclass
class _Cal:
    prob: np.ndarray
    threshold: np.ndarray
    decisions: np.ndarray
    method: str = "threshold"
    manifest: dict = field(default_factory=lambda: {"method": "threshold", "units": 2})


@pytest.fixture
def proj(tmp_path):
    p = make_project(tmp_path, n_docs=1, turns=3)
    yield p
    p.close()


def _run(p):
    return rs.create_run(p.db, "m:score-per-code@1", "fp", {"template": {"name": "score-per-code"}})


def test_record_and_load_in_corpus_order(proj):
    run = _run(proj)
    segs = [s.id for s in proj.segments()]
    sc.record_scores(proj.db, run.id, segs[2], {"workload": 0.2, "safety": 0.9})
    sc.record_scores(proj.db, run.id, segs[0], {"safety": 0.1})
    m = sc.load_scores(proj.db, run.id)
    assert m.segment_ids == [segs[0], segs[2]]
    assert m.codes == ["safety", "workload"]
    assert m.raw[1].tolist() == [0.9, 0.2]
    assert m.raw[0, 0] == 0.1 and math.isnan(m.raw[0, 1])
    assert m.prob is None


@pytest.mark.parametrize("bad", [float("nan"), 1.5, -0.1])
def test_bad_scores_refused_naming_segment_and_code(proj, bad):
    run = _run(proj)
    seg = proj.segments()[0].id
    with pytest.raises(InputError) as err:
        sc.record_scores(proj.db, run.id, seg, {"safety": 0.5, "leadership": bad})
    assert seg in str(err.value) and "leadership" in str(err.value)
    assert proj.db.execute("SELECT count(*) FROM scores").fetchone()[0] == 0


def test_cosine_bounds(proj):
    run = _run(proj)
    seg = proj.segments()[0].id
    sc.record_scores(proj.db, run.id, seg, {"safety": -0.4}, bounds=(-1, 1))
    assert sc.load_scores(proj.db, run.id).raw[0, 0] == -0.4


def test_store_calibration_replaces_proposals(proj):
    run = _run(proj)
    segs = [s.id for s in proj.segments()][:2]
    rs.record_segment(proj.db, run, segs[0], status="ok")
    rs.record_segment(proj.db, run, segs[1], status="ok")
    proj.db.execute("INSERT INTO annotations (segment_id, coder, code, run_id) VALUES (?, ?, 'workload', ?)",
                    (segs[0], run.coder, run.id))
    sc.record_scores(proj.db, run.id, segs[0], {"safety": 0.9, "workload": 0.1})
    sc.record_scores(proj.db, run.id, segs[1], {"safety": 0.3, "workload": 0.6})
    m = sc.load_scores(proj.db, run.id)
    prob = np.array([[0.83, 0.05], [0.2, 0.55]])
    cal = _Cal(prob, np.full((2, 2), 0.41), prob >= 0.41)
    sc.store_calibration(proj.db, run, proj.codebook(), m, cal)
    rows = proj.db.execute("SELECT segment_id, code, confidence, rationale FROM annotations WHERE coder = ? "
                           "ORDER BY segment_id, code", (run.coder,)).fetchall()
    got = {(r[0], r[1]): (r[2], r[3]) for r in rows}
    assert set(got) == {(segs[0], "safety"), (segs[1], "workload")}
    assert got[(segs[0], "safety")][0] == pytest.approx(0.83)
    assert "0.83 >= threshold 0.41" in got[(segs[0], "safety")][1] and "threshold" in got[(segs[0], "safety")][1]
    again = sc.load_scores(proj.db, run.id)
    assert again.prob is not None and again.prob.tolist() == prob.tolist()
    assert rs.get_run(proj.db, run.id).manifest["calibration"] == {"method": "threshold", "units": 2}


def test_content_free_and_delete(proj):
    run = _run(proj)
    sc.record_content_free(proj.db, run.id, "N/A", {"safety": 0.7, "workload": 0.2})
    sc.record_content_free(proj.db, run.id, "", {"safety": 0.5})
    cf = sc.load_content_free(proj.db, run.id, ["safety", "workload"])
    assert cf.shape == (2, 2) and cf[0, 0] == 0.5 and math.isnan(cf[0, 1]) and cf[1].tolist() == [0.7, 0.2]
    sc.record_scores(proj.db, run.id, proj.segments()[0].id, {"safety": 0.5})
    rs.delete_run(proj.db, run.id)
    assert proj.db.execute("SELECT count(*) FROM scores").fetchone()[0] == 0
    assert sc.load_content_free(proj.db, run.id, ["safety"]) is None
