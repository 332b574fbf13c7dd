"""Subtitle transcripts (WebVTT and SRT): cues merged into speaker turns, written as ``Speaker: text`` blocks."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from ..model import Document
from ..textio import read_text
from .base import ReadOptions, Source

_TIMING = re.compile(r"^\s*(\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{3}\s+-->\s+(\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{3}")
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>")
_TAG = re.compile(r"</?[a-z][^>]*>|<\d{1,2}:\d{2}[^>]*>", re.IGNORECASE)
_SRT_SPEAKER = re.compile(r"^\s*(?:-\s*)?(?:\[(?P<bracket>[^\]\n]{1,40})\]|(?P<colon>[A-Z][\w .'-]{0,39}?)\s*:)\s+")


def _cues(text: str, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, text lines) of each cue; notes, styles and the header are skipped."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if _TIMING.match(lines[i]):
            start = i + 1
            i += 1
            body = []
            while i < len(lines) and lines[i].strip():
                body.append(lines[i])
                i += 1
            yield start, body
        i += 1


def _turns(items: list[tuple[str | None, str]]) -> list[tuple[str | None, str]]:
    """Merge consecutive cues of the same speaker; a cue with no label continues the previous speaker."""
    turns: list[tuple[str | None, str]] = []
    for speaker, text in items:
        if not text:
            continue
        if turns and (speaker is None or speaker == turns[-1][0]):
            turns[-1] = (turns[-1][0], turns[-1][1] + " " + text)
        else:
            turns.append((speaker, text))
    return turns


def _document(path: Path, options: ReadOptions, turns: list[tuple[str | None, str]], encoding: str, warnings: list[str]) -> Source:
    if not turns:
        raise InputError("no cue with text found", path=path, hint="is this a subtitle file?")
    text = "\n\n".join(f"{s}: {t}" if s else t for s, t in turns)
    speakers = tuple(dict.fromkeys(s for s, _ in turns if s))
    metadata = {"source": path.name, **options.metadata}
    return Source(Document(text, title=path.stem, metadata=metadata, encoding=encoding), speakers=speakers, warnings=warnings)


def read_vtt(path: Path, options: ReadOptions) -> Iterator[Source]:
    decoded = read_text(path, options.encoding)
    if not decoded.text.lstrip().startswith("WEBVTT"):
        raise InputError("not a WebVTT file: the first line must be WEBVTT", path=path, line=1)
    items: list[tuple[str | None, str]] = []
    for _, body in _cues(decoded.text, path):
        raw = " ".join(body)
        voice = _VOICE.search(raw)
        items.append((voice.group(1).strip() if voice else None, " ".join(_TAG.sub("", raw).split())))
    yield _document(path, options, _turns(items), decoded.encoding, decoded.warnings)


def read_srt(path: Path, options: ReadOptions) -> Iterator[Source]:
    decoded = read_text(path, options.encoding)
    items: list[tuple[str | None, str]] = []
    for _, body in _cues(decoded.text, path):
        raw = " ".join(_TAG.sub("", " ".join(body)).split())
        m = _SRT_SPEAKER.match(raw)
        speaker = (m.group("bracket") or m.group("colon")).strip() if m else None
        items.append((speaker, raw[m.end():] if m else raw))
    yield _document(path, options, _turns(items), decoded.encoding, decoded.warnings)
