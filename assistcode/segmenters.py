"""Segmenters: split a document's text into spans ``(start, end, speaker)``.

Offsets count Unicode code points in the stored text; every span is non-empty, trimmed of surrounding whitespace,
and ``text[start:end]`` is its text. Turn, paragraph and sentence spans never overlap; window spans overlap by design.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Callable, Iterable, Sequence

from .errors import InputError
from .ids import segment_id
from .model import Document, Segment
from .transcripts import Transcript, infer_roles, parse, seconds

Span = tuple[int, int, "str | None"]

# Speaker labels that count wherever they appear at the start of a line.
_KNOWN_LABEL = (
    r"(?:Interviewer|Interviewee|Respondent|Participant|Moderator|Facilitator|Researcher)(?:[ _-]?\d{1,4})?"
    r"|[A-Z]{1,4} ?\d{1,4}"  # P3, JW046, JW 045
    r"|[IRQAP]"  # I:, R:, Q:, A:, P:
    r"|[A-Z][A-Z'.-]+(?: [A-Z][A-Z'.-]+){0,3}"  # JOHN, MARY SMITH, DR. JONES
)
# Optional leading timestamp: "[00:01:02] ", "00:01 ".
_TIMESTAMP = r"(?:\[?\(?(?P<time>\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)\)?\]?[ \t]+)?"
# One pass finds both: a known convention (group "speaker") or a capitalised name (group "name") that counts only
# where it labels two or more lines.
_LABEL_LINE = re.compile(
    rf"^[ \t]*{_TIMESTAMP}(?:(?P<speaker>{_KNOWN_LABEL})[ \t]*:[ \t]*"
    rf"|(?P<name>[A-Z][\w'.-]*(?: [A-Z][\w'.-]*){{0,2}})[ \t]*:[ \t]+)",
    re.MULTILINE,
)

Cut = tuple[int, int, "str | None", "float | None"]
"""(label start, body start, speaker, start time in seconds)."""


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink ``[start, end)`` past surrounding whitespace."""
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return start, start
    left = len(piece) - len(piece.lstrip())
    return start + left, start + left + len(stripped)


def _spans_between(text: str, cuts: Iterable[tuple[int, int, str | None]]) -> list[Span]:
    """Turn (label_start, body_start, speaker) cut points into trimmed, non-empty spans covering the text."""
    spans: list[Span] = []
    append = spans.append
    previous_body: int = 0
    previous_speaker: str | None = None
    for label_start, body_start, speaker in [*cuts, (len(text), len(text), None)]:
        piece = text[previous_body:label_start]
        stripped = piece.strip()
        if stripped:
            s = previous_body + len(piece) - len(piece.lstrip())
            append((s, s + len(stripped), previous_speaker))
        previous_body, previous_speaker = body_start, speaker
    return spans


def _time(m: re.Match[str]) -> float | None:
    stamp = m.group("time") if "time" in m.re.groupindex else None
    return seconds(stamp) if stamp else None


def label_cuts(text: str, pattern: str | re.Pattern[str] | None = None, speakers: Sequence[str] = ()) -> list[Cut] | None:
    """Cut points of ``Name:`` labels at line starts (the built-in conventions, or ``pattern``, a regex with a
    ``speaker`` group); ``None`` where there is no label at all."""
    if pattern is not None:
        regex = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern
        if "speaker" not in regex.groupindex:
            raise InputError("a speaker pattern needs a named group (?P<speaker>...)", field="--speaker-pattern")
        matches = list(regex.finditer(text))
        if not matches:
            return None
        return [(m.start(), m.end(), m.group("speaker").strip(), _time(m)) for m in matches]
    found = list(_LABEL_LINE.finditer(text))
    if not found:
        return None
    groups = [m.group("speaker", "name", "time") for m in found]
    names = Counter(g[1] for g in groups if g[1])
    known = set(speakers)
    cuts = [(m.start(), m.end(), (sp or name).strip(), seconds(time) if time else None)
            for m, (sp, name, time) in zip(found, groups) if sp or names[name] >= 2 or name in known]
    return cuts or None


def turns(text: str, pattern: str | re.Pattern[str] | None = None, speakers: Sequence[str] = (),
          transcript_format: str | None = None) -> list[Span]:
    """Speaker turns. Transcription-service headers (Otter, Zoom, Teams, Rev, Trint, Descript, NVivo, MAXQDA: see
    :mod:`assistcode.transcripts`) are detected; else a turn runs from after its ``Name:`` label to the next label,
    and text before the first label is a span with no speaker. ``pattern`` (a regex with a ``speaker`` group,
    matched at line starts) replaces the built-in conventions; ``speakers`` adds exact names (e.g. from VTT voice
    tags). With no label found, paragraphs.
    """
    return [t[:3] for t in parse(text, transcript_format, pattern=pattern, speakers=speakers).turns]


_PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\v]*\n")


def paragraphs(text: str) -> list[Span]:
    """Blocks of text separated by one or more blank lines."""
    return _spans_between(text, ((m.start(), m.end(), None) for m in _PARAGRAPH_BREAK.finditer(text)))


_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc eg ie cf al fig vol approx dept univ inc ltd co".split()
)
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)|\n[ \t\f\v]*\n")


def sentence_spans(text: str, start: int, end: int, speaker: str | None) -> list[Span]:
    cuts: list[tuple[int, int, str | None]] = []
    for m in _SENTENCE_END.finditer(text, start, end):
        if m.group().startswith("."):
            word = re.search(r"([A-Za-z]+)\.*$", text[max(start, m.start() - 12) : m.start() + 1])
            if word and (word.group(1).lower() in _ABBREVIATIONS or len(word.group(1)) == 1):
                continue
        cut = m.start() if m.group().startswith("\n") else m.end()
        cuts.append((cut, m.end(), speaker))
    spans: list[Span] = []
    previous = start
    for cut, body, _ in cuts:
        s, e = trim(text, previous, cut)
        if s < e:
            spans.append((s, e, speaker))
        previous = body
    s, e = trim(text, previous, end)
    if s < e:
        spans.append((s, e, speaker))
    return spans


def sentences(text: str, pattern: str | re.Pattern[str] | None = None, speakers: Sequence[str] = (),
              transcript_format: str | None = None) -> list[Span]:
    """Sentences within speaker turns (or paragraphs, where there are no speaker labels), each keeping its turn's
    speaker: a break after ., !, ?, or an ellipsis followed by whitespace (not after common abbreviations or
    single initials), and at every blank line."""
    spans: list[Span] = []
    for s, e, speaker in turns(text, pattern, speakers, transcript_format):
        spans.extend(sentence_spans(text, s, e, speaker))
    return spans


def rows(text: str) -> list[Span]:
    """The whole text as one segment (a survey answer, a table row): never split."""
    s, e = trim(text, 0, len(text))
    return [(s, e, None)] if s < e else []


def transcript_turns(text: str, method: str = "turn", *, transcript_format: str | None = None,
                     pattern: str | re.Pattern[str] | None = None, speakers: Sequence[str] = (),
                     interviewers: Sequence[str] = (), where: str = "<text>", **options: object) -> Transcript:
    """Segments with their start time and role: (start, end, speaker, start_time, role). Turn and sentence
    segmenters read the transcript's format (:func:`assistcode.transcripts.parse`) and give roles; the others give
    spans with neither."""
    if method not in ("turn", "sentence"):
        spans = spans_for(text, method, **options)
        return Transcript(method, [(s, e, sp, None, None) for s, e, sp in spans])
    parsed = parse(text, transcript_format, pattern=pattern, speakers=speakers, where=where)
    parsed.turns, parsed.roles = infer_roles(text, parsed.turns, interviewers)
    if method == "sentence":
        parsed.turns = [(a, b, sp, t, r) for s, e, sp, t, r in parsed.turns for a, b, _ in sentence_spans(text, s, e, sp)]
    return parsed


_WORD = re.compile(r"\S+")


def windows(text: str, size: int = 100, overlap: int = 20) -> list[Span]:
    """Windows of ``size`` words, each starting ``size - overlap`` words after the last."""
    if size < 1 or not 0 <= overlap < size:
        raise InputError(f"window size {size} with overlap {overlap}: need size >= 1 and 0 <= overlap < size")
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    spans: list[Span] = []
    step = size - overlap
    for first in range(0, len(words), step):
        last = min(first + size, len(words)) - 1
        spans.append((words[first][0], words[last][1], None))
        if last == len(words) - 1:
            break
    return spans


SEGMENTERS: dict[str, Callable[..., list[Span]]] = {
    "turn": turns,
    "paragraph": paragraphs,
    "sentence": sentences,
    "window": windows,
    "row": rows,
}


def spans_for(text: str, method: str = "turn", **options: object) -> list[Span]:
    """The spans of ``text`` by the named segmenter."""
    try:
        fn = SEGMENTERS[method]
    except KeyError:
        raise InputError(f"unknown segmenter {method!r}", field="--segment", hint=f"choose one of {', '.join(SEGMENTERS)}") from None
    return fn(text, **options)


def segment(document: Document, method: str = "turn", **options: object) -> list[Segment]:
    """Segment a document. Ids derive from the document's content hash and the offsets."""
    text, identity = document.text, document.identity
    return [
        Segment(segment_id(identity, s, e), document.id, i, s, e, text[s:e], speaker)
        for i, (s, e, speaker) in enumerate(spans_for(text, method, **options))
    ]
