"""Claiming items and deciding them. Every decision is an appended record; the item's state and the reviewer coders'
codes are derived from the records (``settle``), so undo, re-decision and merged logs all resolve the same way.

Derived coders: ``reviewer:NAME`` holds each reviewer's codes (agreement between reviewers uses them), and
``reviewed`` holds the settled codes (one review, agreeing reviews, or an adjudication): the gold that
``assistcode eval --reference reviewed`` compares against.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from ..errors import InputError
from ..model import REVIEWED, Codebook
from ..store.db import now, transaction

ACTIONS = ("accept", "reject", "edit", "skip", "adjudicate")
DECIDING = ("accept", "reject", "edit")
LEASE_SECONDS = 30 * 60


@dataclass
class ReviewDecision:
    """One record of the review log, as :func:`decide` and :func:`undo` write it."""

    uid: str
    item_id: str
    """The item's uid."""
    reviewer: str
    decided_at: str
    action: str
    """accept, reject, edit, skip, adjudicate, or undo."""
    status: str = ""
    """The item's status once settled (open, done, adjudicate)."""
    codes_before: list[str] | None = None
    codes_after: list[str] | None = None
    """The code set decided (None for skip)."""
    memo: str | None = None
    undoes: str | None = None
    """undo: the uid of the decision taken back."""
    undone_action: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (an undo's fields only where it is one)."""
        return {k: v for k, v in asdict(self).items() if v is not None or k not in ("undoes", "undone_action")}


def reviewer_name(name: str | None) -> str:
    """The reviewer's identity: ``--reviewer``, else ``ASSISTCODE_REVIEWER``, else an error (never a guess)."""
    name = (name or os.environ.get("ASSISTCODE_REVIEWER") or "").strip()
    if not name:
        raise InputError("who is reviewing?", field="--reviewer", hint="pass --reviewer NAME or set ASSISTCODE_REVIEWER")
    if any(ch in name for ch in ":\n\t") or len(name) > 64:
        raise InputError(f"reviewer name {name!r}: up to 64 characters, no ':' or control characters", field="--reviewer")
    return name


@dataclass
class Item:
    """What a reviewer sees of one queued item."""

    id: int
    uid: str
    segment_id: str
    coder: str
    proposed: list[str]
    priority: float
    reasons: list[str]
    audit: bool
    status: str
    reviews_needed: int
    reviews_done: int
    text: str = ""
    document: str = ""
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    """Per suggested code: code, name, definition, confidence, rationale, evidence with its document offsets, and
    ``span``, the evidence's offsets in ``text``."""
    provenance: dict[str, Any] = field(default_factory=dict)
    my_last: dict[str, Any] | None = None
    """This reviewer's latest standing decision on the item, if any (when going back)."""

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["item_id"] = d.pop("uid")
        d.pop("id")
        return d


_ITEM_COLUMNS = "id, uid, segment_id, coder, proposed, priority, reasons, audit, status, reviews_needed, reviews_done"


def _item(db: sqlite3.Connection, row: Sequence[Any]) -> Item:
    return Item(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], json.loads(row[6]), bool(row[7]), row[8],
                row[9], row[10])


def open_items(db: sqlite3.Connection) -> int:
    """How many review items are still open."""
    return db.execute("SELECT count(*) FROM review_items WHERE status = 'open'").fetchone()[0]


def find_item(db: sqlite3.Connection, ref: str | int) -> Item:
    """By ``item_id`` (uid, or a unique prefix of it) or row id."""
    ref = str(ref)
    row = db.execute(f"SELECT {_ITEM_COLUMNS} FROM review_items WHERE uid = ?", (ref,)).fetchone()
    if row is None and ref.isdigit():
        row = db.execute(f"SELECT {_ITEM_COLUMNS} FROM review_items WHERE id = ?", (int(ref),)).fetchone()
    if row is None and len(ref) >= 6:
        rows = db.execute(f"SELECT {_ITEM_COLUMNS} FROM review_items WHERE uid >= ? AND uid < ? LIMIT 2",
                          (ref, ref + "\uffff")).fetchall()
        row = rows[0] if len(rows) == 1 else None
    if row is None:
        raise InputError(f"no review item {ref!r}", hint="item ids come from `assistcode review next --json`")
    return _item(db, row)


