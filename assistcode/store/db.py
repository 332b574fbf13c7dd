"""Opening the store, running migrations, transactions."""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from .migrations import MIGRATIONS

DB_NAME = "assistcode.db"
CACHE_KIB = -65536
"""Page cache per connection (negative: KiB): 64 MiB keeps the segment index in memory during large imports."""


def now() -> str:
    """UTC time in ISO 8601 with seconds, as stored everywhere."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating) a store and bring its schema up to date. WAL, ``synchronous=NORMAL``: durable against a
    process crash, and readers never block the writer."""
    db = sqlite3.connect(str(path), isolation_level=None, timeout=30.0, check_same_thread=False)
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
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception (nesting becomes a savepoint)."""
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
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def schema(db: sqlite3.Connection) -> dict[str, list[str]]:
    """Table name -> column names, for tests of what the migrations produce."""
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    return {t: [r[1] for r in db.execute(f"PRAGMA table_info('{t}')")] for t in tables}
