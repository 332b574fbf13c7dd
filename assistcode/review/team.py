"""The review as a whole: progress, pace, the audit estimate of the unreviewed error rate, agreement between
reviewers, and the exchange of decision logs between machines (export, then merge: every decision kept)."""
from __future__ import annotations

import json
import math
from dataclasses import replace
import sqlite3
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import InputError
from ..exports import atomic_path
from ..store.db import now, transaction
from .decisions import DECIDING, find_item, settle
from .queue import CONFIDENT

EXPORT_COLUMNS = ("uid", "item_id", "segment_id", "document", "coder", "proposed", "reviewer", "decided_at", "action",
                  "codes_before", "codes_after", "memo", "undoes", "shown", "origin")


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float | None, float | None, float | None]:
    """A proportion with its Wilson score interval (sound at small n and at 0 or n)."""
    if n == 0:
        return None, None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def _pace(db: sqlite3.Connection, reviewer: str | None) -> float | None:
    """Decisions per hour over the reviewer's (or everyone's) last 50 decisions, pauses over 10 minutes left out."""
    sql = "SELECT decided_at FROM review_decisions WHERE action IN ('accept','reject','edit','adjudicate')"
    args: tuple = ()
    if reviewer:
        sql += " AND reviewer = ?"
        args = (reviewer,)
    stamps = [datetime.fromisoformat(r[0]).timestamp() for r in db.execute(sql + " ORDER BY id DESC LIMIT 50", args)]
    gaps = [a - b for a, b in zip(stamps, stamps[1:]) if 0 <= a - b < 600]
    if not gaps or sum(gaps) == 0:
        return None
    return 3600 * len(gaps) / sum(gaps)


def reviewer_agreement(db: sqlite3.Connection, n_boot: int = 1000) -> dict[str, Any] | None:
    """Krippendorff's alpha (MASI on code sets, nominal per code) among the reviewers, on the items two or more
    reviewed, with bootstrap intervals: the same statistics as every other comparison."""
    from ..evaluate import EvalOptions, evaluate, from_store

    reviewers = [r[0] for r in db.execute("SELECT name FROM coders WHERE name LIKE 'reviewer:%' ORDER BY name")]
    if len(reviewers) < 2:
        return None
    data = from_store(db, reviewers)
    shared = [sum(s is not None for s in col) >= 2 for col in zip(*data.sets)]
    if sum(shared) < 2:
        return {"reviewers": reviewers, "units": sum(shared), "note": "fewer than two items reviewed by two reviewers"}
    import numpy as np

    data = data.restrict(np.array(shared))
    data = replace(data, kinds={c: "human" for c in data.coders})  # reviewers compared as humans are
    report = evaluate(data, EvalOptions(n_boot=n_boot))
    return {"reviewers": reviewers, "units": len(data.units), "overall": report["overall"], "per_code": report["per_code"]}


def status(db: sqlite3.Connection, reviewer: str | None = None, n_boot: int = 1000) -> dict[str, Any]:
    """Counts, pace, and what the audit sample says of the confident items nobody reviewed."""
    by_status = dict(db.execute("SELECT status, count(*) FROM review_items GROUP BY status").fetchall())
    total = sum(by_status.values())
    leased = db.execute("SELECT count(*) FROM review_leases WHERE until > ?", (time.time(),)).fetchone()[0]
    actions = Counter()
    reviewers: dict[str, Counter] = {}
    for r, a, n in db.execute("SELECT reviewer, action, count(*) FROM review_decisions GROUP BY reviewer, action"):
        actions[a] += n
        reviewers.setdefault(r, Counter())[a] += n
    # audit: of the audit items decided, how many did the reviewer change?
    audit_done = audit_changed = 0
    for final, proposed in db.execute("SELECT final, proposed FROM review_items WHERE audit = 1 AND status = 'done' "
                                       "AND final IS NOT NULL"):
        audit_done += 1
        audit_changed += sorted(json.loads(final)) != sorted(json.loads(proposed))
    confident_left = db.execute("SELECT count(*) FROM review_items WHERE status = 'open' AND audit = 0 AND priority < ?",
                                (CONFIDENT,)).fetchone()[0]
    audit_total = db.execute("SELECT count(*) FROM review_items WHERE audit = 1").fetchone()[0]
    p, lo, hi = wilson(audit_changed, audit_done)
    return {
        "items": total, "open": by_status.get("open", 0), "done": by_status.get("done", 0),
        "adjudicate": by_status.get("adjudicate", 0), "leased_now": leased,
        "decisions": dict(actions), "reviewers": {r: dict(c) for r, c in sorted(reviewers.items())},
        "pace_per_hour": _pace(db, reviewer), "reviewer": reviewer,
        "audit": {"sampled": audit_total, "reviewed": audit_done, "changed": audit_changed,
                  "error_rate": p, "low": lo, "high": hi, "confident_unreviewed": confident_left,
                  "expected_errors_unreviewed": None if p is None else p * confident_left},
        "agreement_between_reviewers": reviewer_agreement(db, n_boot) if len(reviewers) > 1 else None,
    }


def decision_records(db: sqlite3.Connection) -> Iterable[dict[str, Any]]:
    """Every decision, oldest first, with what identifies its item on any machine."""
    sql = ("SELECT d.uid, i.uid, i.segment_id, coalesce(nullif(doc.key, ''), doc.title, doc.id), i.coder, i.proposed, d.reviewer, d.decided_at, "
           "d.action, d.codes_before, d.codes_after, d.memo, d.undoes, d.shown, d.origin FROM review_decisions d "
           "JOIN review_items i ON i.id = d.item_id JOIN segments s ON s.id = i.segment_id "
           "JOIN documents doc ON doc.id = s.document_id ORDER BY d.id")
    for row in db.execute(sql):
        rec = dict(zip(EXPORT_COLUMNS, row))
        for k in ("proposed", "codes_before", "codes_after", "shown"):
            rec[k] = json.loads(rec[k]) if rec[k] is not None else None
        yield rec