def describe(db: sqlite3.Connection, item: Item, codebook: Codebook | None = None, context: int = 2,
             reviewer: str | None = None) -> Item:
    """Fill in the text, its neighbours in the document, the suggestion's details and its provenance."""
    seg = db.execute('SELECT document_id, position, text, start FROM segments WHERE id = ?', (item.segment_id,)).fetchone()
    if seg is None:
        raise InputError(f"review item {item.uid}: its segment {item.segment_id} is not in the store")
    doc_id, pos, item.text, offset = seg
    doc = db.execute("SELECT coalesce(nullif(key, ''), title, id) FROM documents WHERE id = ?", (doc_id,)).fetchone()
    item.document = doc[0] if doc else doc_id
    if context:
        first = db.execute("SELECT first_segment, segment_count FROM documents WHERE id = ?", (doc_id,)).fetchone()
        if first and first[0] is not None:
            lo, hi = max(first[0], first[0] + pos - context), min(first[0] + first[1] - 1, first[0] + pos + context)
            rows = db.execute("SELECT rowid, speaker, text FROM segments WHERE rowid BETWEEN ? AND ? ORDER BY rowid",
                              (lo, hi)).fetchall()
            me = first[0] + pos
            fmt = [(r[0], (f"{r[1]}: " if r[1] else "") + r[2]) for r in rows]
            item.before = [t for rid, t in fmt if rid < me]
            item.after = [t for rid, t in fmt if rid > me]
    item.suggestions = []
    for code, conf, rationale, evidence, s, e in db.execute(
            "SELECT code, confidence, rationale, evidence, evidence_start, evidence_end FROM annotations "
            "WHERE segment_id = ? AND coder = ? ORDER BY code", (item.segment_id, item.coder)):
        c = codebook.by_id.get(code) if codebook is not None else None
        item.suggestions.append({"code": code, "name": c.name if c else code, "definition": c.definition if c else "",
                                 "confidence": conf, "rationale": rationale, "evidence": evidence,
                                 "evidence_start": s, "evidence_end": e,
                                 "span": [s - offset, e - offset] if s is not None and e is not None else None})
    run = db.execute("SELECT r.id, r.manifest FROM runs r WHERE r.coder = ?", (item.coder,)).fetchone()
    if run:
        m = json.loads(run[1])
        item.provenance = {"run": run[0], "coder": item.coder, "provider": m.get("provider", {}),
                           "template": m.get("template", {}), "codebook": m.get("codebook", {})}
    if reviewer:
        mine = standing(db, item.id).get(reviewer)
        item.my_last = mine
    return item


def _live(db: sqlite3.Connection, item_id: int) -> list[dict[str, Any]]:
    """The item's decisions that no undo took back, oldest first."""
    rows = db.execute("SELECT uid, reviewer, action, codes_after, memo, undoes, decided_at FROM review_decisions "
                      "WHERE item_id = ? ORDER BY decided_at, id", (item_id,)).fetchall()
    undone = {r[5] for r in rows if r[2] == "undo"}
    return [{"uid": r[0], "reviewer": r[1], "action": r[2], "codes": json.loads(r[3]) if r[3] is not None else None,
             "memo": r[4], "decided_at": r[6]} for r in rows if r[2] != "undo" and r[0] not in undone]


def standing(db: sqlite3.Connection, item_id: int) -> dict[str, dict[str, Any]]:
    """reviewer -> their latest live accept/reject/edit on the item."""
    out: dict[str, dict[str, Any]] = {}
    for d in _live(db, item_id):
        if d["action"] in DECIDING:
            out[d["reviewer"]] = d
    return out


