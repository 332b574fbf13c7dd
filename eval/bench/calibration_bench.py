"""Calibration methods compared on the same scores: ``similarity`` cosines on ConvAbuse (all 4,185 user turns,
labels = the annotators' strict majority) and on the seed gold standard (20 quotes, the authors' codes).

The cosines are computed once; each method then calibrates them (:func:`assistcode.calibration.calibrate`, labelled
methods cross-fitted by document, 5 folds): every unit's probability and threshold come from folds that never saw its
label, so Brier, expected calibration error (10 equal-width bins) and kappa below are all on held-out labels.
``none`` is the cosine rescaled to [0, 1] with the default cosine threshold: a cosine is no probability, and its ECE
shows it. For the seed's exclusive codebook, the quotes whose decided code is exactly the authors' are counted twice:
keeping the most probable passing code (``calibrate``'s default) and the closest by cosine (what ``similarity`` uses).

    python eval/bench/calibration_bench.py [--json eval/bench/results/calibration.json]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit  # noqa: E402
from convabuse import load_project, prepare  # noqa: E402

from assistcode.agreement import cohen_kappa  # noqa: E402
from assistcode.calibration import brier, calibrate, expected_calibration_error  # noqa: E402
from assistcode.runs.scores import load_scores  # noqa: E402
from assistcode.similarity import BOUNDS, DEFAULT_THRESHOLD, run_similarity  # noqa: E402
from assistcode.trained import label_matrix  # noqa: E402

METHODS = ("none", "threshold", "platt", "isotonic")


def _kappa(decided: np.ndarray, labels: np.ndarray) -> float | None:
    keep = ~np.isnan(labels)
    try:
        return float(cohen_kappa(np.vstack([decided[keep].astype(float), labels[keep]])))
    except Exception:  # a label never used by one side: undefined
        return None


def _exact(decisions: np.ndarray, labels: np.ndarray) -> int:
    """Units whose decided code set equals the labels'."""
    keep = ~np.isnan(labels).any(axis=1)
    return int(sum((decisions[i] == (labels[i] == 1)).all() for i in np.flatnonzero(keep)))


def compare(project, source: str) -> dict:
    """Cosines once, then every method: per code and mean Brier, ECE and kappa against ``source``'s labels."""
    codebook = project.codebook()
    start = time.perf_counter()
    result, _ = run_similarity(project, calibration="none")
    seconds = time.perf_counter() - start
    matrix = load_scores(project.db, result.run.id)
    order = [[c.id for c in codebook.codes].index(code) for code in matrix.codes]
    labels = label_matrix(project.db, source, codebook, matrix.segment_ids)[:, order]
    docs = {s.id: s.document_id for s in project.segments()}
    groups = [docs[s] for s in matrix.segment_ids]
    out: dict = {"units": len(matrix.segment_ids), "labelled_units": int((~np.isnan(labels).all(axis=1)).sum()),
                 "documents": len(set(groups)), "scoring_seconds": seconds, "labels": source, "methods": {}}
    for method in METHODS:
        cal = calibrate(matrix.raw, method=method, labels=labels if method != "none" else None, groups=groups,
                        bounds=BOUNDS, default_threshold=DEFAULT_THRESHOLD, codes=matrix.codes,
                        exclusive=codebook.exclusive, label_source=source)
        exact = {"units_exactly_right": _exact(cal.decisions, labels)}
        if codebook.exclusive:  # the other rule for several passing codes: the model's own ranking
            by_score = calibrate(matrix.raw, method=method, labels=labels if method != "none" else None,
                                 groups=groups, bounds=BOUNDS, default_threshold=DEFAULT_THRESHOLD, codes=matrix.codes,
                                 exclusive=True, exclusive_rank="score")
            exact["units_exactly_right_ranked_by_cosine"] = _exact(by_score.decisions, labels)
        per_code = {}
        for j, code in enumerate(matrix.codes):
            y = labels[:, j]
            per_code[code] = {"prevalence": float(np.nanmean(y)), "brier": brier(cal.prob[:, j], y),
                              "ece": expected_calibration_error(cal.prob[:, j], y),
                              "kappa": _kappa(cal.decisions[:, j], y)}
        kappas = [v["kappa"] for v in per_code.values() if v["kappa"] is not None]
        out["methods"][method] = {
            "brier_all_pairs": brier(cal.prob, labels), "ece_all_pairs": expected_calibration_error(cal.prob, labels),
            "max_ece_per_code": max(v["ece"] for v in per_code.values()),
            "mean_kappa": float(np.mean(kappas)) if kappas else None,
            "fallbacks": cal.manifest.get("fallbacks", {}), **exact, "per_code": per_code}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="Folder holding ConvAbuseEMNLPfull.csv (default: $ASSISTCODE_CONVABUSE, "
                   "else the development machine's data folder).")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    from assistcode import gold_standards
    from assistcode.project import Project

    out: dict = {"method": "similarity cosines, calibrated per method; labelled methods cross-fitted by document, 5 folds, seed 0",
                 "ece": "10 equal-width bins, on held-out (cross-fitted) probabilities"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with Project.init(folder / "seed") as seed:
            gold_standards.load_into(seed, "leadership-quality-safety")
            out["seed"] = compare(seed, "McKee et al. 2013")
        full = prepare(folder / "convabuse-src", source=args.data)
        project = load_project(folder / "convabuse", full)
        try:
            out["convabuse"] = compare(project, "consensus")
        finally:
            project.close()
    emit(out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
