"""Span codings: a coder's code on a character range of a document (code points, end exclusive), independent of
segments. How coders work in QDA tools (a selection, coded), what other tools export (``document,start,end,coder,
code`` rows), and what a model's located evidence quote is.

Bad input: a span past the end of its document is clipped to it (counted, with a warning); a negative offset, an end
before (or at) the start, or a start past the end refuses the whole file (file and row, nothing written);
overlapping spans of one code by one coder are merged (counted); a quote that cannot be located is counted and
listed. Reading spans back merges a run's located evidence quotes in as the run's span codings.
"""
from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import GoldError
from .store.db import now, transaction

REQUIRED = ("document", "coder", "code")


@dataclass(frozen=True)
class Span:
    """One span coding (the contract's ``SpanCoding`` fields; converted with :func:`as_codings`)."""

    document: str
    start: int
    end: int
    coder: str
    code: str


@dataclass
class SpanReport:
    """What an import of span codings did, and what it passed over."""

    source: str
    spans_added: int = 0
    spans_present: int = 0
    """Spans already stored for the same coder, document, code and offsets: unchanged."""
    replaced: int = 0
    """Spans of a coder on a document that the file's spans replaced (``replace=True``)."""
    clipped: int = 0
    merged: int = 0
    quotes_not_found: list[str] = field(default_factory=list)
    """``row N: "quote" in document`` for each quote the matcher could not locate (not imported)."""
    coders: list[str] = field(default_factory=list)
    documents: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


# -- checking and merging -------------------------------------------------------------------------------------------

def check_offsets(start: int, end: int, length: int, where: str, line: int | None) -> tuple[int, int, bool]:
    """(start, end, clipped): an end past the document is clipped; anything else wrong refuses the input."""
    if start < 0 or end < 0:
        raise GoldError(f"negative offset ({start}-{end})", path=where, line=line,
                        hint="offsets count code points from 0")
    if end <= start:
        raise GoldError(f"end {end} is not after start {start}", path=where, line=line)
    if start >= length:
        raise GoldError(f"start {start} is past the end of the document ({length} characters)", path=where, line=line,
                        hint="offsets count code points (not bytes) from 0 in the document's text")
    if end > length:
        return start, length, True
    return start, end, False


def merge(spans: Iterable[Span]) -> tuple[list[Span], int]:
    """Overlapping spans of the same code by the same coder on a document, merged into one; and how many merges.
    Spans that only touch stay apart (two selections side by side are two units)."""
    groups: dict[tuple[str, str, str], list[tuple[int, int]]] = defaultdict(list)
    for s in spans:
        groups[(s.document, s.coder, s.code)].append((s.start, s.end))
    out: list[Span] = []
    merges = 0
    for (doc, coder, code), ranges in groups.items():
        ranges.sort()
        cur_s, cur_e = ranges[0]
        for s, e in ranges[1:]:
            if s < cur_e:
                merges += 1
                cur_e = max(cur_e, e)
            else:
                out.append(Span(doc, cur_s, cur_e, coder, code))
                cur_s, cur_e = s, e
        out.append(Span(doc, cur_s, cur_e, coder, code))
    out.sort(key=lambda s: (s.document, s.coder, s.code, s.start))
    return out, merges


def as_codings(spans: Iterable[Span]) -> list[Any]:
    """The spans as :class:`assistcode.agreement.unitizing.SpanCoding` tuples, for the statistics."""
    from .agreement.unitizing import SpanCoding

    return [SpanCoding(s.document, s.start, s.end, s.coder, s.code) for s in spans]


# -- files ----------------------------------------------------------------------------------------------------------

def _int(value: Any, column: str, where: str, line: int) -> int:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise GoldError(f"{value!r} is not a whole number", path=where, line=line, field=column) from None
    if number != int(number):
        raise GoldError(f"{value!r} is not a whole number", path=where, line=line, field=column)
    return int(number)


