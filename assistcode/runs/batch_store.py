"""A run's Batch API submissions in the project store (migration ``011_batches``): each submission is written
before it is uploaded, each request's state and replies as its batch is read back, each in one transaction."""
from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..store.db import now, transaction
from .batch_files import Ingested, Outcome

TERMINAL = {"completed", "failed", "expired", "cancelled"}
"""Batch statuses after which nothing more comes: its files are read."""
DONE = {"ingested", "abandoned"}
"""Our own end states of a submission."""


@dataclass
class RequestState:
    status: str
    """sent (in a batch not read yet) | done (has replies) | retry (to send again) | sync (to send synchronously) |
    failed (for good, in this command)."""
    attempts: int = 0
    replies: int = 0
    """How many replies it got (malformed ones are asked again: several)."""
    error: str | None = None


@dataclass
class Submission:
    id: int
    run_id: int
    endpoint: str
    tag: str
    input_file_id: str | None
    batch_id: str | None
    status: str
    requests: int
    bytes: int
    counts: dict[str, Any]
    error: str | None
    created_at: str
    updated_at: str


def _submission(r: sqlite3.Row) -> Submission:
    return Submission(r["id"], r["run_id"], r["endpoint"], r["tag"], r["input_file_id"], r["batch_id"], r["status"],
                      r["requests"], r["bytes"], json.loads(r["counts"]), r["error"], r["created_at"], r["updated_at"])


def load_requests(db: sqlite3.Connection, run_id: int | None) -> dict[str, RequestState]:
    """Each request's state and how many replies it has (the replies themselves: :func:`response`)."""
    if run_id is None:
        return {}
    return {r[0]: RequestState(r[1], r[2], r[3], r[4]) for r in db.execute(
        "SELECT custom_id, status, attempts, json_array_length(responses), error FROM batch_requests WHERE run_id = ?",
        (run_id,))}


def response(db: sqlite3.Connection, run_id: int, cid: str, k: int) -> dict[str, Any]:
    """The ``k``-th reply (from 0) a request got."""
    row = db.execute("SELECT json_extract(responses, ?) FROM batch_requests WHERE run_id = ? AND custom_id = ?",
                     (f"$[{int(k)}]", run_id, cid)).fetchone()
    return json.loads(row[0])


def submissions(db: sqlite3.Connection, run_id: int, open_only: bool = False) -> list[Submission]:
    sql = "SELECT * FROM batches WHERE run_id = ?" + (" AND status NOT IN ('ingested', 'abandoned')" if open_only else "")
    return [_submission(r) for r in db.execute(sql + " ORDER BY id", (run_id,))]


def add_submission(db: sqlite3.Connection, run_id: int, endpoint: str, ids: list[str], nbytes: int) -> Submission:
    """A submission of ``ids``, before anything is uploaded: the requests are ``sent`` in it from now on."""
    tag = "assistcode-" + secrets.token_hex(8)
    with transaction(db):
        cur = db.execute("INSERT INTO batches (run_id, endpoint, tag, status, requests, bytes, created_at, updated_at) "
                         "VALUES (?, ?, ?, 'preparing', ?, ?, ?, ?)", (run_id, endpoint, tag, len(ids), nbytes, now(), now()))
        row_id = cur.lastrowid
        db.executemany(
            "INSERT INTO batch_requests (run_id, custom_id, batch, status, attempts) VALUES (?, ?, ?, 'sent', 1) "
            "ON CONFLICT (run_id, custom_id) DO UPDATE SET batch = excluded.batch, status = 'sent', attempts = attempts + 1",
            [(run_id, cid, row_id) for cid in ids])
    return get_submission(db, row_id)


def get_submission(db: sqlite3.Connection, row_id: int) -> Submission:
    return _submission(db.execute("SELECT * FROM batches WHERE id = ?", (row_id,)).fetchone())


def update_submission(db: sqlite3.Connection, row_id: int, **values: Any) -> None:
    if "counts" in values:
        values["counts"] = json.dumps(values["counts"])
    sets = ", ".join(f"{k} = ?" for k in values)
    with transaction(db):
        db.execute(f"UPDATE batches SET {sets}, updated_at = ? WHERE id = ?", (*values.values(), now(), row_id))


def held_by(db: sqlite3.Connection, row_id: int) -> set[str]:
    """The requests a submission holds that have no reply yet."""
    return {r[0] for r in db.execute("SELECT custom_id FROM batch_requests WHERE batch = ? AND status = 'sent'", (row_id,))}


def known_ids(db: sqlite3.Connection, run_id: int) -> set[str]:
    return {r[0] for r in db.execute("SELECT custom_id FROM batch_requests WHERE run_id = ?", (run_id,))}


