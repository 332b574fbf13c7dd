"""Tables of responses, one document per row: CSV, TSV, JSONL and Parquet stream through ``datasets``; XLSX
through openpyxl in read-only mode.

``datasets`` keeps its cache under the project (``ReadOptions.cache_dir``), never in the user's home, and runs
offline: transcripts are confidential.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import InputError
from ..model import Document
from ..textio import normalise_newlines, sniff_file_encoding
from .base import ReadOptions, Source

_TEXT_GUESSES = ("text", "response", "answer", "utterance", "content", "transcript")


def _load_datasets(cache_dir: Path | None):  # type: ignore[no-untyped-def]
    """Import ``datasets`` offline, with its caches inside the project where one is given."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if cache_dir is not None:
        os.environ.setdefault("HF_HOME", str(cache_dir))
        os.environ.setdefault("HF_DATASETS_CACHE", str(cache_dir / "datasets"))
    import datasets

    datasets.disable_progress_bars()
    # its loaders log a parse error before raising it: the error is reported once, as one line, by _guarded
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    return datasets


def _csv_header(path: Path, encoding: str, delimiter: str) -> list[str]:
    with path.open(encoding=encoding, newline="") as fh:
        header = next(csv.reader(fh, delimiter=delimiter), None)
    if not header:
        raise InputError("empty file: no header row", path=path, line=1)
    return header


def _rows(path: Path, options: ReadOptions, warnings: list[str]) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """Column names and a row iterator for any supported table. A file that cannot be parsed, now or later while
    rows are read, is one InputError naming the file and, where it can be found, the line."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _xlsx_rows(path, options)
    cache_dir = options.cache_dir
    ds = _load_datasets(cache_dir)
    if suffix in (".csv", ".tsv"):
        encoding = options.encoding
        if encoding is None:
            encoding, notes = sniff_file_encoding(path)
            warnings.extend(notes)
        delimiter = "\t" if suffix == ".tsv" else ","
        header = _csv_header(path, encoding, delimiter)
        features = ds.Features({name: ds.Value("string") for name in header})
        locate = lambda: _csv_problem(path, encoding, delimiter, len(header))  # noqa: E731
        stream = _guarded(lambda: ds.load_dataset(
            "csv", data_files=str(path), split="train", streaming=True, encoding=encoding, sep=delimiter,
            features=features, keep_default_na=False,
            cache_dir=str(cache_dir / "datasets") if cache_dir else None,
        ), path, locate)
        return header, stream
    if path.stat().st_size == 0:
        raise InputError("empty file: no rows", path=path)
    kind = "json" if suffix == ".jsonl" else "parquet"
    if kind == "json":
        locate = lambda: jsonl_problem(path)  # noqa: E731
        problem = jsonl_problem(path, first_only=True)
        if problem:
            raise InputError(problem[1], path=path, line=problem[0])
        with path.open("rb") as fh:
            header = list(json.loads(fh.readline()))
    else:
        import pyarrow.parquet as pq

        locate = lambda: None  # noqa: E731
        try:
            header = pq.ParquetFile(path).schema_arrow.names
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError and more for a damaged file
            raise InputError(f"not a readable Parquet file ({_first_line(exc)})", path=path) from None
    stream = _guarded(lambda: ds.load_dataset(kind, data_files=str(path), split="train", streaming=True,
                                              cache_dir=str(cache_dir / "datasets") if cache_dir else None),
                      path, locate)
    return header, stream


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _guarded(load: Callable[[], Any], path: Path, locate: Callable[[], tuple[int, str] | None]) -> Iterator[dict[str, Any]]:
    """Rows of ``load()``, with any parse error (``datasets``, pandas and pyarrow raise many kinds, while the rows
    are read) turned into one InputError; ``locate()`` finds the offending line, when it is asked."""
    try:
        yield from load()
    except (InputError, GeneratorExit, KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:
        found = locate()
        if found is not None:
            raise InputError(found[1], path=path, line=found[0]) from None
        raise InputError(f"cannot be parsed ({_first_line(exc)})", path=path) from None


def _csv_problem(path: Path, encoding: str, delimiter: str, width: int) -> tuple[int, str] | None:
    """The first line of a CSV/TSV with more fields than its header, or with a quote never closed."""
    with path.open(encoding=encoding, newline="", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        start = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                return start, f"malformed {'TSV' if delimiter == chr(9) else 'CSV'} record ({exc}; a quote opened here and never closed?)"
            if len(row) > width:
                return start, f"{len(row)} fields where the header has {width} (a ragged row)"
            start = reader.line_num + 1


def jsonl_problem(path: Path, first_only: bool = False) -> tuple[int, str] | None:
    """The first line of a JSON Lines file that is not JSON, or not an object (blank lines are passed over)."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                if first_only and number == 1:
                    return 1, "the first line is empty: JSON Lines holds one object per line"
                continue
            try:
                value = json.loads(raw)
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                return number, f"not JSON Lines: {exc}"
            if not isinstance(value, dict):
                return number, f"not JSON Lines of objects: a JSON {type(value).__name__} (each line must be an object)"
            if first_only:
                return None
    return None


