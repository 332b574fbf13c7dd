"""Each evaluation of a project is remembered, so the next one can say how agreement moved (after a review round,
a codebook revision or a new run) on the same comparison."""
from __future__ import annotations

import json
import sqlite3
from typing import Any

from ..ids import hash_json
from ..store.db import now, transaction
from .result import EvalResult


def summary(result: EvalResult) -> dict[str, dict[str, Any]]:
    """Each comparison's overall figures by name (``comparison: statistic (level)``), as history keeps them."""
    out = {}
    for comp in result.get("overall", []):
        for e in comp["estimates"]:
            level = e.get("convention", "").split("level ")[-1] if "level " in e.get("convention", "") else ""
            stat = e.get("statistic", "") + (f" ({level})" if level else "")
            out[f"{comp['comparison']}: {stat}"] = {"statistic": stat, "value": e.get("value"), "low": e.get("low"),
                                                   "high": e.get("high"), "n_units": e.get("n_units")}
    return out


def record(db: sqlite3.Connection, result: EvalResult) -> dict[str, Any] | None:
    """Store this evaluation's overall figures; return the change since the previous evaluation of the same
    coders against the same reference (``None`` the first time). Adds a note to ``result`` saying so."""
    meta = result.get("meta", {})
    key = hash_json({"coders": sorted(c["name"] for c in meta.get("coders", [])), "reference": meta.get("reference"),
                     "options": {k: meta.get("options", {}).get(k) for k in ("rollup", "ci_level")}})
    figures = summary(result)
    decisions = db.execute("SELECT count(*) FROM review_decisions").fetchone()[0]
    with transaction(db):
        prev = db.execute("SELECT created_at, decisions, summary FROM eval_history WHERE key = ? ORDER BY id DESC LIMIT 1",
                          (key,)).fetchone()
        db.execute("INSERT INTO eval_history (key, created_at, decisions, summary) VALUES (?, ?, ?, ?)",
                   (key, now(), decisions, json.dumps(figures)))
    if prev is None:
        return None
    before = json.loads(prev[2])
    changes = []
    for name, cur in figures.items():
        old = before.get(name)
        if old is None or cur["value"] is None or old["value"] is None:
            continue
        changes.append({"comparison": name, "statistic": cur["statistic"], "before": old["value"], "after": cur["value"],
                        "change": cur["value"] - old["value"], "n_units_before": old["n_units"],
                        "n_units_after": cur["n_units"]})
    since = {"previous_at": prev[0], "review_decisions_since": decisions - prev[1], "changes": changes}
    result["since_previous"] = since
    moved = "; ".join(f"{c['comparison']}: {c['before']:.3f} -> {c['after']:.3f} ({c['change']:+.3f}, "
                      f"n {c['n_units_before']} -> {c['n_units_after']})" for c in changes[:4])
    if moved:
        result.setdefault("notes", []).insert(0, f"since the previous evaluation ({prev[0]}, "
                                                 f"{since['review_decisions_since']} review decisions ago): {moved}")
    return since
