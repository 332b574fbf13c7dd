"""Transcripts as transcription services and meeting tools export them: speaker turns, start times, front matter,
roles.

One header shape per export convention, detected from the text (or forced by name):

========== =========================================== ================================================
shape      header                                      produced by
========== =========================================== ================================================
otter      ``Name  mm:ss`` on its own line             Otter.ai (txt, docx), Microsoft Teams (docx)
teams      ``Name hh:mm:ss`` on its own line           Microsoft Teams (docx)
zoom       ``[Name] hh:mm:ss`` on its own line         Zoom (txt, docx)
timed      ``hh:mm:ss Name:`` (or ``hh:mm:ss Name``)   Zoom (txt), NVivo Transcription, MAXQDA
rev        ``Name (hh:mm:ss):``                        Rev (``Speaker 1 (00:00):``)
trint      ``[hh:mm:ss] Name:``                        Trint, Descript
maxqda     ``#hh:mm:ss-d#`` leading a paragraph        MAXQDA, f4/f5transkript (also trailing: an end time)
plain      ``Name:``                                   typed transcripts (the built-in conventions)
========== =========================================== ================================================

The header is never part of a turn's text: a turn is ``(start, end, speaker, start_time, role)`` with
``text[start:end]`` its trimmed body. Text before the first header of a service's shape is front matter (title,
keywords, speaker list), kept as document metadata and never a turn. Odd input (a header with no text, a header with
no name, times that go backwards, two shapes in one file) still cuts turns and is counted as a warning with its line.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from .errors import InputError

Turn = tuple[int, int, "str | None", "float | None", "str | None"]
"""(start, end, speaker, start_time in seconds, role)."""

INTERVIEWER, PARTICIPANT = "interviewer", "participant"

_TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
_NAME = r"[^\W\d_][\w'\u2019.\-]*(?:[ ][\w'\u2019.\-]+){0,4}"
_SHORT_NAME = r"[^\W\d_][\w'\u2019.\-]*(?:[ ][\w'\u2019.\-]+){0,2}"

# Each shape: a regex matched at line starts; ``s`` the speaker, ``t`` the time; the match ends where the body begins.
_SHAPES: dict[str, str] = {
    "maxqda": rf"[ \t]*\#(?P<t>{_TIME})(?:-\d)?\#[ \t]*(?:(?P<s>{_NAME})[ \t]*:[ \t]*)?",
    "trint": rf"[ \t]*\[(?P<t>{_TIME})\][ \t]*(?:(?P<s>{_NAME})?[ \t]*:[ \t]*)?",
    "zoom": rf"[ \t]*\[(?P<s>[^\]\n]{{0,60}})\][ \t]+(?P<t>{_TIME})[ \t]*$",
    "timed": rf"[ \t]*(?P<t>{_TIME})[ \t]*(?:(?P<s>{_NAME})[ \t]*:[ \t]*|(?P<s2>{_SHORT_NAME})[ \t]*$)",
    "rev": rf"[ \t]*(?:(?P<s>{_NAME})[ \t]*)?\((?P<t>{_TIME})\)[ \t]*:[ \t]*",
    "otter": rf"[ \t]*(?:(?P<s>{_NAME})(?:[ \t]{{2,}}|\t))?(?P<t>{_TIME})[ \t]*$",
    "teams": rf"[ \t]*(?P<s>{_NAME})[ \t](?P<t>\d{{1,2}}:\d{{2}}:\d{{2}})[ \t]*$",
}
SERVICE_SHAPES = tuple(_SHAPES)

FORMATS: dict[str, tuple[str, ...]] = {
    "otter": ("otter",),
    "teams": ("otter", "teams"),
    "zoom": ("zoom", "timed"),
    "rev": ("rev",),
    "trint": ("trint",),
    "descript": ("trint",),
    "nvivo": ("timed", "trint"),
    "maxqda": ("maxqda", "timed"),
    "plain": (),
}
"""``--transcript-format`` names and the header shapes each accepts; ``plain`` is the ``Name:`` conventions."""


def _combined(shapes: Iterable[str]) -> re.Pattern[str]:
    parts = []
    for name in shapes:
        body = _SHAPES[name].replace("(?P<s>", f"(?P<s_{name}>").replace("(?P<s2>", f"(?P<s2_{name}>")
        parts.append(f"(?P<{name}>{body.replace('(?P<t>', f'(?P<t_{name}>')})")
    return re.compile("^(?:" + "|".join(parts) + ")", re.MULTILINE)


_ALL = _combined(SERVICE_SHAPES)
_BY_FORMAT = {name: _combined(shapes) for name, shapes in FORMATS.items() if shapes}
_CLOCK = re.compile(r":\d\d")  # a literal first: a fast scan for anything like a time
_TRAILING_STAMP = re.compile(rf"[ \t]*\#({_TIME})(?:-\d)?\#[ \t]*\Z")
_OTTER_FOOTER = re.compile(r"\n[ \t]*Transcribed by https?://otter\.ai[ \t]*\Z")
_INTERVIEWER_LABEL = re.compile(
    r"(?:interviewer|interviewerin|int|i|q|moderator|facilitator|researcher|host)(?:[ _-]?\d{1,3})?", re.IGNORECASE)


def seconds(stamp: str) -> float:
    """``'1:02:03.5'`` -> 3723.5; ``'02:03'`` -> 123.0."""
    whole, _, frac = stamp.replace(",", ".").partition(".")
    total = 0
    for part in whole.split(":"):
        total = total * 60 + int(part)
    return total + (float("0." + frac) if frac else 0.0)


@dataclass
class Transcript:
    """A document's turns and what was learnt on the way."""

    format: str
    turns: list[Turn]
    front_matter: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    roles: dict[str, Any] = field(default_factory=dict)
    """How roles were given: ``{"interviewers": [...], "how": ...}``, ``how`` one of named, label, inferred, none (no
    speaker asked the most questions) or "not named here"; inferred and none add the evidence (``questions`` and
    ``turns`` per speaker)."""


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _front_matter(raw: str) -> dict[str, Any]:
    """Otter-style front matter: a title line, maybe a date line, ``SUMMARY KEYWORDS`` and ``SPEAKERS`` blocks."""
    lines = [ln.strip() for ln in raw.split("\n") if ln.strip()]
    out: dict[str, Any] = {"text": raw.strip()}
    block: str | None = None
    head: list[str] = []
    lists: dict[str, list[str]] = {}
    for ln in lines:
        key = ln.upper()
        if key in ("SUMMARY KEYWORDS", "KEYWORDS", "SPEAKERS"):
            block = "keywords" if "KEYWORDS" in key else "speakers"
            lists.setdefault(block, [])
            continue
        if block:
            lists[block].extend(p.strip() for p in ln.split(",") if p.strip())
        else:
            head.append(ln)
    if head:
        out["title"] = head[0]
        if len(head) > 1:
            out["header"] = head[1:]
    out.update(lists)
    return out


