"""Human codes: long, wide and one-hot layouts, parsed into one table of (unit, coder, code) rows, and stored.

Sources are files (CSV, TSV, JSONL, Parquet, XLSX), pandas DataFrames or Hugging Face ``datasets.Dataset`` objects.
A row with ``code=None`` records that the coder saw the unit and applied no code. Units are the source's own keys;
:func:`store_gold` maps them onto segments (a segment id, or the key of a one-segment document) and owns the
``seen``, ``annotations`` and ``coders`` rows of human imports.
"""
from __future__ import annotations

import csv
import fnmatch
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal, Sequence, Union

from .corpus import SEGMENTS_OF_DOCUMENT
from .errors import GoldError, ProjectError
from .model import Code, Codebook
from .readers.tabular import KEY_SEP, cell_text, jsonl_problem, unit_key
from .store.db import now, transaction
from .textio import sniff_file_encoding

if TYPE_CHECKING:
    from .project import Project

GoldSource = Union[str, Path, Any]
"""A file path, a pandas DataFrame or a ``datasets.Dataset`` (see :func:`assistcode.frames.as_frame`)."""
FRAME_NAME = "dataframe"
"""How errors and the import log name a table given in memory (rows are numbered from 1)."""

Layout = Literal["long", "wide", "onehot"]


@dataclass(frozen=True)
class GoldRow:
    unit: str
    coder: str
    code: str | None
    line: int


@dataclass
class GoldTable:
    """Parsed human codes, with what was assumed and what was passed over."""

    source: str
    rows: list[GoldRow] = field(default_factory=list)
    explicit_seen: bool = True
    """False where the file records only applied codes: the reader of this table must assume what was seen."""
    repeats: int = 0
    """(coder, unit) ratings given again later in the file: the first is kept."""
    notes: list[str] = field(default_factory=list)

    @property
    def coders(self) -> list[str]:
        return list(dict.fromkeys(r.coder for r in self.rows))

    @property
    def units(self) -> list[str]:
        return list(dict.fromkeys(r.unit for r in self.rows))

    @property
    def codes(self) -> list[str]:
        return sorted({r.code for r in self.rows if r.code is not None})

    def code_sets(self, assume_all_units: bool = False) -> dict[str, dict[str, frozenset[str]]]:
        """coder -> unit -> set of codes (empty: seen, no code), for the units each coder saw. Where the file has
        no record of what was seen, a coder saw the units they have rows for, or every unit of the file with
        ``assume_all_units``."""
        out: dict[str, dict[str, set[str]]] = {}
        for r in self.rows:
            codes = out.setdefault(r.coder, {}).setdefault(r.unit, set())
            if r.code is not None:
                codes.add(r.code)
        if not self.explicit_seen and assume_all_units:
            units = self.units
            for coder in out.values():
                for u in units:
                    coder.setdefault(u, set())
        return {c: {u: frozenset(s) for u, s in units.items()} for c, units in out.items()}


@dataclass
class CodeChanges:
    """What importing coders' codes again would change where the store already holds codes for the same coder
    and segment: (coder, segment) -> (codes before, codes after), and how many such pairs stay the same.

    Re-import semantics: a coder's file speaks for that coder on the segments it names (the segments it records
    the coder saw). Where the store already holds different codes for that coder there, the import is refused
    unless ``replace``; with it, that coder's codes on those segments become the file's. Segments the file does
    not name, and other coders, are never touched; segments new to the coder are added. Never a silent merge."""

    changed: dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)
    unchanged: int = 0

    def per_coder(self) -> dict[str, int]:
        """coder -> segments whose codes change, in the order first met."""
        out: dict[str, int] = {}
        for coder, _ in self.changed:
            out[coder] = out.get(coder, 0) + 1
        return out

    @property
    def added(self) -> int:
        return sum(len(after - before) for before, after in self.changed.values())

    @property
    def removed(self) -> int:
        return sum(len(before - after) for before, after in self.changed.values())

    def refusal(self) -> str:
        """One line: whose codes would change, and how to go on."""
        who = ", ".join(f"coder {c!r} on {n} segment{'s' if n != 1 else ''}" for c, n in self.per_coder().items())
        return (f"this file codes differently what is already imported ({who}: {self.added} codes added, "
                f"{self.removed} removed); pass --replace to make each coder's codes on the segments it names the file's")


