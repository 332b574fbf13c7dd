"""Runs in the project store: creating and finding them, writing each segment's outcome atomically, the call cache."""
from __future__ import annotations

import json
import os
import socket
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from ..errors import AssistcodeError, InputError
from ..store.db import now, transaction
from .replies import Proposal

HEARTBEAT_S = 5.0
"""How often a running command says it is alive."""
STALE_S = 120.0
"""A run whose owner on another host has not said so for this long is taken to be dead."""
_ACTIVE: set[int] = set()
"""Runs this process is coding now (a run owned by this pid but not here was left by an earlier call that died)."""


class RunBusy(AssistcodeError):
    """The run is being coded by another live process."""

    exit_code = 1


@dataclass
class RunRow:
    id: int
    coder: str
    fingerprint: str
    status: str
    manifest: dict[str, Any]
    started_at: str
    finished_at: str | None
    owner: str | None = None
    """"host pid start-time" of the process coding it, while one is."""
    heartbeat_at: str | None = None


def _row(r: sqlite3.Row) -> RunRow:
    keys = r.keys()
    return RunRow(r["id"], r["coder"], r["fingerprint"], r["status"], json.loads(r["manifest"]), r["started_at"],
                  r["finished_at"], r["owner"] if "owner" in keys else None,
                  r["heartbeat_at"] if "heartbeat_at" in keys else None)


# -- who is coding a run ---------------------------------------------------------------------------------------------
def _start_time(pid: int) -> str:
    """The kernel's start time of process ``pid`` (Linux), "" where unknown: tells a pid from its reuse."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def this_process() -> str:
    """This process as a run's owner: "host pid start-time"."""
    return f"{socket.gethostname()} {os.getpid()} {_start_time(os.getpid()) or '-'}"


def owner_alive(owner: str | None, heartbeat_at: str | None, run_id: int) -> bool:
    """Whether the process named ``owner`` is still coding. On this host: the process exists and started when it
    did (and, for this very process, is coding the run now); elsewhere: it said so less than STALE_S ago."""
    if not owner:
        return False
    host, _, rest = owner.partition(" ")
    pid_text, _, started = rest.partition(" ")
    if host == socket.gethostname() and pid_text.isdigit():
        pid = int(pid_text)
        if pid == os.getpid():
            return run_id in _ACTIVE
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, someone else's
        return started in ("", "-") or _start_time(pid) in ("", started)
    if not heartbeat_at:
        return False
    age = (datetime.now(timezone.utc) - datetime.fromisoformat(heartbeat_at)).total_seconds()
    return age < STALE_S


def claim_run(db: sqlite3.Connection, fingerprint: str, coder_prefix: str, manifest: dict[str, Any]) -> tuple[RunRow, bool]:
    """Take the run of ``fingerprint`` for this process, creating it if there is none, in one transaction: two
    commands never code one run at once. Returns the run and whether it existed. A run coded by another live
    process is :class:`RunBusy`; one whose process died is taken over."""
    me = this_process()
    with transaction(db):
        run = find_run(db, fingerprint)
        if run is not None and run.status == "running" and owner_alive(run.owner, run.heartbeat_at, run.id):
            host, _, rest = (run.owner or "").partition(" ")
            raise RunBusy(f"run {run.id} ({run.coder}) is being coded by process {rest.split(' ')[0]} on {host} "
                          f"(last heard from {run.heartbeat_at}); wait for it to end, or stop it and run this command again")
        existed = run is not None
        if run is None:
            run = create_run(db, coder_prefix, fingerprint, manifest)
        db.execute("UPDATE runs SET status = 'running', owner = ?, heartbeat_at = ? WHERE id = ?", (me, now(), run.id))
    _ACTIVE.add(run.id)
    return get_run(db, run.id), existed


def shown_status(run: RunRow) -> str:
    """The run's status as a person should read it: a ``running`` run whose process died is ``died`` (resumable)."""
    if run.status == "running" and run.owner and not owner_alive(run.owner, run.heartbeat_at, run.id):
        return "died"
    return run.status


def heartbeat(db: sqlite3.Connection, run_id: int) -> None:
    """Say this process is still coding the run."""
    with transaction(db):
        db.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ? AND owner = ?", (now(), run_id, this_process()))


def release_run(db: sqlite3.Connection, run_id: int, status: str = "stopped") -> None:
    """Let go of a run this process was coding (after a crash or an interrupt: ``stopped``, resumable)."""
    _ACTIVE.discard(run_id)
    with transaction(db):
        db.execute("UPDATE runs SET status = ?, owner = NULL WHERE id = ? AND owner = ? AND status = 'running'",
                   (status, run_id, this_process()))


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
        # a coder imported from another project's export may already hold the name: take the next free number
        while db.execute("SELECT 1 FROM coders WHERE name = ?", (f"run{next_id}:{coder_prefix}",)).fetchone():
            next_id += 1
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_run_id', ?)", (str(next_id),))
        coder = f"run{next_id}:{coder_prefix}"
        db.execute("INSERT INTO coders (name, kind, metadata, created_at) VALUES (?, 'model', ?, ?)",
                   (coder, json.dumps({"run_id": next_id}), now()))
        db.execute("INSERT INTO runs (id, coder, fingerprint, status, manifest, started_at) VALUES (?, ?, ?, 'running', ?, ?)",
                   (next_id, coder, fingerprint, json.dumps(manifest), now()))
    return get_run(db, next_id)