def _set_codes(db: sqlite3.Connection, coder: str, segment_id: str, codes: list[str] | None) -> None:
    db.execute("INSERT OR IGNORE INTO coders (name, kind, created_at) VALUES (?, 'reviewer', ?)", (coder, now()))
    db.execute("DELETE FROM annotations WHERE coder = ? AND segment_id = ?", (coder, segment_id))
    db.execute("DELETE FROM seen WHERE coder = ? AND segment_id = ?", (coder, segment_id))
    if codes is None:
        return
    db.execute("INSERT INTO seen (segment_id, coder) VALUES (?, ?)", (segment_id, coder))
    db.executemany("INSERT INTO annotations (segment_id, coder, code) VALUES (?, ?, ?)",
                   [(segment_id, coder, c) for c in codes])


def settle(db: sqlite3.Connection, item: Item, touched: Sequence[str] = ()) -> str:
    """Recompute the item's state and the derived codes from its live decisions. Returns the new status."""
    live = _live(db, item.id)
    adjudications = [d for d in live if d["action"] == "adjudicate"]
    stand = standing(db, item.id)
    done = len(stand)
    final: list[str] | None = None
    if adjudications:
        final, status = adjudications[-1]["codes"], "done"
    elif done >= item.reviews_needed:
        sets = {tuple(sorted(d["codes"])) for d in stand.values()}
        if len(sets) == 1:
            final, status = list(next(iter(sets))), "done"
        else:
            status = "adjudicate"
    else:
        status = "open"
    db.execute("UPDATE review_items SET reviews_done = ?, status = ?, final = ? WHERE id = ?",
               (done, status, json.dumps(final) if final is not None else None, item.id))
    for r in set(touched) | set(stand):
        d = stand.get(r)
        _set_codes(db, f"reviewer:{r}", item.segment_id, d["codes"] if d else None)
    _set_codes(db, REVIEWED, item.segment_id, final)
    return status


def _lease_query(adjudicate: bool) -> str:
    if adjudicate:
        return (f"SELECT {_ITEM_COLUMNS} FROM review_items i WHERE status = 'adjudicate' AND NOT EXISTS "
                "(SELECT 1 FROM review_leases l WHERE l.item_id = i.id AND l.until > :now AND l.reviewer != :r) "
                "ORDER BY id LIMIT 1")
    return (f"SELECT {_ITEM_COLUMNS} FROM review_items i WHERE status = 'open' "
            "AND NOT EXISTS (SELECT 1 FROM review_decisions d WHERE d.item_id = i.id AND d.reviewer = :r "
            "  AND d.action IN ('accept', 'reject', 'edit', 'skip')) "
            "AND reviews_done + (SELECT count(*) FROM review_leases l WHERE l.item_id = i.id AND l.until > :now "
            "  AND l.reviewer != :r) < reviews_needed "
            "ORDER BY priority DESC, id LIMIT 1")


_SKIPPED = (f"SELECT {', '.join('i.' + c for c in _ITEM_COLUMNS.split(', '))} FROM review_decisions d "
            "JOIN review_items i ON i.id = d.item_id WHERE d.reviewer = :r AND d.action = 'skip' AND i.status = 'open' "
            "AND NOT EXISTS (SELECT 1 FROM review_decisions x WHERE x.item_id = i.id AND x.reviewer = :r "
            "  AND x.action IN ('accept', 'reject', 'edit')) "
            "AND i.reviews_done + (SELECT count(*) FROM review_leases l WHERE l.item_id = i.id AND l.until > :now "
            "  AND l.reviewer != :r) < i.reviews_needed "
            "GROUP BY i.id ORDER BY max(d.id) LIMIT 1")