def export_log(db: sqlite3.Connection, path: Path, fmt: str = "jsonl") -> int:
    """The audit trail to a file (atomic): JSON lines, which ``merge_log`` reads back, or CSV for people."""
    records = list(decision_records(db))
    with atomic_path(path) as tmp:
        if fmt == "jsonl":
            with open(tmp, "w", encoding="utf-8") as f:
                for r in records:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
        elif fmt == "csv":
            import pandas as pd

            frame = pd.DataFrame(records, columns=list(EXPORT_COLUMNS))
            for k in ("proposed", "codes_before", "codes_after"):
                frame[k] = frame[k].map(lambda v: "" if v is None else ";".join(v))
            frame["shown"] = frame["shown"].map(json.dumps)
            frame.to_csv(tmp, index=False)
        else:
            raise InputError(f"unknown format {fmt!r}", field="--format", hint="jsonl or csv")
    return len(records)


def merge_log(db: sqlite3.Connection, path: Path) -> dict[str, Any]:
    """Add the decisions of another machine's log that this store lacks (by uid), then settle their items. Items
    the other machine queued and this one did not are created when their segment and coder exist here."""
    path = Path(path)
    added = known = 0
    skipped: list[str] = []
    touched: dict[int, set[str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read review log: {exc}", path=path) from exc
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            missing = [k for k in ("uid", "item_id", "segment_id", "coder", "proposed", "reviewer", "action") if k not in rec]
        except json.JSONDecodeError as exc:
            raise InputError(f"not a JSON line: {exc.msg}", path=path, line=n) from exc
        if missing:
            raise InputError(f"record lacks {', '.join(missing)}", path=path, line=n)
        records.append((n, rec))
    with transaction(db):
        for n, rec in records:
            if db.execute("SELECT 1 FROM review_decisions WHERE uid = ?", (rec["uid"],)).fetchone():
                known += 1
                continue
            row = db.execute("SELECT id FROM review_items WHERE uid = ?", (rec["item_id"],)).fetchone()
            if row is None:
                ok = db.execute("SELECT 1 FROM segments WHERE id = ?", (rec["segment_id"],)).fetchone() and \
                    db.execute("SELECT 1 FROM coders WHERE name = ?", (rec["coder"],)).fetchone()
                if not ok:
                    skipped.append(f"{path.name}:{n}: segment {rec['segment_id']} or coder {rec['coder']} not in this project")
                    continue
                run = db.execute("SELECT id FROM runs WHERE coder = ?", (rec["coder"],)).fetchone()
                db.execute("INSERT INTO review_items (uid, segment_id, run_id, coder, proposed, priority, reasons, "
                           "created_at) VALUES (?,?,?,?,?,0,'[\"merged\"]',?)",
                           (rec["item_id"], rec["segment_id"], run[0] if run else None, rec["coder"],
                            json.dumps(rec["proposed"]), now()))
                row = db.execute("SELECT id FROM review_items WHERE uid = ?", (rec["item_id"],)).fetchone()
            db.execute("INSERT INTO review_decisions (uid, item_id, reviewer, decided_at, action, codes_before, "
                       "codes_after, memo, shown, undoes, origin) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (rec["uid"], row[0], rec["reviewer"], rec.get("decided_at") or now(), rec["action"],
                        json.dumps(rec.get("codes_before") or []),
                        json.dumps(rec["codes_after"]) if rec.get("codes_after") is not None else None,
                        rec.get("memo"), json.dumps(rec.get("shown") or {}), rec.get("undoes"),
                        rec.get("origin") or path.name))
            touched.setdefault(row[0], set()).add(rec["reviewer"])
            added += 1
        # two reviewers of one single-review item (each on their own machine) need two reviews to settle: adjudicate
        for item_id, who in touched.items():
            item = find_item(db, item_id)
            deciders = {r[0] for r in db.execute("SELECT DISTINCT reviewer FROM review_decisions WHERE item_id = ? "
                                                 "AND action IN ('accept','reject','edit')", (item_id,))}
            if len(deciders) > item.reviews_needed:
                db.execute("UPDATE review_items SET reviews_needed = ? WHERE id = ?", (len(deciders), item_id))
                item.reviews_needed = len(deciders)
            settle(db, item, sorted(who))
    conflicts = db.execute("SELECT count(*) FROM review_items WHERE status = 'adjudicate'").fetchone()[0]
    return {"added": added, "already_here": known, "skipped": len(skipped), "skipped_why": skipped,
            "items_touched": len(touched), "waiting_for_adjudication": conflicts}


def reviewed_examples(db: sqlite3.Connection, k: int = 6, exclude: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Few-shot examples from settled reviews: segment text and its settled codes, covering as many codes as
    possible (one example per code first, then one with no code), in a fixed order so the prompt prefix stays
    byte-identical. ``exclude`` holds segment ids never to use (the units being evaluated)."""
    from ..prompts import choose_examples

    skip = set(exclude)
    rows = [(seg, text, json.loads(final)) for seg, text, final in db.execute(
        "SELECT i.segment_id, s.text, i.final FROM review_items i JOIN segments s ON s.id = i.segment_id "
        "WHERE i.status = 'done' AND i.final IS NOT NULL ORDER BY i.id") if seg not in skip]
    return choose_examples(rows, k)


__all__ = ["DECIDING", "decision_records", "export_log", "merge_log", "reviewed_examples", "reviewer_agreement",
           "status", "wilson"]