def code_changes(stored: dict[tuple[str, str], frozenset[str]],
                 incoming: dict[tuple[str, str], frozenset[str]]) -> CodeChanges:
    """Compare codes already stored with a file's, for the (coder, segment) pairs the file names."""
    changes = CodeChanges()
    for key, after in incoming.items():
        before = stored.get(key)
        if before is None:
            continue  # new to this coder: added, not a change
        if before == after:
            changes.unchanged += 1
        else:
            changes.changed[key] = (before, after)
    return changes


def _name(source: GoldSource) -> Path:
    """What messages call a source: its path, or ``dataframe`` for a table in memory."""
    from .frames import is_table

    return Path(FRAME_NAME) if is_table(source) else Path(source)


def read_records(path: GoldSource, encoding: str | None = None) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """Header and (line, row) pairs of a CSV/TSV (with file line numbers), JSONL, Parquet or XLSX file, or of a
    DataFrame or ``datasets.Dataset`` (rows numbered from 1)."""
    from .frames import as_frame, is_table

    if is_table(path):
        frame = as_frame(path)
        frame = frame.astype(object).where(frame.notna(), None)
        return [str(c) for c in frame.columns], ((i + 1, {str(k): v for k, v in r.items()})
                                                 for i, r in enumerate(frame.to_dict("records")))
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise GoldError("no such file", path=path)
    if path.stat().st_size == 0:
        raise GoldError("empty file", path=path)
    if suffix in (".csv", ".tsv"):
        enc = encoding or sniff_file_encoding(path)[0]
        fh = path.open(encoding=enc, newline="")
        reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",", strict=True)
        try:
            header = list(reader.fieldnames or [])
        except csv.Error as exc:
            fh.close()
            raise GoldError(f"malformed header ({exc})", path=path, line=1) from None

        def rows() -> Iterator[tuple[int, dict[str, Any]]]:
            with fh:
                start = 2
                while True:
                    try:
                        row = next(reader)
                    except StopIteration:
                        return
                    except csv.Error as exc:
                        raise GoldError(f"malformed record ({exc}; a quote opened here and never closed?)", path=path,
                                        line=start) from None
                    if None in row:  # DictReader files extra fields under None
                        raise GoldError(f"{len(header) + len(row[None])} fields where the header has {len(header)} "
                                        "(a ragged row)", path=path, line=start)
                    yield start, row
                    start = reader.line_num + 1

        return header, rows()
    import pandas as pd

    if suffix not in (".jsonl", ".parquet", ".xlsx"):
        raise GoldError(f"unsupported file type {suffix or '(none)'}", path=path, hint="use .csv, .tsv, .jsonl, .parquet or .xlsx")
    if suffix == ".jsonl" and (problem := jsonl_problem(path)):
        raise GoldError(problem[1], path=path, line=problem[0])
    try:
        if suffix == ".jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_excel(path, dtype=object)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # pandas, pyarrow and openpyxl raise many kinds for a damaged file
        text = str(exc).strip().splitlines()
        raise GoldError(f"cannot be read ({type(exc).__name__}: {text[0][:200] if text else ''})", path=path) from None
    frame = frame.astype(object).where(frame.notna(), None)
    line_base = 2 if suffix == ".xlsx" else 1
    return list(frame.columns), ((i + line_base, r) for i, r in enumerate(frame.to_dict("records")))


def _text(value: Any) -> str:
    return cell_text(value).strip()


def _need(header: Sequence[str], columns: Sequence[str], path: Path, option: str) -> None:
    for c in columns:
        if c not in header:
            raise GoldError(f"no column named {c!r}", path=path, line=1, field=option, hint="columns: " + ", ".join(header))