def claim(db: sqlite3.Connection, reviewer: str, *, lease_seconds: float = LEASE_SECONDS, adjudicate: bool = False,
          clock: float | None = None) -> Item | None:
    """The reviewer's next item, leased to them: the one they already hold, else the highest priority one nobody
    else holds (that they have not decided or skipped). ``None`` when the queue has nothing for them."""
    t = time.time() if clock is None else clock
    with transaction(db):
        row = db.execute(f"SELECT {', '.join('i.' + c for c in _ITEM_COLUMNS.split(', '))} FROM review_leases l "
                         "JOIN review_items i ON i.id = l.item_id WHERE l.reviewer = ? AND l.until > ? "
                         "AND i.status = ? ORDER BY l.until DESC LIMIT 1",
                         (reviewer, t, "adjudicate" if adjudicate else "open")).fetchone()
        if row is not None and (adjudicate or reviewer not in standing(db, row[0])):
            item = _item(db, row)
        else:
            row = db.execute(_lease_query(adjudicate), {"r": reviewer, "now": t}).fetchone()
            if row is None and not adjudicate:  # only skipped items left: they come back, the longest-skipped first
                row = db.execute(_SKIPPED, {"r": reviewer, "now": t}).fetchone()
            if row is None:
                return None
            item = _item(db, row)
        db.execute("INSERT OR REPLACE INTO review_leases (item_id, reviewer, until) VALUES (?, ?, ?)",
                   (item.id, reviewer, t + lease_seconds))
    return item


def release(db: sqlite3.Connection, reviewer: str) -> int:
    """Give back every lease the reviewer holds (quitting does not need this: leases expire)."""
    with transaction(db):
        return db.execute("DELETE FROM review_leases WHERE reviewer = ?", (reviewer,)).rowcount


def decide(db: sqlite3.Connection, ref: str | int | Item, reviewer: str, action: str, *, codes: Sequence[str] | None = None,
           memo: str | None = None, shown: dict[str, Any] | None = None, codebook: Codebook | None = None,
           clock: float | None = None) -> ReviewDecision:
    """Record one decision and settle the item, in one transaction. ``edit`` and ``adjudicate`` take the reviewer's
    full code set; ``accept`` takes the suggestion; ``reject`` means none of the suggested codes applies."""
    if action not in ACTIONS:
        raise InputError(f"unknown decision {action!r}", hint="decisions: " + ", ".join(ACTIONS))
    t = time.time() if clock is None else clock
    with transaction(db):
        item = ref if isinstance(ref, Item) else find_item(db, ref)
        row = db.execute("SELECT status, proposed FROM review_items WHERE id = ?", (item.id,)).fetchone()
        item.status, item.proposed = row[0], json.loads(row[1])
        if action in ("edit", "adjudicate"):
            if codes is None:
                raise InputError(f"{action} needs the codes", field="--codes", hint="--codes CODE[,CODE...] (none: --codes '')")
            codes = sorted(dict.fromkeys(c for c in codes if c))
            if codebook is not None:
                unknown = [c for c in codes if c not in codebook]
                if unknown:
                    raise InputError(f"unknown code {unknown[0]!r}", field="--codes",
                                     hint="codes: " + ", ".join(c.id for c in codebook.codes))
        elif codes:
            raise InputError(f"{action} takes no --codes (use edit)", field="--codes")
        if action == "adjudicate" and item.status != "adjudicate":
            raise InputError(f"item {item.uid} is {item.status}, not waiting for adjudication")
        if action != "adjudicate" and item.status != "open" and reviewer not in standing(db, item.id):
            raise InputError(f"item {item.uid} is {item.status}", hint="`assistcode review status` shows what is open")
        holder = db.execute("SELECT reviewer FROM review_leases WHERE item_id = ? AND reviewer != ? AND until > ?",
                            (item.id, reviewer, t)).fetchone()
        if holder and action != "adjudicate" and item.reviews_needed == 1:
            raise InputError(f"item {item.uid} is claimed by {holder[0]}", hint="take another with `review next`")
        after = {"accept": item.proposed, "reject": [], "edit": codes, "adjudicate": codes, "skip": None}[action]
        shown = {"suggestion": _provenance(db, item.coder), **(shown or {})}
        previous = standing(db, item.id).get(reviewer)
        record = ReviewDecision(uuid.uuid4().hex, item.uid, reviewer, now(), action,
                                codes_before=previous["codes"] if previous else item.proposed, codes_after=after,
                                memo=memo or None)
        db.execute("INSERT INTO review_decisions (uid, item_id, reviewer, decided_at, action, codes_before, codes_after, "
                   "memo, shown) VALUES (?,?,?,?,?,?,?,?,?)",
                   (record.uid, item.id, reviewer, record.decided_at, action, json.dumps(record.codes_before),
                    json.dumps(after) if after is not None else None, record.memo, json.dumps(shown or {})))
        db.execute("DELETE FROM review_leases WHERE item_id = ? AND reviewer = ?", (item.id, reviewer))
        record.status = settle(db, item, [reviewer]) if action != "skip" else item.status
    return record


