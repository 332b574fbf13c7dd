"""Filling the reviewer queue from a run: one item per segment, ordered by how much a reviewer is needed there.

Priority is a sum of the chosen signals, each in [0, 1]:

- ``disagreement``: another coder (a human, or another run) coded the segment differently;
- ``confidence``: one minus the lowest confidence among the suggested codes; where the run holds calibrated
  per-code probabilities, one minus the lowest probability that a decision is right, over every code (``p`` for a
  proposed code, ``1 - p`` for one left out), so that a code left out at ``p = 0.45`` flags the segment too;
- ``consistency``: one minus the run's self-consistency on the segment (with ``--samples`` above 1);
- ``hard-codes``: one minus the agreement (Cohen's kappa against the humans' consensus) of the hardest suggested code;
- ``uncertainty`` (asked for by name; runs with per-code scores only): how near 0.5 the calibrated probability of the
  code the run is least sure of lies, ``1 - |2p - 1|``, so that each review teaches the classifiers the most.

Items no signal flags are the *confident* ones. A seeded random share of them (``audit``) is queued too, mixed among
the rest, so that reviewing it estimates the error rate of the confident items nobody reviewed.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..ids import hash_json
from ..runs import store as rs
from ..store.db import now, transaction
from .decisions import REVIEWED

SIGNALS = ("disagreement", "confidence", "consistency", "hard-codes")
OPT_IN = ("uncertainty",)
"""Signals used only when asked for by name (they need what not every run has)."""
CONFIDENT = 0.2
"""An item whose priority stays under this is confident: no signal said much."""


@dataclass
class QueueReport:
    run: str
    queued: int = 0
    already_queued: int = 0
    failed_segments: int = 0
    confident: int = 0
    audit: int = 0
    double: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


def item_uid(fingerprint: str, segment_id: str) -> str:
    return hash_json({"run": fingerprint, "segment": segment_id})[:20]


def _others(db: sqlite3.Connection, coder: str) -> dict[str, list[frozenset]]:
    """segment -> the code sets the other coders gave it."""
    seen: dict[tuple[str, str], set[str]] = {}
    for seg, c in db.execute("SELECT segment_id, coder FROM seen WHERE coder != ? AND coder NOT LIKE 'reviewer:%' "
                             "AND coder != ?", (coder, REVIEWED)):
        seen[(seg, c)] = set()
    for seg, c, code in db.execute("SELECT segment_id, coder, code FROM annotations WHERE coder != ?", (coder,)):
        if (seg, c) in seen:
            seen[(seg, c)].add(code)
    out: dict[str, list[frozenset]] = {}
    for (seg, _), codes in seen.items():
        out.setdefault(seg, []).append(frozenset(codes))
    return out


def _hard_codes(db: sqlite3.Connection, coder: str) -> dict[str, float]:
    """code -> 1 - kappa of this coder against the human consensus (codes with no defined kappa: 0.5)."""
    from ..agreement.coefficients import cohen_kappa
    from ..evaluate import from_store

    humans = [r[0] for r in db.execute("SELECT name FROM coders WHERE kind = 'human'")]
    if not humans:
        return {}
    data = from_store(db, humans + [coder]).with_consensus(coders=humans)
    out = {}
    for code in data.codes:
        b = data.binary(code, [coder, "consensus"])
        both = ~np.isnan(b).any(axis=0)
        try:
            k = cohen_kappa(b[:, both]) if both.sum() > 1 else None
        except Exception:  # one side constant: kappa undefined
            k = None
        out[code] = 0.5 if k is None or not np.isfinite(k) else float(np.clip(1 - k, 0, 1))
    return out


def uncertainty(db: sqlite3.Connection, run: rs.RunRow) -> dict[str, float]:
    """segment -> ``1 - |2p - 1|`` for the code whose probability lies nearest 0.5 (calibrated probabilities; raw
    scores where the run holds no calibrated ones and they are probabilities). One-line error for a run without."""
    from ..runs.scores import load_scores

    m = load_scores(db, run.id)
    values = m.prob if m.prob is not None else m.raw
    if not m.segment_ids or np.nanmin(values) < 0 or np.nanmax(values) > 1:
        raise InputError(f"run {run.id} ({run.coder}) holds no per-code probabilities: the uncertainty signal needs a "
                         "run of a scoring template or of the trained provider", field="--priority",
                         hint="queue it with the other signals, e.g. --priority disagreement,confidence")
    with np.errstate(all="ignore"):
        u = np.nanmax(1 - np.abs(2 * values - 1), axis=1)
    return {seg: float(v) for seg, v in zip(m.segment_ids, u) if np.isfinite(v)}


def calibrated_confidence(db: sqlite3.Connection, run: rs.RunRow) -> dict[str, float]:
    """segment -> one minus the lowest calibrated probability that the run's decision on a code is right (``p`` where
    it proposed the code, ``1 - p`` where it did not); empty where the run holds no calibrated probabilities."""
    from ..runs.scores import load_scores

    m = load_scores(db, run.id)
    if m.prob is None:
        return {}
    proposed = set(db.execute("SELECT segment_id, code FROM annotations WHERE coder = ?", (run.coder,)).fetchall())
    out = {}
    for i, seg in enumerate(m.segment_ids):
        right = [p if (seg, code) in proposed else 1 - p for code, p in zip(m.codes, m.prob[i]) if np.isfinite(p)]
        if right:
            out[seg] = 1.0 - min(right)
    return out


def enqueue(db: sqlite3.Connection, run_ref: str | int, *, signals: Sequence[str] = SIGNALS, audit: float = 0.1,
            double: float = 0.0, seed: int = 0) -> QueueReport:
    """Queue every segment the run finished (failed ones too: a person must code those), once."""
    bad = [s for s in signals if s not in SIGNALS + OPT_IN]
    if bad:
        raise InputError(f"unknown priority signal {bad[0]!r}", field="--priority",
                         hint="signals: " + ", ".join(SIGNALS + OPT_IN))
    for name, share in (("--audit", audit), ("--double", double)):
        if not 0 <= share <= 1:
            raise InputError(f"{share}: must be between 0 and 1", field=name)
    run = rs.get_run(db, run_ref)
    report = QueueReport(run.coder)
    others = _others(db, run.coder) if "disagreement" in signals else {}
    hard = _hard_codes(db, run.coder) if "hard-codes" in signals else {}
    uncertain = uncertainty(db, run) if "uncertainty" in signals else {}
    calibrated = calibrated_confidence(db, run) if "confidence" in signals else {}
    proposals: dict[str, list[tuple[str, float | None]]] = {}
    for seg, code, conf in db.execute("SELECT segment_id, code, confidence FROM annotations WHERE coder = ?", (run.coder,)):
        proposals.setdefault(seg, []).append((code, conf))
    rows = db.execute("SELECT rs.segment_id, rs.status, rs.self_consistency FROM run_segments rs "
                      "JOIN segments s ON s.id = rs.segment_id WHERE rs.run_id = ? ORDER BY s.rowid", (run.id,)).fetchall()
    rng = np.random.default_rng(seed)
    draws = rng.random((len(rows), 3))
    stamp = now()
    items = []
    for (seg, status, consistency), (u_audit, u_double, u_mix) in zip(rows, draws):
        codes = sorted(c for c, _ in proposals.get(seg, []))
        reasons: dict[str, float] = {}
        if status != "ok":
            reasons["model failed"] = 1.0
            report.failed_segments += 1
        else:
            if "disagreement" in signals and any(o != frozenset(codes) for o in others.get(seg, [])):
                reasons["disagreement"] = 1.0
            confs = [c for _, c in proposals.get(seg, []) if c is not None]
            if seg in calibrated:
                reasons["confidence"] = calibrated[seg]
            elif "confidence" in signals and confs:
                reasons["confidence"] = 1.0 - min(confs)
            if "consistency" in signals and consistency is not None:
                reasons["consistency"] = 1.0 - consistency
            if "hard-codes" in signals and codes and hard:
                reasons["hard-codes"] = max(hard.get(c, 0.5) for c in codes)
            if seg in uncertain:
                reasons["uncertainty"] = uncertain[seg]
        priority = round(sum(reasons.values()), 6)  # as stored: the same test of "confident" here and in status
        if status != "ok":
            priority = len(SIGNALS + OPT_IN) + 1.0  # above any sum of signals: nobody has coded these at all
        is_audit = 0
        if priority < CONFIDENT:
            report.confident += 1
            if u_audit < audit:
                is_audit = 1
                reasons = {"audit": 0.0}
                priority = CONFIDENT + u_mix  # mixed in among the flagged items, not left to the end
        needed = 2 if u_double < double else 1
        items.append((item_uid(run.fingerprint, seg), seg, run.id, run.coder, json.dumps(codes), round(priority, 6),
                      json.dumps([k for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]) if v > 0 or k == "audit"]),
                      is_audit, needed, stamp))
    with transaction(db):
        before = db.total_changes
        db.executemany("INSERT OR IGNORE INTO review_items (uid, segment_id, run_id, coder, proposed, priority, reasons, "
                       "audit, reviews_needed, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)", items)
        report.queued = db.total_changes - before
    report.already_queued = len(items) - report.queued
    for it in items:
        for reason in json.loads(it[6]):
            report.by_reason[reason] = report.by_reason.get(reason, 0) + 1
        report.audit += it[7]
        report.double += it[8] == 2
    return report

