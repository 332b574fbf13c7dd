"""The segments a run codes (all but the skipped roles and speakers), read from the project store as they are
needed, so that a run's memory does not grow with its corpus: in memory, each selected segment is one rowid (8
bytes); its text is read a chunk at a time.
"""
from __future__ import annotations

import sqlite3
from array import array
from typing import Any, Callable, Iterator, Sequence, overload

from ..corpus import SEGMENT_COLUMNS, context_text
from ..errors import InputError
from ..model import Segment

CHUNK = 512
"""Segments read from the store at once."""


class StoredSegments(Sequence[Segment]):
    """Segments of a store by rowid, in rowid order (the order :func:`~assistcode.corpus.iter_segments` gives); a
    :class:`Sequence` like the list it stands for, read ``CHUNK`` segments at a time."""

    def __init__(self, db: sqlite3.Connection, rowids: array) -> None:
        self.db, self.rowids = db, rowids

    def __len__(self) -> int:
        return len(self.rowids)

    def __iter__(self) -> Iterator[Segment]:
        for i in range(0, len(self.rowids), CHUNK):
            yield from self._read(self.rowids[i:i + CHUNK])

    @overload
    def __getitem__(self, i: int) -> Segment: ...

    @overload
    def __getitem__(self, i: slice) -> list[Segment]: ...

    def __getitem__(self, i: int | slice) -> Segment | list[Segment]:
        if isinstance(i, slice):
            wanted = self.rowids[i]
            return [s for k in range(0, len(wanted), CHUNK) for s in self._read(wanted[k:k + CHUNK])]
        return self._read(array("q", [self.rowids[i]]))[0]

    def _read(self, rowids: Sequence[int]) -> list[Segment]:
        if not rowids:
            return []
        marks = ",".join("?" * len(rowids))
        found = {r[0]: Segment(*r[1:]) for r in self.db.execute(
            f"SELECT s.rowid, {SEGMENT_COLUMNS} FROM segments s WHERE s.rowid IN ({marks})", tuple(rowids))}
        missing = [r for r in rowids if r not in found]
        if missing:
            raise InputError(f"{len(missing)} segments of the run were removed from the project while it ran",
                             hint="run the same command again: it codes the segments the project has now")
        return [found[r] for r in rowids]


def stored_selection(db: sqlite3.Connection, keep: Callable[[str, str | None, str | None], bool]) -> StoredSegments:
    """The segments of the store that ``keep(id, role, speaker)`` keeps, in rowid order."""
    rowids = array("q")
    for rowid, sid, role, speaker in db.execute("SELECT rowid, id, role, speaker FROM segments ORDER BY rowid"):
        if keep(sid, role, speaker):
            rowids.append(rowid)
    return StoredSegments(db, rowids)


class StoredContexts:
    """Each segment's preceding turns as text (``{{ context }}``), read from the store when a prompt is rendered:
    the ``turns`` segments before it in rowid order, as long as they are of its document (what
    :func:`~assistcode.corpus.preceding` gives over every segment, selected or not). ``get`` as a dict's."""

    def __init__(self, db: sqlite3.Connection, turns: int) -> None:
        self.db, self.turns = db, turns

    def get(self, segment_id: str, default: str = "") -> str:
        if self.turns <= 0:
            return default
        row = self.db.execute("SELECT rowid, document_id FROM segments WHERE id = ?", (segment_id,)).fetchone()
        if row is None:
            return default
        before = self.db.execute(f"SELECT s.document_id, {SEGMENT_COLUMNS} FROM segments s WHERE s.rowid < ? "
                                 "ORDER BY s.rowid DESC LIMIT ?", (row[0], self.turns)).fetchall()
        neighbours: list[Segment] = []
        for r in before:  # nearest first: stop at the first turn of another document
            if r[0] != row[1]:
                break
            neighbours.append(Segment(*r[1:]))
        return context_text(neighbours[::-1]) if neighbours else default


ROLES = ("interviewer", "participant")


def select_segments(segments: Sequence[Segment], config: Any) -> list[Segment]:
    """The segments a run codes: all but the skipped roles and speakers. Settles ``None`` settings of ``config``
    (interviews, where segments have roles: skip the interviewer, one turn of context; else neither)."""
    keep = selection_rule(config, any(s.role for s in segments), {s.speaker for s in segments if s.speaker})
    return [s for s in segments if keep(s.role, s.speaker)]


def selection_rule(config: Any, interview: bool, speakers_present: set[str]) -> Callable[[str | None, str | None], bool]:
    """:func:`select_segments`'s rule, ``keep(role, speaker)``, from whether the corpus is an interview (some
    segment has a role) and the speakers it has. Settles ``None`` settings of ``config`` as it does."""
    if config.context_turns is None:
        config.context_turns = 1 if interview else 0
    if config.context_turns < 0:
        raise InputError(f"must be 0 or more, not {config.context_turns}", field="--context-turns")
    if config.skip_roles is None:
        config.skip_roles = ("interviewer",) if interview else ()
    roles = {r.strip().casefold() for r in config.skip_roles} - {"none", ""}
    for r in sorted(roles - set(ROLES)):
        raise InputError(f"unknown role {r!r}", field="--skip-role", hint="roles: interviewer, participant, or none")
    config.skip_roles = tuple(sorted(roles))
    speakers = {n.strip().casefold() for n in config.skip_speakers if n.strip()}
    if speakers:
        present = {s.casefold() for s in speakers_present}
        for n in sorted(speakers - present):
            raise InputError(f"no speaker named {n!r} in the project", field="--skip-speaker",
                             hint="speakers: " + ", ".join(sorted(speakers_present)[:12]))
    if not roles and not speakers:
        return lambda role, speaker: True
    return lambda role, speaker: not (role in roles or bool(speaker and speaker.casefold() in speakers))
