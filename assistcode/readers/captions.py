"""Subtitle transcripts (WebVTT and SRT): cues merged into speaker turns, written as ``Speaker: text`` blocks.

The speaker comes from a voice tag (``<v Name>``: Microsoft Teams) or a ``Name:`` prefix of the cue (Zoom); each
turn keeps its first cue's start time."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from ..model import Document
from ..textio import read_text
from ..transcripts import seconds
from .base import ReadOptions, Source

_TIMING = re.compile(r"^\s*(?P<start>(\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{3})\s+-->\s+(\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{3}")
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>")
_TAG = re.compile(r"</?[a-z][^>]*>|<\d{1,2}:\d{2}[^>]*>", re.IGNORECASE)
_SRT_SPEAKER = re.compile(r"^\s*(?:-\s*)?(?:\[(?P<bracket>[^\]\n]{1,40})\]|(?P<colon>[A-Z][\w .'-]{0,39}?)\s*:)\s+")


Item = tuple["str | None", str, "float | None"]
"""(speaker, text, start time in seconds) of a cue or a turn."""


def _cues(text: str, path: Path) -> Iterator[tuple[int, list[str], float]]:
    """(line number, text lines, start time) of each cue; notes, styles and the header are skipped."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _TIMING.match(lines[i])
        if m:
            start = i + 1
            i += 1
            body = []
            while i < len(lines) and lines[i].strip():
                body.append(lines[i])
                i += 1
            yield start, body, seconds(m.group("start"))
        i += 1


def _turns(items: list[Item]) -> list[Item]:
    """Merge consecutive cues of the same speaker; a cue with no label continues the previous speaker."""
    turns: list[Item] = []
    for speaker, text, time in items:
        if not text:
            continue
        if turns and (speaker is None or speaker == turns[-1][0]):
            turns[-1] = (turns[-1][0], turns[-1][1] + " " + text, turns[-1][2])
        else:
            turns.append((speaker, text, time))
    return turns


def _document(path: Path, options: ReadOptions, turns: list[Item], encoding: str, warnings: list[str]) -> Source:
    if not turns:
        raise InputError("no cue with text found", path=path, hint="is this a subtitle file?")
    parts: list[str] = []
    spans = []
    at = 0
    for speaker, body, time in turns:
        label = f"{speaker}: " if speaker else ""
        parts.append(label + body)
        spans.append((at + len(label), at + len(label) + len(body), speaker, time, None))
        at += len(label) + len(body) + 2
    text = "\n\n".join(parts)
    speakers = tuple(dict.fromkeys(s for s, _, _ in turns if s))
    metadata = {"source": path.name, **options.metadata}
    return Source(Document(text, title=path.stem, metadata=metadata, encoding=encoding), speakers=speakers,
                  warnings=warnings, turns=tuple(spans))


def read_vtt(path: Path, options: ReadOptions) -> Iterator[Source]:
    decoded = read_text(path, options.encoding)
    if not decoded.text.lstrip().startswith("WEBVTT"):
        raise InputError("not a WebVTT file: the first line must be WEBVTT", path=path, line=1)
    items: list[Item] = []
    for _, body, time in _cues(decoded.text, path):
        raw = " ".join(body)
        voice = _VOICE.search(raw)
        cue = " ".join(_TAG.sub("", raw).split())
        speaker = voice.group(1).strip() if voice else None
        if voice is None and (m := _SRT_SPEAKER.match(cue)) and m.group("colon"):  # Zoom: "Name: text"
            speaker, cue = m.group("colon").strip(), cue[m.end():]
        items.append((speaker, cue.strip(), time))
    yield _document(path, options, _turns(items), decoded.encoding, decoded.warnings)


def read_srt(path: Path, options: ReadOptions) -> Iterator[Source]:
    decoded = read_text(path, options.encoding)
    items: list[Item] = []
    for _, body, time in _cues(decoded.text, path):
        raw = " ".join(_TAG.sub("", " ".join(body)).split())
        m = _SRT_SPEAKER.match(raw)
        speaker = (m.group("bracket") or m.group("colon")).strip() if m else None
        items.append((speaker, raw[m.end():] if m else raw, time))
    yield _document(path, options, _turns(items), decoded.encoding, decoded.warnings)
