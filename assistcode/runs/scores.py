"""Per-code scores of a run in the project store, and turning calibrated scores into proposals.

Every provider that yields a score per (segment, code) stores it here: the scoring templates (P(yes), P(option)),
``similarity`` (a cosine), ``trained`` (a classifier's probability). ``raw`` is what the provider gave; ``prob`` is
the calibrated probability, NULL until :func:`store_calibration` writes it with the run's proposals.
"""
from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..store.db import transaction


@dataclass
class ScoreMatrix:
    """A run's scores: units (segments, in corpus order) x codes (sorted), NaN where missing."""

    segment_ids: list[str]
    codes: list[str]
    raw: np.ndarray
    prob: np.ndarray | None


def check_scores(segment_id: str, raw: Mapping[str, float], bounds: tuple[float, float] = (0.0, 1.0)) -> None:
    """Refuse a NaN, infinite or out-of-bounds score, naming the segment and the code."""
    lo, hi = bounds
    for code, value in raw.items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InputError(f"segment {segment_id!r}, code {code!r}: score {value!r} is not a number") from None
        if math.isnan(v) or not lo <= v <= hi:
            raise InputError(f"segment {segment_id!r}, code {code!r}: score {v!r} is outside [{lo:g}, {hi:g}]",
                             hint="the provider returned an invalid score; nothing was stored")


def record_scores(db: sqlite3.Connection, run_id: int, segment_id: str, raw: Mapping[str, float], *,
                  bounds: tuple[float, float] = (0.0, 1.0)) -> None:
    """Store one segment's raw scores (replacing earlier ones). NaN or a value outside ``bounds`` is refused with
    an :class:`InputError` naming the segment and the code, and nothing is written."""
    check_scores(segment_id, raw, bounds)
    with transaction(db):
        db.executemany("INSERT OR REPLACE INTO scores (run_id, segment_id, code, raw, prob) VALUES (?, ?, ?, ?, NULL)",
                       [(run_id, segment_id, code, float(v)) for code, v in raw.items()])


def record_content_free(db: sqlite3.Connection, run_id: int, text: str, raw: Mapping[str, float], *,
                        bounds: tuple[float, float] = (0.0, 1.0)) -> None:
    """Store the raw scores of one content-free input (``"N/A"``, ``""``, ``"[MASK]"``) for contextual calibration."""
    check_scores(f"content-free {text!r}", raw, bounds)
    with transaction(db):
        db.executemany("INSERT OR REPLACE INTO content_free_scores (run_id, input, code, raw) VALUES (?, ?, ?, ?)",
                       [(run_id, text, code, float(v)) for code, v in raw.items()])


def load_content_free(db: sqlite3.Connection, run_id: int, codes: Sequence[str]) -> np.ndarray | None:
    """Content-free inputs x ``codes`` raw scores of a run (NaN where missing), or None when there are none."""
    rows = db.execute("SELECT input, code, raw FROM content_free_scores WHERE run_id = ? ORDER BY input, code",
                      (run_id,)).fetchall()
    if not rows:
        return None
    inputs = sorted({r[0] for r in rows})
    at, col = {t: i for i, t in enumerate(inputs)}, {c: j for j, c in enumerate(codes)}
    out = np.full((len(inputs), len(codes)), np.nan)
    for text, code, value in rows:
        if code in col:
            out[at[text], col[code]] = value
    return out


def load_scores(db: sqlite3.Connection, run_id: int) -> ScoreMatrix:
    """A run's scores as a matrix: segments in corpus order, codes sorted."""
    rows = db.execute("SELECT s.segment_id, s.code, s.raw, s.prob FROM scores s LEFT JOIN segments g ON g.id = s.segment_id "
                      "WHERE s.run_id = ? ORDER BY g.rowid, s.segment_id", (run_id,)).fetchall()
    seg_ids = list(dict.fromkeys(r[0] for r in rows))
    codes = sorted({r[1] for r in rows})
    at, col = {s: i for i, s in enumerate(seg_ids)}, {c: j for j, c in enumerate(codes)}
    raw = np.full((len(seg_ids), len(codes)), np.nan)
    prob = np.full((len(seg_ids), len(codes)), np.nan)
    any_prob = False
    for seg, code, r, p in rows:
        raw[at[seg], col[code]] = r
        if p is not None:
            prob[at[seg], col[code]] = p
            any_prob = True
    return ScoreMatrix(seg_ids, codes, raw, prob if any_prob else None)


def store_calibration(db: sqlite3.Connection, run: Any, codebook: Any, matrix: ScoreMatrix, cal: Any) -> None:
    """In one transaction: write the calibrated ``prob`` of every score, replace the run's proposals by the codes
    whose ``cal.decisions`` are True (confidence: the calibrated probability; the rationale says the probability,
    the threshold and the method), and record ``cal.manifest`` in the run manifest under ``"calibration"``."""
    prob = np.asarray(cal.prob, dtype=float)
    decisions = np.asarray(cal.decisions, dtype=bool)
    threshold = np.asarray(cal.threshold, dtype=float)
    shape = (len(matrix.segment_ids), len(matrix.codes))
    for name, arr in (("prob", prob), ("threshold", threshold), ("decisions", decisions)):
        if arr.shape != shape:
            raise InputError(f"calibration {name} has shape {arr.shape}, the scores {shape}")
    known = {c.id for c in codebook.codes} if codebook is not None else set(matrix.codes)
    unknown = [c for c in matrix.codes if c not in known]
    if unknown:
        raise InputError(f"scores name codes the codebook lacks: {', '.join(unknown[:5])}")
    method = getattr(cal, "method", "none")
    manifest = dict(run.manifest) if getattr(run, "manifest", None) is not None else {}
    manifest["calibration"] = cal.manifest
    with transaction(db):
        updates, inserts = [], []
        for i, seg in enumerate(matrix.segment_ids):
            for j, code in enumerate(matrix.codes):
                if math.isnan(matrix.raw[i, j]):
                    continue
                p = float(prob[i, j])
                updates.append((p, run.id, seg, code))
                if decisions[i, j]:
                    inserts.append((seg, run.coder, code, p,
                                    f"P({code}) {p:.2f} >= threshold {float(threshold[i, j]):.2f} (calibration: {method})",
                                    run.id))
        db.executemany("UPDATE scores SET prob = ? WHERE run_id = ? AND segment_id = ? AND code = ?", updates)
        db.execute("DELETE FROM annotations WHERE coder = ?", (run.coder,))
        db.executemany("INSERT INTO annotations (segment_id, coder, code, confidence, rationale, run_id) "
                       "VALUES (?, ?, ?, ?, ?, ?)", inserts)
        scored = [(seg, run.coder) for i, seg in enumerate(matrix.segment_ids) if not np.isnan(matrix.raw[i]).all()]
        db.executemany("INSERT OR IGNORE INTO seen (segment_id, coder) VALUES (?, ?)", scored)
        db.execute("UPDATE runs SET manifest = ? WHERE id = ?", (json.dumps(manifest), run.id))
    if getattr(run, "manifest", None) is not None:
        run.manifest = manifest


def delete_scores(db: sqlite3.Connection, run_id: int) -> None:
    """Forget a run's scores (``runs delete``)."""
    with transaction(db):
        db.execute("DELETE FROM scores WHERE run_id = ?", (run_id,))
        db.execute("DELETE FROM content_free_scores WHERE run_id = ?", (run_id,))