def _xlsx_rows(path: Path, options: ReadOptions) -> tuple[list[str], Iterator[dict[str, Any]]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise InputError(f"not a readable .xlsx workbook ({exc})", path=path) from exc
    sheet = book[options.sheet] if options.sheet else book.active
    rows = sheet.iter_rows(values_only=True)
    header = next(rows, None)
    if not header:
        raise InputError("empty sheet: no header row", path=path, line=1)
    names = [str(h) if h is not None else f"column{i + 1}" for i, h in enumerate(header)]

    def gen() -> Iterator[dict[str, Any]]:
        try:
            for row in rows:
                yield dict(zip(names, row))
        finally:
            book.close()

    return names, gen()


KEY_SEP = "\x1f"


def unit_key(row: dict[str, Any], columns: tuple[str, ...] | list[str]) -> str:
    """The key of a row identified by several columns together (their text joined by U+001F)."""
    return KEY_SEP.join(cell_text(row.get(c)) for c in columns)


def cell_text(value: Any) -> str:
    """A table cell as text: empty for None or NaN, ``3`` rather than ``3.0`` for a float that is an integer."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value)


def read_table(path: Path, options: ReadOptions) -> Iterator[Source]:
    warnings: list[str] = []
    header, rows = _rows(path, options, warnings)
    text_column = options.text_column or next((c for c in _TEXT_GUESSES if c in header), None)
    if text_column is None or text_column not in header:
        what = f"no column named {text_column!r}" if text_column else "no text column chosen"
        raise InputError(what, path=path, field="--text-column", hint="columns: " + ", ".join(header))
    for missing in (c for c in options.id_columns if c not in header):
        raise InputError(f"no column named {missing!r}", path=path, field="--id-column",
                         hint="columns: " + ", ".join(header))
    meta_columns = options.meta_columns
    if meta_columns is None:
        meta_columns = tuple(c for c in header if c != text_column)
    for missing in (c for c in meta_columns if c not in header):
        raise InputError(f"no column named {missing!r}", path=path, field="--meta-columns",
                         hint="columns: " + ", ".join(header))
    extra = dict(options.metadata)
    skipped = 0
    first = True
    for number, row in enumerate(rows, start=1):
        text = normalise_newlines(cell_text(row.get(text_column)))
        if not text.strip():
            skipped += 1
            continue
        key = unit_key(row, options.id_columns) if options.id_columns else f"row:{number}"
        title = key[:80].replace(KEY_SEP, " / ") if options.id_columns else f"{path.stem} row {number}"
        metadata = {"source": path.name, "row": number, **{c: cell_text(row.get(c)) for c in meta_columns}, **extra}
        doc = Document(text, title=title, metadata=metadata, encoding="table", key=key)
        yield Source(doc, warnings=warnings if first else [], skipped=skipped)
        first, skipped = False, 0
    if skipped or first:
        # Trailing empty rows (or a table with no text at all) still get counted.
        if first:
            raise InputError(f"no row with text in column {text_column!r}", path=path, field=text_column)
        yield Source(None, skipped=skipped)
