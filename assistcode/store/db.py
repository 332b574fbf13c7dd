"""Opening the store, running migrations, transactions."""
from __future__ import annotations

import math
import os
import sqlite3
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from ..errors import AssistcodeError
from .migrations import MIGRATIONS

DB_NAME = "assistcode.db"
CACHE_KIB = -65536
"""Page cache per connection (negative: KiB): 64 MiB keeps the segment index in memory during large imports and
reads (a scan of 300,000 segments in id order takes 0.86 s with it, 1.19 s with 4 MiB)."""
RUN_CACHE_KIB = -4096
"""The page cache while a run codes (:func:`page_cache`): a cache keeps every page its connection writes, so with 64
MiB the writer of a long run grew with its store (89 MB at 2,000 segments, 112 MB at 20,000 in the scale bench); a
run reads little (a cache lookup and a status per call), and the OS file cache still holds the file."""


STORE_WAIT_ENV = "ASSISTCODE_STORE_WAIT"
DEFAULT_STORE_WAIT = 60.0
"""Seconds a command waits for another command's write lock before it gives up (``ASSISTCODE_STORE_WAIT``)."""


class StoreBusy(AssistcodeError):
    """Another process held the store's write lock for longer than the wait: nothing was written."""

    exit_code = 1


def store_wait() -> float:
    """The wait for a busy store, in seconds: ``ASSISTCODE_STORE_WAIT`` if it is a number above 0, else 60."""
    try:
        value = float(os.environ.get(STORE_WAIT_ENV, DEFAULT_STORE_WAIT))
    except ValueError:
        return DEFAULT_STORE_WAIT
    return value if math.isfinite(value) and value > 0 else DEFAULT_STORE_WAIT


def is_busy(exc: BaseException) -> bool:
    """An SQLite error that says another connection holds a lock (worth waiting for, never a bug)."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _busy(db: sqlite3.Connection) -> StoreBusy:
    try:
        path = db.execute("PRAGMA database_list").fetchone()[2] or "the store"
    except sqlite3.Error:
        path = "the store"
    wait = db.execute("PRAGMA busy_timeout").fetchone()[0] / 1000
    return StoreBusy(f"{path}: the project store is busy (another command held its write lock for more than "
                     f"{wait:g} s); run this command again when it is done (wait longer: {STORE_WAIT_ENV}=SECONDS)")


@contextmanager
def _pragma(db: sqlite3.Connection, name: str, value: int) -> Iterator[None]:
    """An integer PRAGMA set to ``value`` within the block, the connection's own restored after."""
    before = db.execute(f"PRAGMA {name}").fetchone()[0]
    db.execute(f"PRAGMA {name} = {int(value)}")
    try:
        yield
    finally:
        db.execute(f"PRAGMA {name} = {int(before)}")


def busy_timeout(db: sqlite3.Connection, seconds: float) -> AbstractContextManager[None]:
    """Wait at most ``seconds`` for a lock within the block (the connection's own wait is restored after)."""
    return _pragma(db, "busy_timeout", max(0, int(seconds * 1000)))


def page_cache(db: sqlite3.Connection, kib: int) -> AbstractContextManager[None]:
    """``PRAGMA cache_size`` = ``kib`` (negative: KiB) within the block; the connection's own after (a smaller cache
    gives back the pages over it at once)."""
    return _pragma(db, "cache_size", kib)


def now() -> str:
    """UTC time in ISO 8601 with seconds, as stored everywhere."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating) a store and bring its schema up to date. WAL, ``synchronous=NORMAL``: durable against a
    process crash, and readers never block the writer."""
    db = sqlite3.connect(str(path), isolation_level=None, timeout=store_wait(), check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA cache_size={CACHE_KIB}")
    db.execute("PRAGMA foreign_keys=ON")
    migrate(db)
    return db


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction. Returns their names."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {r[0] for r in db.execute("SELECT name FROM _migrations")}
    applied = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        with transaction(db):
            for statement in split_statements(sql):
                db.execute(statement)
            db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, now()))
        applied.append(name)
    return applied


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (semicolons inside comments and strings are safe)."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(l.strip().startswith("--") or not l.strip() for l in buffer.splitlines()):
        raise ValueError(f"incomplete SQL statement in migration: {buffer.strip()[:80]}")
    return statements


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception (nesting becomes a savepoint). A write
    lock still held by another process after the connection's wait is :class:`StoreBusy`, and nothing is written."""
    if db.in_transaction:
        name = f"sp{id(object())}"
        db.execute(f"SAVEPOINT {name}")
        try:
            yield db
        except BaseException:
            db.execute(f"ROLLBACK TO {name}")
            db.execute(f"RELEASE {name}")
            raise
        db.execute(f"RELEASE {name}")
        return
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if is_busy(exc):
            raise _busy(db) from None
        raise
    try:
        yield db
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    try:
        db.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        if is_busy(exc):
            raise _busy(db) from None
        raise


def schema(db: sqlite3.Connection) -> dict[str, list[str]]:
    """Table name -> column names, for tests of what the migrations produce."""
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    return {t: [r[1] for r in db.execute(f"PRAGMA table_info('{t}')")] for t in tables}