def read_span_file(db: sqlite3.Connection, path: str | Path, codebook: Any, *, encoding: str | None = None,
                   coder_column: str = "coder", code_column: str = "code") -> tuple[list[Span], SpanReport]:
    """Parse and check a spans file against the store's documents and the codebook. Nothing is written.

    Columns: ``document`` (a document's id or title), ``start`` and ``end`` (code points, end exclusive), or
    ``quote`` (text located in the document with the evidence matcher), ``coder`` and ``code`` (id or name)."""
    from .gold import read_records
    from .runs.replies import locate

    where = str(path)
    header, records = read_records(path, encoding)
    missing = [c for c in ("document", coder_column, code_column) if c not in header]
    if not ("start" in header and "end" in header) and "quote" not in header:
        missing.append("start and end, or quote")
    if missing:
        raise GoldError("missing column(s): " + ", ".join(missing), path=where, line=1,
                        hint="columns: document,start,end,coder,code (or document,quote,coder,code); found: "
                             + ", ".join(header))
    names = {}
    for c in codebook.codes:
        names.setdefault(c.name, c.id)
    docs: dict[str, tuple[str, str] | None] = {}

    def document(ref: str, line: int) -> tuple[str, str]:
        if ref not in docs:
            rows = db.execute("SELECT id, text FROM documents WHERE id = ?", (ref,)).fetchall() or \
                db.execute("SELECT id, text FROM documents WHERE title = ? OR key = ?", (ref, ref)).fetchall()
            if len(rows) > 1:
                raise GoldError(f"{len(rows)} documents are titled {ref!r}", path=where, line=line, field="document",
                                hint="name the document by its id (assistcode segments shows document_id)")
            docs[ref] = (rows[0][0], rows[0][1]) if rows else None
        found = docs[ref]
        if found is None:
            raise GoldError(f"unknown document {ref[:80]!r}", path=where, line=line, field="document",
                            hint="a document id or title of this project (import the corpus first)")
        return found

    report = SpanReport(where)
    spans: list[Span] = []
    for line, row in records:
        ref = str(row.get("document") or "").strip()
        coder = str(row.get(coder_column) or "").strip()
        code = str(row.get(code_column) or "").strip()
        if not ref or not coder or not code:
            empty = next(c for c, v in (("document", ref), (coder_column, coder), (code_column, code)) if not v)
            raise GoldError("empty cell", path=where, line=line, field=empty)
        if code not in codebook and code not in names:
            raise GoldError(f"unknown code {code!r}", path=where, line=line, field=code_column,
                            hint="codes must be ids (or names) in the project's current codebook")
        code = code if code in codebook else names[code]
        doc_id, text = document(ref, line)
        start_cell, end_cell = row.get("start"), row.get("end")
        if start_cell not in (None, "") or end_cell not in (None, ""):
            start = _int(start_cell, "start", where, line)
            end = _int(end_cell, "end", where, line)
            start, end, clipped = check_offsets(start, end, len(text), where, line)
            report.clipped += clipped
        else:
            quote = str(row.get("quote") or "").strip()
            if not quote:
                raise GoldError("neither offsets nor a quote", path=where, line=line, field="quote")
            hit = locate(quote, text)
            if hit is None:
                report.quotes_not_found.append(f"row {line}: {quote[:60]!r} in {ref[:40]!r}")
                continue
            start, end = hit
        spans.append(Span(doc_id, start, end, coder, code))
    spans, report.merged = merge(spans)
    report.coders = list(dict.fromkeys(s.coder for s in spans))
    report.documents = len({s.document for s in spans})
    if report.clipped:
        report.warnings.append(f"{report.clipped} span{'s' if report.clipped != 1 else ''} ran past the end of "
                               "their document: clipped to it")
    if report.merged:
        report.warnings.append(f"{report.merged} overlapping span{'s' if report.merged != 1 else ''} of the same code "
                               "by the same coder merged")
    if report.quotes_not_found:
        report.warnings.append(f"{len(report.quotes_not_found)} quote{'s' if len(report.quotes_not_found) != 1 else ''}"
                               " could not be located in their document: left out")
    return spans, report


# -- the store ------------------------------------------------------------------------------------------------------

def store_spans(db: sqlite3.Connection, spans: Sequence[Span], *, source: str, coder_kind: str = "human",
                replace: bool = False, import_id: int | None = None, report: SpanReport | None = None) -> SpanReport:
    """Store span codings. A file speaks for each coder on the documents it names: where the store holds other
    spans of that coder there, the import is refused unless ``replace``, which makes them the file's."""
    report = report or SpanReport(source)
    incoming: dict[tuple[str, str], set[tuple[int, int, str]]] = defaultdict(set)
    for s in spans:
        incoming[(s.coder, s.document)].add((s.start, s.end, s.code))
    changed = []
    for (coder, doc), new in incoming.items():
        old = {(r[0], r[1], r[2]) for r in db.execute(
            'SELECT start, "end", code FROM span_codings WHERE coder = ? AND document_id = ? AND run_id IS NULL',
            (coder, doc))}
        if old and old != new:
            changed.append((coder, doc, len(old - new)))
    if changed and not replace:
        who = ", ".join(sorted({c for c, _, _ in changed}))
        raise GoldError(f"this file's spans differ from those already imported for {who} on {len(changed)} "
                        f"document{'s' if len(changed) != 1 else ''}", path=source,
                        hint="pass --replace to make each coder's spans on the documents it names the file's")
    with transaction(db):
        if import_id is None:
            import_id = db.execute("INSERT INTO imports (kind, source, options, created_at) VALUES ('gold', ?, ?, ?)",
                                   (Path(source).name, json.dumps({"format": "spans"}), now())).lastrowid
        for coder in dict.fromkeys(s.coder for s in spans):
            existing = db.execute("SELECT kind FROM coders WHERE name = ?", (coder,)).fetchone()
            if existing and existing[0] != coder_kind:
                raise GoldError(f"coder {coder!r} already exists as a {existing[0]} coder", path=source)
            db.execute("INSERT OR IGNORE INTO coders (name, kind, created_at) VALUES (?, ?, ?)", (coder, coder_kind, now()))
        for coder, doc, removed in changed:
            db.execute("DELETE FROM span_codings WHERE coder = ? AND document_id = ? AND run_id IS NULL", (coder, doc))
            report.replaced += removed
        before = db.total_changes
        db.executemany('INSERT OR IGNORE INTO span_codings (document_id, start, "end", coder, code, import_id) '
                       "VALUES (?, ?, ?, ?, ?, ?)", [(s.document, s.start, s.end, s.coder, s.code, import_id) for s in spans])
        report.spans_added = db.total_changes - before
        report.spans_present = len(spans) - report.spans_added
        db.execute("UPDATE imports SET counts = ? WHERE id = ?", (json.dumps(
            {"spans_added": report.spans_added, "clipped": report.clipped, "merged": report.merged,
             "quotes_not_found": len(report.quotes_not_found)}), import_id))
    return report


