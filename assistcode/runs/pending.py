"""Writes of a run to a project store that another command may hold (a long import): each write waits briefly, is
kept in order for later if the store is busy, and paid replies the store never took by the end go to a side file
that the next run stores first. Nothing paid for is lost (issue 13 item 6)."""
from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

from ..store.db import StoreBusy, busy_timeout, store_wait, transaction
from . import store as rs

WRITE_WAIT = 0.25
"""Seconds a write waits for a busy store during a run before it is kept for later."""
BUSY_RETRY = 1.0
"""Seconds before writes kept for later are tried again."""


class PendingWrites:
    """A run's writes to ``db``, in order, never lost to a busy store."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.pending: list[tuple[Callable[[], None], str | None]] = []
        """Writes the busy store did not take yet, in order (each with the cache key it stores, if any)."""
        self.unstored: dict[str, dict[str, Any]] = {}
        """Paid replies not in the store yet, by cache key: kept in memory, or in a side file at the end."""
        self.busy_until = 0.0

    def store(self, write: Callable[[], None], key: str | None = None) -> None:
        """Write now, or keep the write for later if another command holds the store's write lock: a run never
        waits long on the store, and never loses what it could not write yet."""
        self.pending.append((write, key))
        if time.monotonic() >= self.busy_until:
            self.flush(WRITE_WAIT)

    def store_reply(self, key: str, reply: dict[str, Any], *, with_next: bool = False) -> None:
        """Store a paid reply in the call cache; ``with_next``: in the transaction of the next write (the segment's
        outcome that follows at once), one commit instead of two. Until then it is in :attr:`unstored`."""
        self.unstored[key] = reply
        write = lambda: rs.cache_put(self.db, key, reply["reply"], reply["prompt_tokens"], reply["completion_tokens"],  # noqa: E731
                                     reply["model"], reply["mode"])
        if with_next:
            self.pending.append((write, key))
        else:
            self.store(write, key)

    def flush(self, wait: float) -> bool:
        """Write what is pending, in order, in one transaction, waiting at most ``wait`` seconds for the lock. True
        when done. A write that fails for another reason than a busy store: the writes are made one at a time, as
        they come, so those before it are kept."""
        with busy_timeout(self.db, wait):
            if len(self.pending) > 1:
                done = len(self.pending)
                try:
                    with transaction(self.db):
                        for write, _ in self.pending:
                            write()
                except StoreBusy:
                    self.busy_until = time.monotonic() + BUSY_RETRY
                    return False
                except Exception:
                    done = 0
                for write, key in self.pending[:done]:
                    if key is not None:
                        self.unstored.pop(key, None)
                del self.pending[:done]
            while self.pending:
                write, key = self.pending[0]
                try:
                    write()
                except StoreBusy:
                    self.busy_until = time.monotonic() + BUSY_RETRY
                    return False
                self.pending.pop(0)
                if key is not None:
                    self.unstored.pop(key, None)
        return True

    def side_folder(self) -> Path | None:
        row = self.db.execute("PRAGMA database_list").fetchone()
        return Path(row[2]).parent / ".assistcode" / "unstored" if row and row[2] else None

    def keep_unstored(self) -> Path | None:
        """Paid replies the store would not take, written (atomically, synced) to a side file the next run stores."""
        folder = self.side_folder()
        if not self.unstored or folder is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"replies-{os.getpid()}-{time.time_ns()}.jsonl"
        tmp = path.with_suffix(".part")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps({"key": k, **v}) + "\n" for k, v in self.unstored.items())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        self.unstored.clear()
        return path

    def restore_unstored(self) -> int:
        """Store the replies an earlier run kept in side files (then delete the files). Returns how many."""
        folder = self.side_folder()
        if folder is None or not folder.is_dir():
            return 0
        n = 0
        for path in sorted(folder.glob("replies-*.jsonl")):
            entries = []
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue  # another command stored it first
            for line in text.splitlines():
                try:
                    e = json.loads(line)
                    entries.append((str(e["key"]), str(e["reply"]), e["prompt_tokens"], e["completion_tokens"], e.get("model"), e.get("mode")))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a crash: that reply is asked again
            with transaction(self.db):
                for entry in entries:
                    rs.cache_put(self.db, *entry)
            path.unlink(missing_ok=True)
            n += len(entries)
        return n

    def settle(self) -> None:
        """At the end: store what is pending, waiting as long as the store's wait. If it stays busy, keep the paid
        replies in a side file and stop with one line (the next run stores them and pays nothing again)."""
        if self.pending and not self.flush(store_wait()):
            path = self.keep_unstored()
            kept = f"{len(self.unstored)} paid replies kept in {path}" if path else "no reply was lost"
            raise StoreBusy(f"the project store stayed busy for {store_wait():g} s (another command holds its write lock): "
                            f"{kept}; run the same command again when it is done: it stores them and pays nothing twice")

    def abandon(self) -> None:
        """On the way out after an error: store what the store takes at once, keep the rest in a side file."""
        if not self.flush(WRITE_WAIT):
            self.keep_unstored()
