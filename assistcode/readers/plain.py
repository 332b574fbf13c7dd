"""Plain text and Markdown transcripts."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..model import Document
from ..textio import read_text
from .base import ReadOptions, Source


def read_plain(path: Path, options: ReadOptions) -> Iterator[Source]:
    decoded = read_text(path, options.encoding)
    metadata = {"source": path.name, **options.metadata}
    doc = Document(decoded.text, title=path.stem, metadata=metadata, encoding=decoded.encoding)
    yield Source(doc, warnings=decoded.warnings)