def update_run(db: sqlite3.Connection, run_id: int, status: str, manifest: dict[str, Any], finished: bool) -> None:
    """The run's end state and manifest; its owner lets go of it."""
    with transaction(db):
        db.execute("UPDATE runs SET status = ?, manifest = ?, finished_at = ?, owner = NULL WHERE id = ?",
                   (status, json.dumps(manifest), now() if finished else None, run_id))
    _ACTIVE.discard(run_id)


def done_segments(db: sqlite3.Connection, run_id: int, ok_only: bool = False) -> set[str]:
    """Segments the run has an outcome for (``ok_only``: coded)."""
    sql = "SELECT segment_id FROM run_segments WHERE run_id = ?" + (" AND status = 'ok'" if ok_only else "")
    return {r[0] for r in db.execute(sql, (run_id,))}


def settled_segments(db: sqlite3.Connection, run_id: int, retry_replied: bool) -> set[str]:
    """Segments a re-run leaves alone: those coded, and those the model itself failed (a malformed, cut or
    incomplete reply, kept in ``raw``): at temperature 0 the same prompt gets the same reply. Failures with no
    reply (server down, timeouts, refused requests, a prompt over the context window) are retried, and with
    ``retry_replied`` (temperature above 0: another sample may do) every failure is."""
    sql = "SELECT segment_id FROM run_segments WHERE run_id = ? AND (status = 'ok'" + (
        ")" if retry_replied else " OR raw IS NOT NULL)")
    return {r[0] for r in db.execute(sql, (run_id,))}


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
                   self_consistency: float | None = None, raw: str | None = None, endpoint: str | None = None) -> bool:
    """One segment's outcome, its proposals and the fact that the run saw it, in one transaction. A segment that
    failed is not "seen": agreement leaves it out instead of reading it as "no code". A new outcome replaces a
    failure (a retry); a segment already coded keeps its first outcome, so nothing is ever recorded twice.
    Returns whether this outcome was recorded."""
    with transaction(db):
        before = db.execute("SELECT status FROM run_segments WHERE run_id = ? AND segment_id = ?", (run.id, segment_id)).fetchone()
        if before is not None and before[0] == "ok":
            return False
        if before is not None:
            db.execute("DELETE FROM run_segments WHERE run_id = ? AND segment_id = ?", (run.id, segment_id))
        db.execute(
            "INSERT INTO run_segments (run_id, segment_id, status, reason, attempts, prompt_tokens, completion_tokens, cost, "
            "prompt_hash, unknown_codes, quotes_not_found, self_consistency, raw, created_at, endpoint) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run.id, segment_id, status, reason, attempts, prompt_tokens, completion_tokens, cost, prompt_hash,
             json.dumps(unknown_codes) if unknown_codes else None, quotes_not_found, self_consistency, raw, now(), endpoint))
        if status != "ok":
            return True
        db.execute("INSERT INTO seen (segment_id, coder) VALUES (?, ?)", (segment_id, run.coder))
        db.executemany(
            "INSERT INTO annotations (segment_id, coder, code, confidence, rationale, evidence, evidence_start, "
            "evidence_end, evidence_found, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(segment_id, run.coder, p.code, p.confidence, p.rationale, p.evidence, p.evidence_start, p.evidence_end,
              int(p.evidence_found), run.id) for p in proposals])
        # every located quote is also a span coding of the run (eval --spans)
        quotes = [(p.code, s, e) for p in proposals for s, e in
                  ([(p.evidence_start, p.evidence_end)] if p.evidence_found and p.evidence_start is not None else [])
                  + list(getattr(p, "more_quotes", ()))]
        if quotes:
            from ..spans import run_quote_spans

            run_quote_spans(db, run.id, run.coder, segment_id, quotes)
    return True


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
        for sql in ("DELETE FROM annotations WHERE coder = ?", "DELETE FROM seen WHERE coder = ?",
                    "DELETE FROM span_codings WHERE coder = ?"):
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


@dataclass
class EndpointModes:
    """The one memory of each endpoint's structured-output mode (:class:`assistcode.providers.base.ModeMemory`),
    handed to a provider as it is built. ``write`` runs each write (the engine's keeps it for later while another
    command holds the store)."""

    db: sqlite3.Connection
    write: Callable[[Callable[[], None]], Any] = lambda write: write()

    def get(self, endpoint: str, model: str) -> str | None:
        return endpoint_mode(self.db, endpoint, model)

    def remember(self, endpoint: str, model: str, mode: str) -> None:
        self.write(lambda: remember_mode(self.db, endpoint, model, mode))


def failed_segments(db: sqlite3.Connection, run_id: int) -> list[tuple[str, str | None]]:
    """(segment id, reason) of each segment of a run that failed."""
    return [tuple(r) for r in db.execute("SELECT segment_id, reason FROM run_segments WHERE run_id = ? AND status = 'failed'",
                                         (run_id,))]


def raw_reply(db: sqlite3.Connection, run_id: int, segment_id: str) -> tuple[str, str | None] | None:
    """(status, raw reply or None) of one segment of a run; None when the run never reached the segment. A raw reply
    is kept where a code was dropped, a quote was not found, or the segment failed."""
    row = db.execute("SELECT status, raw FROM run_segments WHERE run_id = ? AND segment_id = ?", (run_id, segment_id)).fetchone()
    return (row[0], row[1]) if row else None


def segments_with_raw(db: sqlite3.Connection, run_id: int) -> list[str]:
    """The segments of a run whose raw reply was kept."""
    return [r[0] for r in db.execute("SELECT segment_id FROM run_segments WHERE run_id = ? AND raw IS NOT NULL "
                                     "ORDER BY segment_id", (run_id,))]