def import_span_file(project: Any, path: str | Path, *, encoding: str | None = None, replace: bool = False,
                     coder_column: str = "coder", code_column: str = "code") -> SpanReport:
    """``import-gold --format spans``: read, check (everything or nothing) and store a spans file."""
    spans, report = read_span_file(project.db, path, project.codebook(), encoding=encoding,
                                   coder_column=coder_column, code_column=code_column)
    return store_spans(project.db, spans, source=str(path), replace=replace, report=report)


def read_spans(db: sqlite3.Connection, coders: Sequence[str] | None = None) -> list[Span]:
    """Every span coding of ``coders`` (default: all): those stored, and each run's located evidence quotes (one
    per proposal, for runs coded before quotes were stored as spans), overlaps merged per coder and code."""
    where, args = "", list(coders or [])
    if coders:
        where = f" WHERE coder IN ({','.join('?' * len(coders))})"
    rows = [Span(r[0], r[1], r[2], r[3], r[4]) for r in db.execute(
        f'SELECT document_id, start, "end", coder, code FROM span_codings{where}', args)]
    quotes = ("SELECT s.document_id, a.evidence_start, a.evidence_end, a.coder, a.code FROM annotations a "
              "JOIN segments s ON s.id = a.segment_id WHERE a.run_id IS NOT NULL AND a.evidence_found = 1 "
              "AND a.evidence_start IS NOT NULL AND a.evidence_end > a.evidence_start")
    if coders:
        quotes += f" AND a.coder IN ({','.join('?' * len(coders))})"
    rows += [Span(*r) for r in db.execute(quotes, args)]
    return merge(rows)[0] if rows else []


def seen_documents(db: sqlite3.Connection, coders: Sequence[str]) -> dict[str, set[str]]:
    """coder -> documents the coder saw: those an import of the coder's spans names (a file speaks for each of its
    coders on every document it names: no span there is no code), and those the coder saw segments of."""
    out: dict[str, set[str]] = {c: set() for c in coders}
    for c in coders:
        out[c].update(r[0] for r in db.execute("SELECT DISTINCT document_id FROM span_codings WHERE coder = ?", (c,)))
        out[c].update(r[0] for r in db.execute(
            "SELECT DISTINCT document_id FROM span_codings WHERE import_id IN "
            "(SELECT DISTINCT import_id FROM span_codings WHERE coder = ? AND import_id IS NOT NULL)", (c,)))
        out[c].update(r[0] for r in db.execute("SELECT DISTINCT s.document_id FROM seen v JOIN segments s "
                                               "ON s.id = v.segment_id WHERE v.coder = ?", (c,)))
    return out


def document_lengths(db: sqlite3.Connection, documents: Iterable[str]) -> dict[str, int]:
    """document id -> length of its text in code points."""
    out = {}
    for d in documents:
        row = db.execute("SELECT length(text) FROM documents WHERE id = ?", (d,)).fetchone()
        if row is not None:
            out[d] = int(row[0])
    return out


def run_quote_spans(db: sqlite3.Connection, run_id: int, coder: str, segment_id: str,
                    quotes: Iterable[tuple[str, int, int]]) -> None:
    """Store a run's located quotes (code, document start, end) on one segment as span codings of its coder."""
    doc = db.execute("SELECT document_id FROM segments WHERE id = ?", (segment_id,)).fetchone()
    if doc is None:
        return
    db.executemany('INSERT OR IGNORE INTO span_codings (document_id, start, "end", coder, code, run_id) '
                   "VALUES (?, ?, ?, ?, ?, ?)", [(doc[0], s, e, coder, code, run_id) for code, s, e in quotes if e > s])