def read_long(path: GoldSource, *, unit_columns: Sequence[str] = ("segment_id",), coder_column: str = "coder",
              code_column: str = "code", encoding: str | None = None, split: str | None = None) -> GoldTable:
    """One row per applied code: (unit, coder, code). A row with an empty code records "seen, no code"."""
    header, rows = read_records(path, encoding)
    path = _name(path)
    _need(header, [*unit_columns, coder_column, code_column], path, "columns")
    table = GoldTable(str(path))
    any_empty = False
    for line, row in rows:
        unit, coder = unit_key(row, unit_columns), _text(row.get(coder_column))
        if not unit.strip(KEY_SEP):
            raise GoldError("empty unit id", path=path, line=line, field=unit_columns[0])
        if not coder:
            raise GoldError("empty coder", path=path, line=line, field=coder_column)
        raw = _text(row.get(code_column))
        codes = [c.strip() for c in raw.split(split)] if split and raw else [raw]
        for code in codes:
            any_empty |= not code
            table.rows.append(GoldRow(unit, coder, code or None, line))
    table.explicit_seen = any_empty
    if not any_empty:
        table.notes.append(
            f"{path.name}: no row records a segment seen and left uncoded, so each coder is taken to have seen "
            "every segment of the documents they coded"
        )
    return table


def read_wide(path: GoldSource, *, unit_columns: Sequence[str] = ("segment_id",), coders: Sequence[str] | None = None,
              split: str | None = ";", encoding: str | None = None, empty: Literal["missing", "uncoded"] = "missing") -> GoldTable:
    """One row per unit, one column per coder holding the code (several separated by ``split``).

    An empty cell means the coder did not code the unit (``empty="missing"``) or saw it and applied no code
    (``empty="uncoded"``)."""
    header, rows = read_records(path, encoding)
    path = _name(path)
    _need(header, unit_columns, path, "--unit-column")
    coder_columns = list(coders) if coders else [c for c in header if c not in unit_columns]
    _need(header, coder_columns, path, "--coders")
    if not coder_columns:
        raise GoldError("no coder columns", path=path, line=1, hint="name them with --coders")
    table = GoldTable(str(path))
    for line, row in rows:
        unit = unit_key(row, unit_columns)
        if not unit.strip(KEY_SEP):
            raise GoldError("empty unit id", path=path, line=line, field=unit_columns[0])
        for coder in coder_columns:
            raw = _text(row.get(coder))
            if not raw:
                if empty == "uncoded":
                    table.rows.append(GoldRow(unit, coder, None, line))
                continue
            for code in (raw.split(split) if split else [raw]):
                if code.strip():
                    table.rows.append(GoldRow(unit, coder, code.strip(), line))
    return table


_TRUE = {"1", "1.0", "true", "yes", "y", "x"}
_FALSE = {"0", "0.0", "false", "no", "n", ""}


