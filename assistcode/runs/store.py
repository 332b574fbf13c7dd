"""Runs in the project store: creating and finding them, writing each segment's outcome atomically, the call cache."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import InputError
from ..store.db import now, transaction
from .replies import Proposal


@dataclass
class RunRow:
    id: int
    coder: str
    fingerprint: str
    status: str
    manifest: dict[str, Any]
    started_at: str
    finished_at: str | None


def _row(r: sqlite3.Row) -> RunRow:
    return RunRow(r["id"], r["coder"], r["fingerprint"], r["status"], json.loads(r["manifest"]), r["started_at"], r["finished_at"])


def find_run(db: sqlite3.Connection, fingerprint: str) -> RunRow | None:
    r = db.execute("SELECT * FROM runs WHERE fingerprint = ? ORDER BY id DESC LIMIT 1", (fingerprint,)).fetchone()
    return _row(r) if r else None


def get_run(db: sqlite3.Connection, ref: str | int) -> RunRow:
    """A run by id or coder name."""
    r = db.execute("SELECT * FROM runs WHERE id = ? OR coder = ?", (str(ref), str(ref))).fetchone()
    if r is None:
        raise InputError(f"no run {ref!r}", hint="see `assistcode runs list`")
    return _row(r)


def list_runs(db: sqlite3.Connection) -> list[RunRow]:
    return [_row(r) for r in db.execute("SELECT * FROM runs ORDER BY id")]


def create_run(db: sqlite3.Connection, coder_prefix: str, fingerprint: str, manifest: dict[str, Any]) -> RunRow:
    with transaction(db):
        # run numbers are never reused, even after `runs delete`: review logs and exports name runs by them
        last = db.execute("SELECT value FROM meta WHERE key = 'last_run_id'").fetchone()
        next_id = max(int(last[0]) if last else 0, db.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()[0]) + 1
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_run_id', ?)", (str(next_id),))
        coder = f"run{next_id}:{coder_prefix}"
        db.execute("INSERT INTO coders (name, kind, metadata, created_at) VALUES (?, 'model', ?, ?)",
                   (coder, json.dumps({"run_id": next_id}), now()))
        db.execute("INSERT INTO runs (id, coder, fingerprint, status, manifest, started_at) VALUES (?, ?, ?, 'running', ?, ?)",
                   (next_id, coder, fingerprint, json.dumps(manifest), now()))
    return get_run(db, next_id)


def update_run(db: sqlite3.Connection, run_id: int, status: str, manifest: dict[str, Any], finished: bool) -> None:
    with transaction(db):
        db.execute("UPDATE runs SET status = ?, manifest = ?, finished_at = ? WHERE id = ?",
                   (status, json.dumps(manifest), now() if finished else None, run_id))


def done_segments(db: sqlite3.Connection, run_id: int) -> set[str]:
    return {r[0] for r in db.execute("SELECT segment_id FROM run_segments WHERE run_id = ?", (run_id,))}


def segment_counts(db: sqlite3.Connection, run_id: int) -> dict[str, Any]:
    row = db.execute(
        "SELECT sum(status = 'ok'), sum(status = 'failed'), coalesce(sum(prompt_tokens), 0), "
        "coalesce(sum(completion_tokens), 0), sum(cost), sum(quotes_not_found), "
        "sum(json_array_length(coalesce(unknown_codes, '[]'))) FROM run_segments WHERE run_id = ?", (run_id,)).fetchone()
    return {"ok": row[0] or 0, "failed": row[1] or 0, "prompt_tokens": round(row[2]), "completion_tokens": round(row[3]),
            "cost_usd": row[4], "quotes_not_found": row[5] or 0, "unknown_codes_dropped": row[6] or 0}


def record_segment(db: sqlite3.Connection, run: RunRow, segment_id: str, *, status: str, reason: str | None = None,
                   proposals: Iterable[Proposal] = (), attempts: int = 1, prompt_tokens: float = 0,
                   completion_tokens: float = 0, cost: float | None = None, prompt_hash: str | None = None,
                   unknown_codes: list[str] | None = None, quotes_not_found: int = 0,
                   self_consistency: float | None = None, raw: str | None = None) -> None:
    """One segment's outcome, its proposals and the fact that the run saw it, in one transaction. A segment that
    failed is not "seen": agreement leaves it out instead of reading it as "no code"."""
    with transaction(db):
        db.execute(
            "INSERT INTO run_segments (run_id, segment_id, status, reason, attempts, prompt_tokens, completion_tokens, cost, "
            "prompt_hash, unknown_codes, quotes_not_found, self_consistency, raw, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run.id, segment_id, status, reason, attempts, prompt_tokens, completion_tokens, cost, prompt_hash,
             json.dumps(unknown_codes) if unknown_codes else None, quotes_not_found, self_consistency, raw, now()))
        if status != "ok":
            return
        db.execute("INSERT INTO seen (segment_id, coder) VALUES (?, ?)", (segment_id, run.coder))
        db.executemany(
            "INSERT INTO annotations (segment_id, coder, code, confidence, rationale, evidence, evidence_start, "
            "evidence_end, evidence_found, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(segment_id, run.coder, p.code, p.confidence, p.rationale, p.evidence, p.evidence_start, p.evidence_end,
              int(p.evidence_found), run.id) for p in proposals])


def record_candidates(db: sqlite3.Connection, run: RunRow, segment_id: str, candidates: list[dict[str, Any]]) -> None:
    db.executemany(
        "INSERT INTO candidates (run_id, segment_id, name, definition, evidence, evidence_found, confidence) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(run.id, segment_id, c["name"], c["definition"], c["evidence"], int(c["evidence_found"]), c["confidence"])
         for c in candidates])


def delete_run(db: sqlite3.Connection, ref: str | int) -> RunRow:
    """Remove a run, its proposals and outcomes (the call cache stays: a re-run pays nothing)."""
    run = get_run(db, ref)
    decided = db.execute("SELECT count(*) FROM review_decisions d JOIN review_items i ON i.id = d.item_id "
                         "WHERE i.coder = ?", (run.coder,)).fetchone()[0]
    if decided:
        raise InputError(f"run {run.id} has {decided} review decisions: the audit trail keeps its suggestions",
                         hint="runs that were reviewed cannot be deleted")
    with transaction(db):
        db.execute("DELETE FROM review_leases WHERE item_id IN (SELECT id FROM review_items WHERE coder = ?)", (run.coder,))
        db.execute("DELETE FROM review_items WHERE coder = ?", (run.coder,))
        db.execute("DELETE FROM suite_runs WHERE coder = ?", (run.coder,))
        for sql in ("DELETE FROM annotations WHERE coder = ?", "DELETE FROM seen WHERE coder = ?"):
            db.execute(sql, (run.coder,))
        db.execute("DELETE FROM run_segments WHERE run_id = ?", (run.id,))
        db.execute("DELETE FROM candidates WHERE run_id = ?", (run.id,))
        db.execute("DELETE FROM scores WHERE run_id = ?", (run.id,))
        db.execute("DELETE FROM content_free_scores WHERE run_id = ?", (run.id,))
        db.execute("DELETE FROM runs WHERE id = ?", (run.id,))
        db.execute("DELETE FROM coders WHERE name = ?", (run.coder,))
    return run


def cache_get(db: sqlite3.Connection, key: str) -> sqlite3.Row | None:
    return db.execute("SELECT reply, prompt_tokens, completion_tokens, model, mode FROM call_cache WHERE key = ?", (key,)).fetchone()


def cache_put(db: sqlite3.Connection, key: str, reply: str, prompt_tokens: int, completion_tokens: int,
              model: str | None, mode: str | None) -> None:
    with transaction(db):
        db.execute("INSERT OR REPLACE INTO call_cache (key, reply, prompt_tokens, completion_tokens, model, mode, created_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", (key, reply, prompt_tokens, completion_tokens, model, mode, now()))


def endpoint_mode(db: sqlite3.Connection, endpoint: str, model: str) -> str | None:
    r = db.execute("SELECT mode FROM endpoint_modes WHERE endpoint = ? AND model = ?", (endpoint, model)).fetchone()
    return r[0] if r else None


def remember_mode(db: sqlite3.Connection, endpoint: str, model: str, mode: str) -> None:
    with transaction(db):
        db.execute("INSERT OR REPLACE INTO endpoint_modes (endpoint, model, mode, updated_at) VALUES (?, ?, ?, ?)",
                   (endpoint, model, mode, now()))
