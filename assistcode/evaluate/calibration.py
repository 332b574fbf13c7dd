"""Is a run's confidence a probability that can be checked? Brier score, expected calibration error (10 equal-width
bins, overall and per code) and reliability bins of each model run against the reference coder.

Two kinds of runs:

- runs with per-code scores (scoring templates, ``similarity``, ``trained``): every (segment, code) pair, the
  calibrated probability where the run was calibrated (else the raw score where it is a probability); the outcome
  is whether the reference applied the code;
- generative runs: each proposal's self-reported confidence; the outcome is whether the reference applied the
  proposed code (the confidence claims "this code is right", so only proposed codes are checked).

Only units both the run and the reference coded count; a unit shown to the model as a few-shot example never does.
A run calibrated on the reference's labels is checked on cross-fitted (out-of-fold) probabilities: its manifest says
which coder it rested on, and the report repeats it.
"""
from __future__ import annotations

import json
import sqlite3
from typing import Any

import numpy as np

from ..calibration import brier, expected_calibration_error, reliability
from .coding import CodingData

BINS = 10


def _reference_rows(data: CodingData, reference: str) -> tuple[CodingData, tuple[frozenset | None, ...]]:
    if reference == "consensus" and "consensus" not in data.coders:
        data = data.with_consensus()
    return data, data.row(reference)


def _scores_pairs(db: sqlite3.Connection, run_id: int, data: CodingData, coder: str,
                  ref: tuple[frozenset | None, ...], bounds: Any = None) -> tuple[np.ndarray, np.ndarray, list[str], str, np.ndarray | None] | None:
    """(prob, outcome) as units x codes with NaN where not checked, the codes, what the probability is, and the
    raw scores on the same pairs where the run was calibrated and they are probabilities too (else None)."""
    from ..runs.scores import load_scores

    matrix = load_scores(db, run_id)
    if not matrix.segment_ids:
        return None
    # the scores' own range as calibrated (a cosine's is (-1, 1) even where every value falls within [0, 1])
    raw_is_prob = (list(bounds) == [0, 1]) if bounds is not None else bool(
        np.nanmin(matrix.raw) >= 0 and np.nanmax(matrix.raw) <= 1)
    if matrix.prob is not None:
        prob, source = matrix.prob, "calibrated"
    elif raw_is_prob:
        prob, source = matrix.raw, "raw"
    else:
        return None  # uncalibrated scores that are not probabilities (cosines): nothing to check
    row_of = {s: i for i, s in enumerate(matrix.segment_ids)}
    mine = data.row(coder)
    p = np.full((len(data.units), len(matrix.codes)), np.nan)
    y, r = np.full_like(p, np.nan), np.full_like(p, np.nan)
    for u, seg in enumerate(data.units):
        i = row_of.get(seg)
        if i is None or mine[u] is None or ref[u] is None:
            continue
        p[u], r[u] = prob[i], matrix.raw[i]
        y[u] = [code in ref[u] for code in matrix.codes]
    y[np.isnan(p)] = np.nan
    r[np.isnan(p)] = np.nan
    return p, y, list(matrix.codes), source, (r if source == "calibrated" and raw_is_prob else None)


def _proposal_pairs(db: sqlite3.Connection, data: CodingData, coder: str,
                    ref: tuple[frozenset | None, ...]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One row per proposal with a confidence: (confidence, outcome) in its code's column, NaN elsewhere."""
    unit_of = {s: u for u, s in enumerate(data.units)}
    mine = data.row(coder)
    codes = list(data.codes)
    col = {c: j for j, c in enumerate(codes)}
    p_rows, y_rows = [], []
    for seg, code, conf in db.execute("SELECT segment_id, code, confidence FROM annotations WHERE coder = ? "
                                      "AND confidence IS NOT NULL", (coder,)):
        u = unit_of.get(seg)
        if u is None or mine[u] is None or ref[u] is None or code not in col:
            continue
        p, y = np.full(len(codes), np.nan), np.full(len(codes), np.nan)
        p[col[code]] = min(max(float(conf), 0.0), 1.0)
        y[col[code]] = float(code in ref[u])
        p_rows.append(p)
        y_rows.append(y)
    shape = (len(p_rows), len(codes))
    return (np.array(p_rows).reshape(shape), np.array(y_rows).reshape(shape), codes)


def summarise(prob: np.ndarray, outcome: np.ndarray, codes: list[str], bins: int = BINS) -> dict[str, Any]:
    """Brier, ECE and reliability bins overall, Brier and ECE per code (pairs where both are present)."""
    keep = ~np.isnan(prob) & ~np.isnan(outcome)
    per_code = []
    for j, code in enumerate(codes):
        k = keep[:, j]
        if not k.any():
            continue
        per_code.append({"code": code, "n": int(k.sum()), "prevalence": float(outcome[k, j].mean()),
                         "mean_prob": float(prob[k, j].mean()), "brier": brier(prob[k, j], outcome[k, j]),
                         "ece": expected_calibration_error(prob[k, j], outcome[k, j], bins)})
    p, y = prob[keep], outcome[keep]
    return {"n": int(keep.sum()), "brier": brier(p, y) if p.size else None,
            "ece": expected_calibration_error(p, y, bins) if p.size else None,
            "reliability": reliability(p, y, bins), "per_code": per_code}


def calibration_report(db: sqlite3.Connection, data: CodingData, reference: str | None,
                       bins: int = BINS) -> list[dict[str, Any]]:
    """For each model run among ``data``'s coders: its probabilities checked against ``reference``."""
    if not reference or not data.models:
        return []
    data, ref = _reference_rows(data, reference)
    out = []
    for coder in data.models:
        run = db.execute("SELECT id, manifest FROM runs WHERE coder = ?", (coder,)).fetchone()
        if run is None:
            continue
        manifest = json.loads(run[1])
        cal = manifest.get("calibration") or {}
        pairs = _scores_pairs(db, run[0], data, coder, ref, cal.get("bounds"))
        raw = None
        if pairs is not None:
            prob, outcome, codes, source, raw = pairs
            kind = f"P(code), {source}" + (f" ({cal.get('method')})" if source == "calibrated" and cal.get("method") else "")
        elif (manifest.get("provider") or {}).get("provider") == "similarity":
            continue  # a similarity run from before scores were stored: its confidences are cosines, no probabilities
        else:
            prob, outcome, codes = _proposal_pairs(db, data, coder, ref)
            kind = "self-reported confidence of the proposals"
        entry: dict[str, Any] = {"coder": coder, "reference": reference, "probability": kind, "bins": bins,
                                 **summarise(prob, outcome, codes, bins)}
        if raw is not None:  # what calibration changed: the same pairs, raw scores read as probabilities
            keep = ~np.isnan(raw) & ~np.isnan(outcome)
            entry["uncalibrated"] = {"brier": brier(raw[keep], outcome[keep]) if keep.any() else None,
                                     "ece": expected_calibration_error(raw[keep], outcome[keep], bins) if keep.any() else None}
        if cal.get("fallbacks"):  # codes whose labels were too few in some folds: label-free there
            entry["fallbacks"] = cal["fallbacks"]
        if cal.get("label_source"):
            entry["calibrated_on"] = cal["label_source"]
            if cal["label_source"] == reference:
                entry["note"] = (f"calibrated on {reference}'s own labels: checked on cross-fitted (out-of-fold) "
                                 "probabilities, never fitted on the unit they score")
        if entry["n"] == 0:
            entry["note"] = "no probability to check on the units it shares with the reference"
        out.append(entry)
    return out
