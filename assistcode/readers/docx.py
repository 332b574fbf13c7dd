"""Word documents: paragraphs and table rows, in body order, as blank-line separated blocks."""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import IO, Iterator

from ..errors import InputError
from ..model import Document
from ..textio import normalise_newlines
from .base import ReadOptions, Source


def _blocks(doc) -> Iterator[str]:  # type: ignore[no-untyped-def]
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for item in doc.iter_inner_content():
        if isinstance(item, Paragraph):
            yield item.text
        elif isinstance(item, Table):
            for row in item.rows:
                cells = [c.text.strip() for c in row.cells]
                # A two-column table is the usual transcript layout: speaker | utterance.
                if len(cells) == 2 and cells[0] and len(cells[0]) <= 40 and "\n" not in cells[0]:
                    yield f"{cells[0]}: {cells[1]}"
                else:
                    yield " | ".join(c for c in cells if c)


def docx_text(source: Path | IO[bytes], where: str | Path) -> str:
    """A Word document's text as assistcode keeps it (blocks separated by a blank line, LF newlines)."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(source) if isinstance(source, Path) else source)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, KeyError, ValueError, PackageNotFoundError) as exc:
        raise InputError(f"not a readable .docx file ({exc})", path=where, hint="open and re-save it in Word") from exc
    text = normalise_newlines("\n\n".join(b.strip() for b in _blocks(document) if b.strip()))
    if not text.strip():
        raise InputError("empty file: the document holds no text", path=where)
    return text


def read_docx(path: Path, options: ReadOptions) -> Iterator[Source]:
    text = docx_text(path, path)
    metadata = {"source": path.name, **options.metadata}
    yield Source(Document(text, title=path.stem, metadata=metadata, encoding="docx"))