Cut = tuple[int, int, "str | None", "float | None"]
"""(header start, body start, speaker, start time in seconds)."""


def _service(text: str, pattern: re.Pattern[str], where: str, warnings: list[str],
             forced: bool) -> tuple[str, list[Cut]] | None:
    """Cut points (header start, body start, speaker, time) of the service shapes in ``text``, or None if there are
    too few headers to call it a service transcript."""
    found = list(pattern.finditer(text))
    if not found or (len(found) < 2 and not forced):
        return None
    kinds = Counter(m.lastgroup for m in found)
    shape = max(kinds, key=lambda k: (kinds[k], -SERVICE_SHAPES.index(k or "")))  # ties: the more specific shape
    cuts: list[Cut] = []
    previous_time = -1.0
    for m in found:
        kind = m.lastgroup or ""
        speaker = m.group(f"s_{kind}") or (m.groupdict().get(f"s2_{kind}"))
        speaker = speaker.strip() if speaker else None
        time = seconds(m.group(f"t_{kind}"))
        if kind != shape or not speaker or time < previous_time:
            at = f"{where}:{_line(text, m.start())}"
            if kind != shape:
                warnings.append(f"{at}: a {kind} header in a {shape} transcript (mixed formats); the turn is cut there")
            if not speaker:
                warnings.append(f"{at}: a header with no speaker name; the turn is cut with no speaker")
            if time < previous_time:
                warnings.append(f"{at}: time {m.group(f't_{kind}')} goes back from the turn before")
        previous_time = time
        cuts.append((m.start(), m.end(), speaker, time))
    return shape, cuts


def _spans(text: str, cuts: Sequence[Cut], where: str, warnings: list[str], keep_lead: bool) -> tuple[list[Turn], str]:
    """Trimmed, non-empty turns between cut points; returns them and the text before the first cut."""
    turns: list[Turn] = []
    append = turns.append
    ends = [c[0] for c in cuts[1:]]
    ends.append(len(text))
    for (label_start, body, speaker, time), end in zip(cuts, ends):
        piece = text[body:end]
        stripped = piece.strip()
        if not stripped:
            if speaker is not None or time is not None:
                warnings.append(f"{where}:{_line(text, label_start)}: a header with no text after it "
                                f"({speaker or 'no name'}); no turn to code")
            continue
        s = body + len(piece) - len(piece.lstrip())
        append((s, s + len(stripped), speaker, time, None))
    lead = text[: cuts[0][0]] if cuts else text
    if keep_lead and lead.strip():
        piece = lead.strip()
        s = len(lead) - len(lead.lstrip())
        turns.insert(0, (s, s + len(piece), None, None, None))
    return turns, lead


def _trailing_stamps(text: str, turns: list[Turn]) -> list[Turn]:
    """f4/MAXQDA: a ``#hh:mm:ss-d#`` closing a turn is its end time, so the next turn's start; not part of its text."""
    out: list[Turn] = []
    carry: float | None = None
    for s, e, speaker, time, role in turns:
        if time is None and carry is not None:
            time = carry
        carry = None
        if text[e - 1] == "#":
            m = _TRAILING_STAMP.search(text, s, e)
            if m is not None:
                carry = seconds(m.group(1))
                e = s + len(text[s:m.start()].rstrip())
                if e <= s:
                    continue
        out.append((s, e, speaker, time, role))
    return out


