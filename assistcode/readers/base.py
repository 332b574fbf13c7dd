"""What every reader returns, and the options they share."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model import Document


@dataclass(frozen=True)
class ReadOptions:
    """Options of ``assistcode import``: encoding override and, for tables, which columns mean what."""

    encoding: str | None = None
    text_column: str | None = None
    id_columns: tuple[str, ...] = ()
    """Columns whose values together identify a row (joined as the document's key); the row number if none."""
    meta_columns: tuple[str, ...] | None = None
    """Columns kept as document metadata; ``None`` keeps every column but the text."""
    sheet: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    """Metadata added to every document read (e.g. ``site=B``)."""
    cache_dir: Path | None = None
    """Where ``datasets`` may cache: inside the project, never the user's home."""


@dataclass
class Source:
    """A document as read, with hints for the segmenter and warnings for the user."""

    document: Document | None
    """``None`` for a record that only carries a count of skipped rows."""
    speakers: tuple[str, ...] = ()
    """Speaker names the format itself declares (VTT voice tags, SRT prefixes)."""
    warnings: list[str] = field(default_factory=list)
    skipped: int = 0
    """Rows or parts the reader passed over (empty text), counted so they can be reported."""
    turns: tuple[tuple[int, int, str | None, float | None, str | None], ...] | None = None
    """Turns the format itself delimits (subtitle cues): (start, end, speaker, start time, role), offsets into the
    document's text; ``None`` where the segmenter finds them."""
