"""Corpus readers: files in, :class:`~assistcode.readers.base.Source` documents out.

One reader per format, chosen by suffix; tabular formats yield one document per row and stream.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..errors import InputError
from .base import ReadOptions, Source
from .captions import read_srt, read_vtt
from .docx import read_docx
from .plain import read_plain
from .tabular import read_table

READERS = {
    ".txt": read_plain,
    ".md": read_plain,
    ".text": read_plain,
    ".docx": read_docx,
    ".vtt": read_vtt,
    ".srt": read_srt,
    ".csv": read_table,
    ".tsv": read_table,
    ".jsonl": read_table,
    ".parquet": read_table,
    ".xlsx": read_table,
}

__all__ = ["READERS", "ReadOptions", "Source", "read_path", "expand_paths"]


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Files named, plus the readable files inside folders named (sorted, hidden files left out)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(
                f for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in READERS
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
        elif p.exists():
            out.append(p)
        else:
            raise InputError("no such file or folder", path=p)
    return out


def read_path(path: str | Path, options: ReadOptions | None = None) -> Iterator[Source]:
    """Read one file into documents."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(
            f"unsupported file type {path.suffix or '(none)'}",
            path=path,
            hint="readable: " + ", ".join(sorted(READERS)),
        )
    return reader(path, options or ReadOptions())
