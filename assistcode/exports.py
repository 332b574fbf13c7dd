"""Tables out of the store: segments and annotations as pandas DataFrames and as CSV, JSONL, Parquet or XLSX."""
from __future__ import annotations

import csv
import json
import os
import sqlite3
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterator, Sequence

from .errors import InputError

if TYPE_CHECKING:
    import pandas as pd

SEGMENT_COLUMNS = ["segment_id", "document_id", "document_title", "position", "start", "end", "speaker", "text",
                   "start_time", "role"]
_SEGMENT_SQL = (
    'SELECT s.id, s.document_id, d.title, s.position, s.start, s."end", s.speaker, s.text, s.start_time, s.role '
    "FROM segments s JOIN documents d ON d.id = s.document_id ORDER BY s.rowid"
)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it on success (for writers that want a file name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", **kwargs) -> Iterator[IO]:  # type: ignore[type-arg]
    """Write to a temporary file beside ``path`` and rename it into place only when writing succeeded."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def iter_segment_rows(db: sqlite3.Connection, batch: int = 10_000) -> Iterator[list[tuple]]:
    cur = db.execute(_SEGMENT_SQL)
    while rows := cur.fetchmany(batch):
        yield [tuple(r) for r in rows]


def write_segments(db: sqlite3.Connection, fmt: str, out: IO[str] | None = None, path: str | Path | None = None) -> int:
    """Stream every segment to CSV or JSONL (on ``out``) or Parquet (to ``path``). Returns the number written."""
    n = 0
    if fmt == "parquet":
        if path is None:
            raise InputError("Parquet needs a file", field="--output", hint="add --output FILE.parquet")
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([("segment_id", pa.string()), ("document_id", pa.string()), ("document_title", pa.string()),
                            ("position", pa.int64()), ("start", pa.int64()), ("end", pa.int64()),
                            ("speaker", pa.string()), ("text", pa.string()), ("start_time", pa.float64()),
                            ("role", pa.string())])
        with atomic_path(path) as tmp:
            with pq.ParquetWriter(tmp, schema) as writer:
                for rows in iter_segment_rows(db):
                    writer.write_table(pa.Table.from_pylist([dict(zip(SEGMENT_COLUMNS, r)) for r in rows], schema))
                    n += len(rows)
        return n
    assert out is not None
    if fmt == "csv":
        w = csv.writer(out)
        w.writerow(SEGMENT_COLUMNS)
        for rows in iter_segment_rows(db):
            w.writerows(rows)
            n += len(rows)
    elif fmt == "jsonl":
        for rows in iter_segment_rows(db):
            out.writelines(json.dumps(dict(zip(SEGMENT_COLUMNS, r)), ensure_ascii=False) + "\n" for r in rows)
            n += len(rows)
    else:
        raise InputError(f"unknown format {fmt!r}", field="--format", hint="csv, jsonl or parquet")
    return n


def annotations_frame(db: sqlite3.Connection, coders: Sequence[str] | None = None) -> pd.DataFrame:
    """Long form: one row per applied code, plus one row with an empty ``code`` per segment seen and left uncoded.
    Each row carries its document's title and the segment's text beside the ids, so a reader needs no lookup."""
    import pandas as pd

    where, params = "", ()
    if coders:
        where = f" WHERE s.coder IN ({','.join('?' * len(coders))})"
        params = tuple(coders)
    sql = (
        "SELECT s.segment_id, g.document_id, d.title, s.coder, a.code, a.confidence, a.rationale, a.evidence, g.text "
        "FROM seen s JOIN segments g ON g.id = s.segment_id JOIN documents d ON d.id = g.document_id "
        "LEFT JOIN annotations a ON a.segment_id = s.segment_id AND a.coder = s.coder" + where +
        " ORDER BY s.coder, g.rowid, a.code"
    )
    return pd.DataFrame([tuple(r) for r in db.execute(sql, params)],
                        columns=ANNOTATION_COLUMNS)


ANNOTATION_COLUMNS = ["segment_id", "document_id", "document_title", "coder", "code", "confidence", "rationale",
                      "evidence", "text"]


def matrix_frame(long: pd.DataFrame, codes: Sequence[str]) -> pd.DataFrame:
    """Segments x codes per coder: 1 applied, 0 seen and not applied (segments a coder never saw have no row); the
    document title and the segment text stand beside the ids, the text last."""
    context = [c for c in ("document_title", "text") if c in long]
    base = long[["coder", "segment_id", "document_id", *context]].drop_duplicates(["coder", "segment_id"])
    applied = long.dropna(subset=["code"]).assign(value=1)
    wide = applied.pivot_table(index=["coder", "segment_id"], columns="code", values="value", aggfunc="max", fill_value=0)
    out = base.merge(wide.reset_index(), on=["coder", "segment_id"], how="left")
    for code in codes:
        if code not in out:
            out[code] = 0
    out[list(codes)] = out[list(codes)].fillna(0).astype(int)
    title = ["document_title"] if "document_title" in context else []
    text = ["text"] if "text" in context else []
    return out[["coder", "segment_id", "document_id", *title, *codes, *text]]


def write_frame(frame: pd.DataFrame, path: str | Path, fmt: str) -> None:
    """Write a DataFrame atomically as CSV, JSONL, Parquet or XLSX."""
    with atomic_path(path) as tmp:
        if fmt == "csv":
            frame.to_csv(tmp, index=False)
        elif fmt == "jsonl":
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        elif fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        elif fmt == "xlsx":
            frame.to_excel(tmp, index=False)
        else:
            raise InputError(f"unknown format {fmt!r}", field="--format", hint="csv, jsonl, parquet or xlsx")