def record_results(db: sqlite3.Connection, sub: Submission, read: Callable[[Callable[[str, Outcome], None]], Ingested],
                   missing_reason: str, status: str, next_state: Any) -> dict[str, Any]:
    """A finished batch's results, in one transaction: ``read(take)`` reads its files and hands each request's outcome
    to ``take`` as it goes; each request the batch held gets its reply, or ``next_state(attempts, transient)`` (retry,
    sync or failed) with the reason; requests with no line get ``missing_reason``. The submission is ``ingested``
    with its counts. Returns the counts."""
    counts: dict[str, Any] = {"replies": 0, "failed": 0, "sent_again": 0, "sync": 0, "status": status}

    def fail(cid: str, attempts: int, reason: str | None, transient: bool) -> None:
        state = next_state(attempts, transient)
        counts[{"retry": "sent_again", "sync": "sync", "failed": "failed"}[state]] += 1
        db.execute("UPDATE batch_requests SET status = ?, error = ? WHERE run_id = ? AND custom_id = ?",
                   (state, reason, sub.run_id, cid))

    with transaction(db):
        held = {r[0]: r[1] for r in db.execute(
            "SELECT custom_id, attempts FROM batch_requests WHERE batch = ? AND status = 'sent'", (sub.id,))}

        def take(cid: str, outcome: Outcome) -> None:
            attempts = held.pop(cid)
            if outcome.reply is None:
                return fail(cid, attempts, outcome.error, outcome.transient)
            db.execute("UPDATE batch_requests SET status = 'done', error = NULL, responses = "
                       "json_insert(responses, '$[#]', json(?)) WHERE run_id = ? AND custom_id = ?",
                       (json.dumps(outcome.reply), sub.run_id, cid))
            counts["replies"] += 1

        got = read(take)
        for cid, attempts in held.items():  # no line for it
            fail(cid, attempts, missing_reason, True)
        counts.update(malformed_lines=len(got.malformed_lines), unknown_ids=len(got.unknown_ids),
                      duplicates=len(got.duplicates), notes=(got.malformed_lines + got.unknown_ids + got.duplicates)[:20])
        db.execute("UPDATE batches SET status = 'ingested', counts = ?, updated_at = ? WHERE id = ?",
                   (json.dumps(counts), now(), sub.id))
    return counts


def abandon(db: sqlite3.Connection, sub: Submission, reason: str, next_state: Any) -> None:
    """A submission that never became a batch (upload refused, or lost before the batch was created)."""
    with transaction(db):
        rows = db.execute("SELECT custom_id, attempts FROM batch_requests WHERE batch = ? AND status = 'sent'",
                          (sub.id,)).fetchall()
        for cid, attempts in rows:
            db.execute("UPDATE batch_requests SET status = ?, error = ? WHERE run_id = ? AND custom_id = ?",
                       (next_state(attempts, True), reason, sub.run_id, cid))
        db.execute("UPDATE batches SET status = 'abandoned', error = ?, updated_at = ? WHERE id = ?", (reason, now(), sub.id))


def reopen_failures(db: sqlite3.Connection, run_id: int | None, fallback: str) -> None:
    """A new command asks again for what an earlier one gave up on (as a synchronous re-run retries failures with
    no reply): failed requests are sent again; requests left for a synchronous call follow ``fallback``."""
    if run_id is None:
        return
    with transaction(db):
        db.execute("UPDATE batch_requests SET status = 'retry', attempts = 0 WHERE run_id = ? AND status = 'failed'", (run_id,))
        if fallback != "sync":
            db.execute("UPDATE batch_requests SET status = 'retry', attempts = 0 WHERE run_id = ? AND status = 'sync'", (run_id,))


def totals(db: sqlite3.Connection, run_id: int) -> dict[str, Any]:
    """What the run sent through the Batch API: requests by state, submissions by status, skipped lines."""
    by_state = {r[0]: r[1] for r in db.execute(
        "SELECT status, count(*) FROM batch_requests WHERE run_id = ? GROUP BY status", (run_id,))}
    subs = submissions(db, run_id)
    skipped: dict[str, int] = {"malformed_lines": 0, "unknown_ids": 0, "duplicates": 0}
    for s in subs:
        for k in skipped:
            skipped[k] += int(s.counts.get(k, 0))
    return {"requests": by_state, "submissions": len(subs),
            "batches": {st: sum(1 for s in subs if s.status == st) for st in sorted({s.status for s in subs})},
            "rejected_or_lost": sum(1 for s in subs if s.status == "abandoned"),
            "expired": sum(1 for s in subs if s.counts.get("status") == "expired"),
            **skipped}


def sent_ids(db: sqlite3.Connection, sub_ids: Iterable[int]) -> int:
    ids = list(sub_ids)
    if not ids:
        return 0
    return db.execute(f"SELECT count(*) FROM batch_requests WHERE status = 'sent' AND batch IN ({','.join('?' * len(ids))})",
                      ids).fetchone()[0]
