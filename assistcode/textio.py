"""Turning bytes into the text that offsets count in.

Rules: UTF-8 (with or without BOM); UTF-16 with a BOM; otherwise cp1252 when every byte is defined there, with a
warning and the encoding recorded. A NUL byte outside UTF-16 means a binary file: an error. Newlines become LF.
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .errors import EncodingError

# Bytes that cp1252 leaves undefined: a file holding any of them is not cp1252.
_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")


@dataclass
class Decoded:
    """Decoded text, the encoding used, and any warnings to pass on to the user."""

    text: str
    encoding: str
    warnings: list[str] = field(default_factory=list)


def normalise_newlines(text: str) -> str:
    """CRLF and lone CR become LF."""
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _sniff(chunks: Iterable[bytes], path: str | Path | None) -> tuple[str, list[str]]:
    """The rules above, over the bytes of a text in chunks (one chunk for a small file, many for a large table)."""
    utf8 = codecs.getincrementaldecoder("utf-8")()
    bad_line: int | None = None
    cp1252_ok, offset, lines, first = True, 0, 0, True
    for chunk in chunks:
        if first:
            first = False
            if chunk.startswith(codecs.BOM_UTF8):
                return "utf-8-sig", []
            if chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                return "utf-16", []
        nul = chunk.find(b"\x00")
        if nul >= 0:
            raise EncodingError(
                f"binary content (NUL byte at offset {offset + nul})",
                path=path,
                hint="assistcode reads text; save the file as UTF-8 text, or as UTF-16 with a byte-order mark",
            )
        if bad_line is None:
            try:
                utf8.decode(chunk)
            except UnicodeDecodeError as exc:
                bad_line = lines + chunk.count(b"\n", 0, max(exc.start, 0)) + 1
        cp1252_ok = cp1252_ok and _CP1252_UNDEFINED.isdisjoint(chunk)
        lines += chunk.count(b"\n")
        offset += len(chunk)
    if bad_line is None:
        try:
            utf8.decode(b"", final=True)
            return "utf-8", []
        except UnicodeDecodeError:
            bad_line = lines + 1
    if cp1252_ok:
        return "cp1252", [
            f"{path or 'input'}: not valid UTF-8 (first bad byte on line {bad_line}); read as cp1252 (Windows-1252). "
            "Pass --encoding if that is wrong."
        ]
    raise EncodingError(
        f"unknown encoding: not UTF-8 (bad byte on line {bad_line}), not UTF-16 with a BOM, not cp1252",
        path=path,
        line=bad_line,
        hint="pass --encoding NAME, e.g. --encoding latin-1",
    )


def sniff_encoding(data: bytes, path: str | Path | None = None) -> tuple[str, list[str]]:
    """Choose the encoding of ``data`` by the rules above; raise :class:`EncodingError` when none fits."""
    return _sniff([data], path)


def decode_bytes(data: bytes, *, path: str | Path | None = None, encoding: str | None = None) -> Decoded:
    """Decode ``data`` (by ``encoding`` if given, else sniffed) and normalise newlines."""
    warnings: list[str] = []
    if encoding is None:
        encoding, warnings = sniff_encoding(data, path)
    try:
        text = codecs.decode(data, encoding)
    except LookupError as exc:
        raise EncodingError(f"unknown encoding {encoding!r}", path=path, hint="use a Python codec name") from exc
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise EncodingError(f"cannot decode as {encoding}: {exc.reason}", path=path, line=line) from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    return Decoded(normalise_newlines(text), encoding, warnings)


def read_text(path: str | Path, encoding: str | None = None) -> Decoded:
    """Read a text file by the rules above. An empty file is an error."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EncodingError(f"cannot read: {exc.strerror}", path=path) from exc
    decoded = decode_bytes(data, path=path, encoding=encoding)
    if not decoded.text.strip():
        raise EncodingError("empty file: no text to import", path=path)
    return decoded


def sniff_file_encoding(path: str | Path, chunk_size: int = 1 << 24) -> tuple[str, list[str]]:
    """:func:`sniff_encoding` for a file of any size, read in chunks (for streamed tables)."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise EncodingError("empty file: no text to import", path=path)
    with path.open("rb") as fh:
        return _sniff(iter(lambda: fh.read(chunk_size), b""), path)