def parse(text: str, transcript_format: str | None = None, *, pattern: str | re.Pattern[str] | None = None,
          speakers: Sequence[str] = (), where: str = "<text>") -> Transcript:
    """Turns of ``text``: the service shape found in it (or ``transcript_format``), else the ``Name:`` conventions.
    ``pattern`` (a regex with a ``speaker`` group) replaces detection; ``speakers`` adds names a reader declared."""
    from .segmenters import label_cuts, paragraphs

    warnings: list[str] = []
    if transcript_format is not None and transcript_format not in FORMATS:
        raise InputError(f"unknown transcript format {transcript_format!r}", field="--transcript-format",
                         hint="choose one of " + ", ".join(FORMATS))
    if pattern is None and transcript_format != "plain" and (transcript_format is not None or _CLOCK.search(text)):
        regex = _BY_FORMAT[transcript_format] if transcript_format else _ALL
        service_warnings: list[str] = []
        found = _service(text, regex, where, service_warnings, transcript_format is not None)
        if found is not None and transcript_format is None and 2 * sum(1 for c in found[1] if c[2]) < len(found[1]) \
                and label_cuts(text, None, speakers) is not None:
            found = None  # mostly nameless time marks in a `Name:` transcript: its labels are the turns
        if found is not None:
            warnings.extend(service_warnings)
            shape, cuts = found
            turns, lead = _spans(text, cuts, where, warnings, keep_lead=False)
            if "maxqda" in (shape, *FORMATS.get(transcript_format or "", ())) or "#" in text:
                turns = _trailing_stamps(text, turns)
            front = _front_matter(lead) if lead.strip() else {}
            if turns:
                m = _OTTER_FOOTER.search(text, turns[-1][0], turns[-1][1])
                if m is not None:
                    s, _, sp, t, r = turns[-1]
                    turns[-1] = (s, s + len(text[s:m.start()].rstrip()), sp, t, r)
                    front["footer"] = text[m.start():m.end()].strip()
            return Transcript(shape, turns, front, warnings)
        if transcript_format is not None:
            warnings.append(f"{where}: no {transcript_format} header found; read as plain `Name:` turns")
    cuts3 = label_cuts(text, pattern, speakers)
    if cuts3 is None:
        return Transcript("plain", [(s, e, None, None, None) for s, e, _ in paragraphs(text)], {}, warnings)
    turns, _ = _spans(text, cuts3, where, warnings, keep_lead=True)
    if "#" in text:
        turns = _trailing_stamps(text, turns)
    return Transcript("plain", turns, {}, warnings)


def infer_roles(text: str, turns: list[Turn], interviewers: Sequence[str] = ()) -> tuple[list[Turn], dict[str, Any]]:
    """Give each turn with a speaker a role. Named interviewers (``--interviewer``, case-insensitive) win; else
    speakers labelled as such (``Interviewer``, ``I``, ``Q``, ``Moderator``...); else the speaker who asks the most
    questions (turns with a ``?``), when one does so more than any other. The rest are participants."""
    distinct = {t[2] for t in turns}
    distinct.discard(None)
    if not distinct:
        return turns, {}
    evidence: dict[str, Any]
    if interviewers:
        wanted = {n.casefold() for n in interviewers}
        chosen = {n for n in distinct if n.casefold() in wanted}
        evidence = {"interviewers": sorted(chosen), "how": "named" if chosen else "not named here"}
    else:
        chosen = {n for n in distinct if _INTERVIEWER_LABEL.fullmatch(n)}
        evidence = {"interviewers": sorted(chosen), "how": "label"}
    if not chosen and not interviewers:  # the evidence: who asks questions
        asked: Counter[str] = Counter()
        find = text.find
        for s, e, speaker, _, _ in turns:
            if speaker is not None and find("?", s, e) != -1:
                asked[speaker] += 1
        ranked = asked.most_common(2)
        if len(distinct) > 1 and ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]):
            chosen = {ranked[0][0]}
        evidence = {"interviewers": sorted(chosen), "how": "inferred" if chosen else "none",
                    "questions": {n: asked.get(n, 0) for n in sorted(distinct)},
                    "turns": dict(sorted(Counter(t[2] for t in turns if t[2] is not None).items()))}
    out = [(s, e, sp, t, None if sp is None else INTERVIEWER if sp in chosen else PARTICIPANT)
           for s, e, sp, t, _ in turns]
    return out, evidence


def describe_roles(where: str, evidence: dict[str, Any]) -> str:
    """One line saying who was taken for the interviewer, and why."""
    qs = ", ".join(f"{n} {k}" for n, k in evidence.get("questions", {}).items())
    who = ", ".join(evidence.get("interviewers", [])) or "no one"
    how = {"named": "named by --interviewer", "label": "by speaker label", "inferred": "asked the most questions",
           "none": "no speaker asked more questions than the others",
           "not named here": "no --interviewer name speaks here"}[evidence.get("how", "none")]
    evidence_text = f"; turns with a question: {qs}" if qs else ""
    return f"{where}: interviewer: {who} ({how}{evidence_text}); override with --interviewer NAME"