def _provenance(db: sqlite3.Connection, coder: str) -> dict[str, Any]:
    """The model and prompt of a suggestion, as every decision records them."""
    row = db.execute("SELECT id, json_extract(manifest, '$.provider.provider'), json_extract(manifest, '$.provider.model'), "
                     "json_extract(manifest, '$.template.name'), json_extract(manifest, '$.template.version'), "
                     "json_extract(manifest, '$.template.hash') FROM runs WHERE coder = ?", (coder,)).fetchone()
    if row is None:
        return {"coder": coder}
    return {"coder": coder, "run": row[0], "provider": row[1], "model": row[2], "template": row[3],
            "template_version": row[4], "template_hash": row[5]}


def undo(db: sqlite3.Connection, reviewer: str, *, lease_seconds: float = LEASE_SECONDS) -> ReviewDecision | None:
    """Take back the reviewer's latest live decision (a new record), and lease its item back to them."""
    with transaction(db):
        rows = db.execute("SELECT d.uid, d.item_id, d.codes_after, d.codes_before, d.action FROM review_decisions d "
                          "WHERE d.reviewer = ? AND d.action != 'undo' AND d.uid NOT IN "
                          "(SELECT undoes FROM review_decisions WHERE reviewer = ? AND action = 'undo') "
                          "ORDER BY d.id DESC LIMIT 1", (reviewer, reviewer)).fetchall()
        if not rows:
            return None
        uid, item_id, after, before, action = rows[0]
        item = find_item(db, item_id)
        record = ReviewDecision(uuid.uuid4().hex, item.uid, reviewer, now(), "undo", undoes=uid, undone_action=action)
        db.execute("INSERT INTO review_decisions (uid, item_id, reviewer, decided_at, action, codes_before, codes_after, "
                   "undoes) VALUES (?,?,?,?,?,?,?,?)",
                   (record.uid, item_id, reviewer, record.decided_at, "undo", after or "null", before, uid))
        record.status = settle(db, item, [reviewer])
        db.execute("INSERT OR REPLACE INTO review_leases (item_id, reviewer, until) VALUES (?, ?, ?)",
                   (item_id, reviewer, time.time() + lease_seconds))
    return record


def history(db: sqlite3.Connection, reviewer: str, limit: int = 50) -> list[str]:
    """The item uids this reviewer decided, most recent first (for going back)."""
    return [r[0] for r in db.execute(
        "SELECT i.uid FROM review_decisions d JOIN review_items i ON i.id = d.item_id WHERE d.reviewer = ? "
        "AND d.action IN ('accept', 'reject', 'edit', 'adjudicate') GROUP BY i.uid ORDER BY max(d.id) DESC LIMIT ?",
        (reviewer, limit))]


__all__ = ["ACTIONS", "REVIEWED", "Item", "ReviewDecision", "claim", "decide", "describe", "find_item", "history", "open_items", "release", "reviewer_name",
           "settle", "standing", "undo"]
