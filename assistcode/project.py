"""A project: a directory holding one SQLite store. The Python API behind every CLI command."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .corpus import SEGMENTS_OF_DOCUMENT, ImportReport, import_corpus, iter_segments
from .errors import GoldError, ProjectError
from .gold import CodeChanges, GoldTable, code_changes
from .ids import canonical_json
from .model import Code, Codebook, Segment
from .readers import ReadOptions
from .store import DB_NAME, connect, transaction
from .store.db import now

CACHE_DIR = ".assistcode"


@dataclass
class GoldReport:
    coders: list[str] = field(default_factory=list)
    units: int = 0
    annotations_added: int = 0
    seen_added: int = 0
    repeats: int = 0
    rows_skipped: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    replaced: dict[str, int] = field(default_factory=dict)
    """coder -> segments whose codes the file replaced (``replace=True``)."""
    codes_added: int = 0
    codes_removed: int = 0
    unchanged: int = 0
    """(coder, segment) pairs already imported with the same codes."""


class Project:
    """An assistcode project. ``Project.init(dir)`` creates one; ``Project(dir)`` opens one."""

    def __init__(self, path: str | Path = ".") -> None:
        self.path = Path(path).resolve()
        db_path = self.path / DB_NAME
        if not db_path.exists():
            raise ProjectError(f"{self.path} is not an assistcode project (no {DB_NAME})",)
        self.db: sqlite3.Connection = connect(db_path)

    @classmethod
    def init(cls, path: str | Path = ".") -> "Project":
        """Create the project directory and its store (idempotent)."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ProjectError(f"{path} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        (path / CACHE_DIR).mkdir(exist_ok=True)
        connect(path / DB_NAME).close()
        return cls(path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def cache_dir(self) -> Path:
        d = self.path / CACHE_DIR
        d.mkdir(exist_ok=True)
        return d

    # -- settings --------------------------------------------------------------------------------------------------
    SETTINGS = {"local_only": bool}

    def config(self) -> dict[str, Any]:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        return {"local_only": False, **(json.loads(row[0]) if row else {})}

    def set_config(self, key: str, value: str | bool) -> None:
        if key not in self.SETTINGS:
            raise ProjectError(f"unknown setting {key!r}; settings: {', '.join(self.SETTINGS)}")
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "on", "off", "1", "0", "yes", "no"):
                raise ProjectError(f"{key} takes on or off, not {value!r}")
            value = value.lower() in ("true", "on", "1", "yes")
        settings = {**self.config(), key: value}
        with transaction(self.db):
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('config', ?)", (json.dumps(settings),))

    # -- corpus -----------------------------------------------------------------------------------------------
    def import_corpus(self, paths: Iterable[str | Path], *, segmenter: str | None = None,
                      segmenter_options: dict[str, Any] | None = None, options: ReadOptions | None = None,
                      skip_bad: bool = False, metadata_file: str | Path | None = None) -> ImportReport:
        """Read, segment and store transcripts: all or nothing unless ``skip_bad``. ``metadata_file`` is a table
        with a ``source`` column of file names and a column per metadata field. ``segmenter`` None: ``row`` for
        tables, ``turn`` for transcripts."""
        options = options or ReadOptions()
        if options.cache_dir is None:
            options = ReadOptions(**{**options.__dict__, "cache_dir": self.cache_dir})
        return import_corpus(self.db, paths, segmenter=segmenter, segmenter_options=segmenter_options,
                             options=options, skip_bad=skip_bad, metadata_file=metadata_file)

    def segments(self, document_ids: Iterable[str] | None = None) -> list[Segment]:
        return list(iter_segments(self.db, document_ids))

    def counts(self) -> dict[str, int]:
        tables = ("documents", "segments", "codebooks", "coders", "annotations")
        return {t: self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}

    # -- codebook -----------------------------------------------------------------------------------------------
    def import_codebook(self, source: str | Path | Codebook) -> tuple[Codebook, bool]:
        """Store a codebook version and make it current. Returns it and whether it was new."""
        from .codebook import load_codebook  # pydantic: imported when a codebook is read, not at startup

        codebook = source if isinstance(source, Codebook) else load_codebook(source)
        name = str(source) if not isinstance(source, Codebook) else None
        with transaction(self.db):
            exists = self.db.execute("SELECT 1 FROM codebooks WHERE hash = ?", (codebook.hash,)).fetchone()
            if not exists:
                seq = self.db.execute("SELECT coalesce(max(seq), 0) + 1 FROM codebooks").fetchone()[0]
                self.db.execute(
                    "INSERT INTO codebooks (hash, seq, name, description, body, source, created_at, exclusive) "
                    "VALUES (?,?,?,?,?,?,?,?)",
                    (codebook.hash, seq, codebook.name, codebook.description,
                     canonical_json([c.as_dict() for c in codebook.codes]), name, now(), int(codebook.exclusive)),
                )
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('current_codebook', ?)", (codebook.hash,))
        return codebook, not exists

    def codebook(self, version: str | None = None) -> Codebook:
        """The current codebook, or the version whose hash starts with ``version``."""
        if version is None:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'current_codebook'").fetchone()
            if row is None:
                raise ProjectError("this project has no codebook yet", )
            version = row[0]
        rows = self.db.execute("SELECT name, description, body, exclusive FROM codebooks WHERE hash LIKE ?",
                               (version + "%",)).fetchall()
        if len(rows) != 1:
            raise ProjectError(f"{'no' if not rows else 'more than one'} codebook version matches {version!r}")
        name, description, body, exclusive = rows[0]
        codes = tuple(Code(**{**c, "examples": tuple(c["examples"])}) for c in json.loads(body))
        return Codebook(name=name, codes=codes, description=description, exclusive=bool(exclusive))

    def codebook_versions(self) -> list[dict[str, Any]]:
        current = self.db.execute("SELECT value FROM meta WHERE key = 'current_codebook'").fetchone()
        return [
            {"seq": r[0], "hash": r[1], "name": r[2], "codes": len(json.loads(r[3])), "source": r[4],
             "created_at": r[5], "current": bool(current and current[0] == r[1])}
            for r in self.db.execute("SELECT seq, hash, name, body, source, created_at FROM codebooks ORDER BY seq")
        ]

    # -- human codes ----------------------------------------------------------------------------------------------
    def _resolve_units(self, table: GoldTable) -> dict[str, list[str]]:
        """unit -> [segment id]: a segment id, or the key or id of a document with exactly one segment."""
        resolved: dict[str, list[str]] = {}
        for unit in table.units:
            if self.db.execute("SELECT 1 FROM segments WHERE id = ?", (unit,)).fetchone():
                resolved[unit] = [unit]
                continue
            docs = self.db.execute("SELECT id FROM documents WHERE key = ? OR id = ?", (unit, unit)).fetchall()
            if len(docs) == 1:
                segs = [r[0] for r in self.db.execute(SEGMENTS_OF_DOCUMENT, (docs[0][0],))]
                if len(segs) == 1:
                    resolved[unit] = segs
        return resolved

    def import_gold(self, table: GoldTable, *, skip_bad: bool = False, coder_kind: str = "human",
                    replace: bool = False) -> GoldReport:
        """Store human codes, checked against the segments and the current codebook. All or nothing unless
        ``skip_bad``, which counts and reports each row left out. Importing a coder again: see
        :class:`~assistcode.gold.CodeChanges` (codes that differ are refused unless ``replace``)."""
        codebook = self.codebook()
        names = {}
        for c in codebook.codes:
            names.setdefault(c.name, c.id)
        report = GoldReport(coders=table.coders, units=len(table.units), repeats=table.repeats, notes=list(table.notes))
        units = self._resolve_units(table)
        seen: set[tuple[str, str]] = set()
        annotations: list[tuple[str, str, str]] = []
        for row in table.rows:
            problem = None
            if row.unit not in units:
                problem = GoldError(f"unknown segment {row.unit.replace(chr(31), ' / ')[:80]!r}", path=table.source,
                                    line=row.line, hint="use a segment_id from `assistcode segments`")
            elif row.code is not None and row.code not in codebook and row.code not in names:
                problem = GoldError(f"unknown code {row.code!r}", path=table.source, line=row.line, field="code",
                                    hint="codes must be ids (or names) in the project's current codebook; "
                                         "import-gold --add-codes adds new ones to a new version")
            if problem:
                if not skip_bad:
                    raise problem
                report.rows_skipped += 1
                report.problems.append(str(problem))
                continue
            for seg in units[row.unit]:
                seen.add((seg, row.coder))
                if row.code is not None:
                    annotations.append((seg, row.coder, row.code if row.code in codebook else names[row.code]))
        if not table.explicit_seen:
            for coder in table.coders:
                docs = {s for s, c in seen if c == coder}
                for doc_segments in self._documents_of(docs).values():
                    seen.update((s, coder) for s in doc_segments)
        changes = self._code_changes(seen, annotations)
        if changes.changed and not replace:
            raise GoldError(changes.refusal(), path=table.source)
        report.replaced, report.unchanged = changes.per_coder(), changes.unchanged
        report.codes_added, report.codes_removed = changes.added, changes.removed
        with transaction(self.db):
            # the file's codes replace the coder's on the segments it names and codes differently
            self.db.executemany("DELETE FROM annotations WHERE coder = ? AND segment_id = ?", list(changes.changed))
            cur = self.db.execute(
                "INSERT INTO imports (kind, source, created_at) VALUES ('gold', ?, ?)", (Path(table.source).name, now())
            )
            import_id = cur.lastrowid
            for coder in table.coders:
                existing = self.db.execute("SELECT kind FROM coders WHERE name = ?", (coder,)).fetchone()
                if existing and existing[0] != coder_kind:
                    raise GoldError(f"coder {coder!r} already exists as a {existing[0]} coder", path=table.source)
                self.db.execute("INSERT OR IGNORE INTO coders (name, kind, created_at) VALUES (?, ?, ?)",
                                (coder, coder_kind, now()))
            before = self.db.total_changes
            self.db.executemany("INSERT OR IGNORE INTO seen (segment_id, coder, import_id) VALUES (?, ?, ?)",
                                [(s, c, import_id) for s, c in sorted(seen)])
            report.seen_added = self.db.total_changes - before
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO annotations (segment_id, coder, code, import_id) VALUES (?, ?, ?, ?)",
                [(s, c, code, import_id) for s, c, code in annotations],
            )
            report.annotations_added = self.db.total_changes - before
            self.db.execute("UPDATE imports SET counts = ? WHERE id = ?", (json.dumps(
                {"annotations_added": report.annotations_added, "seen_added": report.seen_added,
                 "rows_skipped": report.rows_skipped, "repeats": report.repeats}), import_id))
        return report

    def _code_changes(self, seen: set[tuple[str, str]], annotations: list[tuple[str, str, str]]) -> CodeChanges:
        """What storing (segment, coder) views and their codes would change in the codes already stored."""
        incoming: dict[tuple[str, str], set[str]] = {(c, s): set() for s, c in seen}
        for s, c, code in annotations:
            incoming[(c, s)].add(code)
        stored: dict[tuple[str, str], set[str]] = {}
        for coder in {c for _, c in seen}:
            for (seg,) in self.db.execute("SELECT segment_id FROM seen WHERE coder = ?", (coder,)):
                if (coder, seg) in incoming:
                    stored.setdefault((coder, seg), set())
            for seg, code in self.db.execute("SELECT segment_id, code FROM annotations WHERE coder = ?", (coder,)):
                if (coder, seg) in incoming:
                    stored.setdefault((coder, seg), set()).add(code)
        return code_changes({k: frozenset(v) for k, v in stored.items()}, {k: frozenset(v) for k, v in incoming.items()})

    def _documents_of(self, segment_ids: set[str]) -> dict[str, list[str]]:
        """document id -> all its segment ids, for the documents holding ``segment_ids``."""
        docs: dict[str, list[str]] = {}
        for seg in segment_ids:
            doc = self.db.execute("SELECT document_id FROM segments WHERE id = ?", (seg,)).fetchone()[0]
            if doc not in docs:
                docs[doc] = [r[0] for r in self.db.execute(SEGMENTS_OF_DOCUMENT, (doc,))]
        return docs

    def coders(self) -> list[dict[str, Any]]:
        return [
            {"name": r[0], "kind": r[1], "segments_seen": r[2], "annotations": r[3]}
            for r in self.db.execute(
                "SELECT c.name, c.kind, (SELECT count(*) FROM seen s WHERE s.coder = c.name), "
                "(SELECT count(*) FROM annotations a WHERE a.coder = c.name) FROM coders c ORDER BY c.created_at, c.name"
            )
        ]
