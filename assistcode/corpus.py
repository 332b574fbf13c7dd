"""Importing transcripts into the store: read, segment, write, all or nothing."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .errors import AssistcodeError, InputError
from .ids import segment_id
from .model import Document, Segment
from .readers import ReadOptions, expand_paths, read_path
from .segmenters import sentence_spans, transcript_turns
from .transcripts import Transcript, describe_roles, infer_roles
from .store.db import now, transaction


@dataclass
class ImportReport:
    """What an import did. Nothing is dropped without being counted here."""

    files: int = 0
    documents_added: int = 0
    documents_present: int = 0
    """Documents already in the project (same content and key): left as they were."""
    segments_added: int = 0
    rows_skipped: int = 0
    """Table rows with no text."""
    bad_files: list[tuple[str, str]] = field(default_factory=list)
    """(file, error) for files skipped under ``skip_bad``."""
    warnings: list[str] = field(default_factory=list)
    formats: dict[str, int] = field(default_factory=dict)
    """Documents per transcript format found (otter, zoom, rev, ..., plain; the segmenter's name for the others)."""
    roles: list[str] = field(default_factory=list)
    """One line per document whose interviewer was inferred (or could not be), with the evidence."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "documents_added": self.documents_added,
            "documents_present": self.documents_present,
            "segments_added": self.segments_added,
            "rows_skipped": self.rows_skipped,
            "files_skipped": len(self.bad_files),
            "formats": dict(self.formats),
            "warnings": len(self.warnings),
        }


_INSERT_DOC = (
    "INSERT OR IGNORE INTO documents (id, title, text, text_hash, key, metadata, encoding, segmenter, import_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_SEG = ('INSERT INTO segments (id, document_id, position, start, "end", speaker, text, start_time, role) '
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
TABLE_SUFFIXES = frozenset({".csv", ".tsv", ".jsonl", ".parquet", ".xlsx"})


def segment_rows(doc: Document, method: str, options: dict[str, Any]) -> list[tuple]:
    """The ``segments`` rows of one document."""
    return _rows(doc, transcript_turns(doc.text, method, **options).turns)


def _rows(doc: Document, spans: Iterable[tuple]) -> list[tuple]:
    """Rows from (start, end, speaker) or (start, end, speaker, start_time, role) spans."""
    text, identity, doc_id = doc.text, doc.identity, doc.id
    spans = spans if isinstance(spans, list) else list(spans)
    if spans and len(spans[0]) == 5:
        return [(segment_id(identity, s, e), doc_id, i, s, e, speaker, text[s:e], t, role)
                for i, (s, e, speaker, t, role) in enumerate(spans)]
    return [(segment_id(identity, s, e), doc_id, i, s, e, speaker, text[s:e], None, None)
            for i, (s, e, speaker) in enumerate(spans)]


def store_document(db: sqlite3.Connection, doc: Document, spans: Callable[[], Iterable[tuple]],
                   segmenter: str, import_id: int | None) -> int | None:
    """Insert a document and its segments (``spans``: (start, end, speaker) or (start, end, speaker, start_time,
    role), called only if the document is new). Returns the number of segments, or ``None`` when the same document
    is already in the project."""
    doc_id = doc.id
    inserted = db.execute(_INSERT_DOC, (doc_id, doc.title, doc.text, doc.text_hash, doc.key,
                                        json.dumps(doc.metadata, ensure_ascii=False, default=str), doc.encoding,
                                        segmenter, import_id)).rowcount
    if not inserted:
        return None
    rows = _rows(doc, spans())
    db.executemany(_INSERT_SEG, rows)
    if rows:  # the document's segments hold consecutive rowids: record the range
        last = db.execute("SELECT last_insert_rowid()").fetchone()[0]
        db.execute("UPDATE documents SET first_segment = ?, segment_count = ? WHERE id = ?",
                   (last - len(rows) + 1, len(rows), doc_id))
    return len(rows)


def read_metadata_table(path: str | Path) -> dict[str, dict[str, str]]:
    """A CSV (or JSONL, Parquet, XLSX) with a ``source`` column naming files: file name -> metadata."""
    from .gold import read_records

    header, rows = read_records(path)
    if "source" not in header:
        raise InputError("no column named 'source'", path=path, line=1, field="--metadata",
                         hint="the metadata table needs a 'source' column with file names")
    table: dict[str, dict[str, str]] = {}
    for line, row in rows:
        name = str(row.get("source") or "").strip()
        if not name:
            raise InputError("empty source", path=path, line=line, field="source")
        table[name] = {k: "" if v is None else str(v) for k, v in row.items() if k != "source"}
    return table


def default_segmenter(path: Path) -> str:
    """``row`` for tables (a survey answer stays whole), ``turn`` for transcripts."""
    return "row" if path.suffix.lower() in TABLE_SUFFIXES else "turn"


def _parse(doc: Document, source: Any, method: str, opts: dict[str, Any], where: str) -> Transcript:
    """A document's segments with times and roles: from the reader's own turns (subtitles) or by parsing."""
    if source.turns is not None and "pattern" not in opts and "transcript_format" not in opts:
        parsed = Transcript("vtt" if where.lower().endswith(".vtt") else "srt", list(source.turns))
        parsed.turns, parsed.roles = infer_roles(doc.text, parsed.turns, opts.get("interviewers", ()))
        if method == "sentence":
            parsed.turns = [(a, b, sp, t, r) for s, e, sp, t, r in parsed.turns
                            for a, b, _ in sentence_spans(doc.text, s, e, sp)]
        return parsed
    return transcript_turns(doc.text, method, where=where, **opts)


def _write_file(db: sqlite3.Connection, path: Path, options: ReadOptions, method: str | None, seg_options: dict[str, Any],
                import_id: int, report: ImportReport, metadata: dict[str, dict[str, str]]) -> None:
    method = method or default_segmenter(path)
    timed = method in ("turn", "sentence")
    for source in read_path(path, options):
        report.warnings.extend(source.warnings)
        report.rows_skipped += source.skipped
        doc = source.document
        if doc is None:
            continue
        extra = metadata.get(doc.metadata.get("source", ""))
        if extra:
            doc = replace(doc, metadata={**doc.metadata, **extra})
        opts = dict(seg_options)
        if not timed:
            opts.pop("transcript_format", None)
            opts.pop("interviewers", None)
        elif source.speakers and "pattern" not in opts:
            opts["speakers"] = source.speakers
        where = str(doc.metadata.get("source") or path.name)
        parsed = _parse(doc, source, method, opts, where)
        report.warnings.extend(parsed.warnings)
        if timed:
            extra_meta: dict[str, Any] = {"transcript_format": parsed.format}
            if parsed.front_matter:
                extra_meta["front_matter"] = parsed.front_matter
            if parsed.roles:
                extra_meta["roles"] = parsed.roles
            doc = replace(doc, metadata={**doc.metadata, **extra_meta})
        added = store_document(db, doc, lambda: parsed.turns, method, import_id)
        if added is None:  # the same content (and key) is already in the project
            report.documents_present += 1
            continue
        if parsed.roles and parsed.roles["how"] in ("inferred", "none", "not named here"):
            report.roles.append(describe_roles(where, parsed.roles))
        report.formats[parsed.format] = report.formats.get(parsed.format, 0) + 1
        report.documents_added += 1
        report.segments_added += added


def import_corpus(db: sqlite3.Connection, paths: Iterable[str | Path], *, segmenter: str | None = None,
                  segmenter_options: dict[str, Any] | None = None, options: ReadOptions | None = None,
                  skip_bad: bool = False, metadata_file: str | Path | None = None) -> ImportReport:
    """Import files (and the readable files in folders) in one transaction.

    Without ``skip_bad`` the first bad file aborts the import and nothing is written. With it, each bad file is
    rolled back on its own, counted and reported, and the rest goes in. ``segmenter`` ``None``: ``row`` for tables,
    ``turn`` for transcripts. ``segmenter_options`` may hold ``transcript_format`` (force one:
    :data:`assistcode.transcripts.FORMATS`) and ``interviewers`` (names whose turns are the interviewer's).
    """
    options = options or ReadOptions()
    seg_options = dict(segmenter_options or {})
    files = expand_paths(list(paths))
    if not files:
        raise InputError("no readable files found", hint="give transcript files or folders holding them")
    report = ImportReport(files=len(files))
    metadata = read_metadata_table(metadata_file) if metadata_file else {}
    unused = set(metadata) - {p.name for p in files}
    if unused and not any(p.suffix.lower() in (".csv", ".tsv", ".jsonl", ".parquet", ".xlsx") for p in files):
        report.warnings.append(f"{metadata_file}: {len(unused)} metadata rows name no imported file: "
                               + ", ".join(sorted(unused)[:5]))
    transcript_turns("", segmenter or "turn", **seg_options)  # an unknown segmenter, format or option fails first
    with transaction(db):
        cur = db.execute(
            "INSERT INTO imports (kind, source, options, created_at) VALUES ('corpus', ?, ?, ?)",
            (", ".join(p.name for p in files[:20]) + (" ..." if len(files) > 20 else ""),
             json.dumps({"segmenter": segmenter or "auto", **{k: str(v) for k, v in seg_options.items()}}), now()),
        )
        import_id = cur.lastrowid
        for path in files:
            if not skip_bad:
                _write_file(db, path, options, segmenter, seg_options, import_id, report, metadata)
                continue
            before = (report.documents_added, report.documents_present, report.segments_added, report.rows_skipped)
            try:
                with transaction(db):
                    _write_file(db, path, options, segmenter, seg_options, import_id, report, metadata)
            except AssistcodeError as exc:
                report.documents_added, report.documents_present, report.segments_added, report.rows_skipped = before
                report.bad_files.append((str(path), str(exc)))
        db.execute("UPDATE imports SET counts = ? WHERE id = ?", (json.dumps(report.as_dict()), import_id))
    return report


SEGMENT_COLUMNS = 's.id, s.document_id, s.position, s.start, s."end", s.text, s.speaker, s.start_time, s.role'
"""The columns of a :class:`~assistcode.model.Segment`, in order, from ``segments s``."""

SEGMENTS_OF_DOCUMENT = (
    f"SELECT {SEGMENT_COLUMNS} FROM documents d "
    "JOIN segments s ON s.rowid BETWEEN d.first_segment AND d.first_segment + d.segment_count - 1 "
    "WHERE d.id = ? ORDER BY s.rowid"
)
"""A document's segments in order: a rowid range scan (its segments were inserted together)."""


def iter_segments(db: sqlite3.Connection, document_ids: Iterable[str] | None = None) -> Iterator[Segment]:
    """Segments in document order (documents in import order)."""
    if document_ids is None:
        sql = f"SELECT {SEGMENT_COLUMNS} FROM segments s ORDER BY s.rowid"
        for r in db.execute(sql):
            yield Segment(*r)
        return
    for doc_id in document_ids:
        for r in db.execute(SEGMENTS_OF_DOCUMENT, (doc_id,)):
            yield Segment(*r)


def preceding(segments: Sequence[Segment], turns: int = 1) -> dict[str, list[Segment]]:
    """Each segment's neighbours before it in its document, nearest last (at most ``turns``): the question an
    answer responds to. ``segments`` in document order, as :func:`iter_segments` gives them."""
    out: dict[str, list[Segment]] = {}
    if turns <= 0:
        return out
    previous: list[Segment] = []
    doc = None
    for s in segments:
        if s.document_id != doc:
            previous, doc = [], s.document_id
        out[s.id] = previous[-turns:]
        previous.append(s)
    return out


def context_text(neighbours: Sequence[Segment]) -> str:
    """Neighbouring turns as a template shows them: ``Speaker (role): text``, one paragraph each."""
    parts = []
    for s in neighbours:
        who = s.speaker or "(no speaker)"
        if s.role:
            who += f" ({s.role})"
        parts.append(f"{who}: {s.text}")
    return "\n\n".join(parts)