def expand_columns(header: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """Column names matching each pattern (``fnmatch`` globs), in header order; a pattern matching none is an error."""
    out: list[str] = []
    for pattern in patterns:
        hits = [c for c in header if fnmatch.fnmatchcase(c, pattern)]
        if not hits:
            raise GoldError(f"no column matches {pattern!r}", line=1, field="--code-columns", hint="columns: " + ", ".join(header))
        out.extend(h for h in hits if h not in out)
    return out


def read_onehot(path: GoldSource, *, unit_columns: Sequence[str], coder_column: str,
                code_columns: Sequence[str] | None = None, encoding: str | None = None) -> GoldTable:
    """One row per (coder, unit), one 0/1 column per code. A coder who rated a unit twice keeps the first rating;
    the repeats are counted."""
    header, rows = read_records(path, encoding)
    path = _name(path)
    _need(header, [*unit_columns, coder_column], path, "columns")
    codes = expand_columns(header, code_columns) if code_columns else [c for c in header if c not in (*unit_columns, coder_column)]
    table = GoldTable(str(path))
    done: set[tuple[str, str]] = set()
    for line, row in rows:
        unit, coder = unit_key(row, unit_columns), _text(row.get(coder_column))
        if not coder:
            raise GoldError("empty coder", path=path, line=line, field=coder_column)
        if (coder, unit) in done:
            table.repeats += 1
            continue
        done.add((coder, unit))
        table.rows.append(GoldRow(unit, coder, None, line))
        for code in codes:
            value = _text(row.get(code)).lower()
            if value in _TRUE:
                table.rows.append(GoldRow(unit, coder, code, line))
            elif value not in _FALSE:
                raise GoldError(f"expected 0 or 1, found {value!r}", path=path, line=line, field=code,
                                hint="name the code columns with --code-columns (globs such as 'type.*' work)")
    if table.repeats:
        table.notes.append(f"{path.name}: {table.repeats} repeated ratings (same coder, same unit) ignored; the first was kept")
    return table


def read_gold(path: GoldSource, layout: Layout = "long", **options: Any) -> GoldTable:
    """Parse human codes in the given layout, from a file, a DataFrame or a ``datasets.Dataset``.

    >>> import pandas as pd
    >>> table = read_gold(pd.DataFrame({"segment_id": ["s1", "s1", "s2"], "coder": ["ann", "ann", "ann"],
    ...                                 "code": ["safety", "workload", None]}))
    >>> table.coders, table.units, table.codes
    (['ann'], ['s1', 's2'], ['safety', 'workload'])
    """
    readers = {"long": read_long, "wide": read_wide, "onehot": read_onehot}
    if layout not in readers:
        raise GoldError(f"unknown layout {layout!r}", field="--format", hint="long, wide or onehot")
    return readers[layout](path, **options)


def new_codes(table: GoldTable, codebook: Codebook | None) -> list[str]:
    """Codes the file applies that the codebook has neither as an id nor as a name, in the order first met."""
    known = set() if codebook is None else {c.id for c in codebook.codes} | {c.name for c in codebook.codes}
    return [c for c in dict.fromkeys(r.code for r in table.rows if r.code is not None) if c not in known]


def import_adding_codes(project: Project, table: GoldTable, **options: Any) -> tuple[GoldReport, list[str]]:
    """Inductive coding by humans: codes in ``table`` that the current codebook lacks are added (id and name = the
    code as written) to a new codebook version, then the codes are imported, all in one transaction: a file that
    fails to import leaves neither. Returns the import report and the codes added."""
    try:
        current = project.codebook()
    except ProjectError:
        current = None  # no codebook yet: the file's codes become the first version
    added = new_codes(table, current)
    with transaction(project.db):
        if added:
            base = current or Codebook(name=f"codes from {Path(table.source).name}", codes=())
            project.import_codebook(Codebook(name=base.name, codes=base.codes + tuple(Code(id=c, name=c) for c in added),
                                             description=base.description, exclusive=base.exclusive))
        report = project.import_gold(table, **options)
    return report, added


# -- storing human codes ---------------------------------------------------------------------------------------------
@dataclass
class GoldReport:
    """What an import of human codes did: nothing is left out without being counted here."""

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


def resolve_units(db: sqlite3.Connection, table: GoldTable) -> dict[str, list[str]]:
    """unit -> [segment id]: a segment id, or the key or id of a document with exactly one segment."""
    resolved: dict[str, list[str]] = {}
    for unit in table.units:
        if db.execute("SELECT 1 FROM segments WHERE id = ?", (unit,)).fetchone():
            resolved[unit] = [unit]
            continue
        docs = db.execute("SELECT id FROM documents WHERE key = ? OR id = ?", (unit, unit)).fetchall()
        if len(docs) == 1:
            segs = [r[0] for r in db.execute(SEGMENTS_OF_DOCUMENT, (docs[0][0],))]
            if len(segs) == 1:
                resolved[unit] = segs
    return resolved


def documents_of(db: sqlite3.Connection, segment_ids: set[str]) -> dict[str, list[str]]:
    """document id -> all its segment ids, for the documents holding ``segment_ids``."""
    docs: dict[str, list[str]] = {}
    for seg in segment_ids:
        doc = db.execute("SELECT document_id FROM segments WHERE id = ?", (seg,)).fetchone()[0]
        if doc not in docs:
            docs[doc] = [r[0] for r in db.execute(SEGMENTS_OF_DOCUMENT, (doc,))]
    return docs


def stored_changes(db: sqlite3.Connection, seen: set[tuple[str, str]],
                   annotations: list[tuple[str, str, str]]) -> CodeChanges:
    """What storing (segment, coder) views and their codes would change in the codes already stored."""
    incoming: dict[tuple[str, str], set[str]] = {(c, s): set() for s, c in seen}
    for s, c, code in annotations:
        incoming[(c, s)].add(code)
    stored: dict[tuple[str, str], set[str]] = {}
    for coder in {c for _, c in seen}:
        for (seg,) in db.execute("SELECT segment_id FROM seen WHERE coder = ?", (coder,)):
            if (coder, seg) in incoming:
                stored.setdefault((coder, seg), set())
        for seg, code in db.execute("SELECT segment_id, code FROM annotations WHERE coder = ?", (coder,)):
            if (coder, seg) in incoming:
                stored.setdefault((coder, seg), set()).add(code)
    return code_changes({k: frozenset(v) for k, v in stored.items()}, {k: frozenset(v) for k, v in incoming.items()})


def store_gold(db: sqlite3.Connection, table: GoldTable, codebook: Codebook, *, skip_bad: bool = False,
               coder_kind: str = "human", replace: bool = False) -> GoldReport:
    """Store human codes, checked against the segments and ``codebook``. All or nothing unless ``skip_bad``, which
    counts and reports each row left out. Importing a coder again: see :class:`CodeChanges` (codes that differ are
    refused unless ``replace``)."""
    names: dict[str, str] = {}
    for c in codebook.codes:
        names.setdefault(c.name, c.id)
    report = GoldReport(coders=table.coders, units=len(table.units), repeats=table.repeats, notes=list(table.notes))
    units = resolve_units(db, table)
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
            for doc_segments in documents_of(db, docs).values():
                seen.update((s, coder) for s in doc_segments)
    changes = stored_changes(db, seen, annotations)
    if changes.changed and not replace:
        raise GoldError(changes.refusal(), path=table.source)
    report.replaced, report.unchanged = changes.per_coder(), changes.unchanged
    report.codes_added, report.codes_removed = changes.added, changes.removed
    with transaction(db):
        # the file's codes replace the coder's on the segments it names and codes differently
        db.executemany("DELETE FROM annotations WHERE coder = ? AND segment_id = ?", list(changes.changed))
        cur = db.execute(
            "INSERT INTO imports (kind, source, created_at) VALUES ('gold', ?, ?)", (Path(table.source).name, now())
        )
        import_id = cur.lastrowid
        for coder in table.coders:
            existing = db.execute("SELECT kind FROM coders WHERE name = ?", (coder,)).fetchone()
            if existing and existing[0] != coder_kind:
                raise GoldError(f"coder {coder!r} already exists as a {existing[0]} coder", path=table.source)
            db.execute("INSERT OR IGNORE INTO coders (name, kind, created_at) VALUES (?, ?, ?)",
                       (coder, coder_kind, now()))
        before = db.total_changes
        db.executemany("INSERT OR IGNORE INTO seen (segment_id, coder, import_id) VALUES (?, ?, ?)",
                       [(s, c, import_id) for s, c in sorted(seen)])
        report.seen_added = db.total_changes - before
        before = db.total_changes
        db.executemany(
            "INSERT OR IGNORE INTO annotations (segment_id, coder, code, import_id) VALUES (?, ?, ?, ?)",
            [(s, c, code, import_id) for s, c, code in annotations],
        )
        report.annotations_added = db.total_changes - before
        db.execute("UPDATE imports SET counts = ? WHERE id = ?", (json.dumps(
            {"annotations_added": report.annotations_added, "seen_added": report.seen_added,
             "rows_skipped": report.rows_skipped, "repeats": report.repeats}), import_id))
    return report
