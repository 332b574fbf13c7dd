"""Parsing QDA-XML (the ``project.qde`` inside a ``.qdpx``, and ``.qdc`` codebooks) into plain records.

The XML is parsed with defusedxml: a DTD, an entity declaration or an external reference is refused outright. Known
exporter quirks are tolerated with a warning: GUIDs in braces, a missing namespace, ``Description`` where a ``Note``
is expected, optional attributes missing.
"""
from __future__ import annotations

import bisect
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from ..errors import InputError

PROJECT_NS = "urn:QDA-XML:project:1.0"
CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
CODE_NOTE = "assistcode code"
"""The name of the Note that carries an assistcode code's full entry (id, include, exclude, examples) in a .qdpx."""
CODING_NOTE = "assistcode suggestion"
"""What a model coding's Note starts with: ``Suggested by ...``, then its confidence, evidence and rationale as prose."""
_NOTE = re.compile(r"Suggested by (?P<coder>.+?)(?: \((?P<details>[^\n]*)\))?\.\n(?:Confidence: (?P<confidence>[^\n]*)\n)?"
                   r"(?:Evidence: \u201c(?P<evidence>.*?)\u201d\n)?(?:Rationale: (?P<rationale>.*))?\Z", re.DOTALL)
_DETAIL = re.compile(r"(model|template|run) (.+)")


def coding_note(coder: str, meta: dict) -> str:
    """A model coding's Note as a reader of the .qdpx sees it in NVivo or ATLAS.ti::

        Suggested by run3:gpt-4o-mini:deductive@1 (model gpt-4o-mini, template deductive v1, run 3).
        Confidence: 0.82
        Evidence: “the chief nurse drives it”
        Rationale: Names who leads.

    :func:`read_coding_note` reads it back."""
    details = []
    if meta.get("model"):
        details.append(f"model {meta['model']}")
    if meta.get("template"):
        details.append(f"template {meta['template']}" + (f" v{meta['template_version']}" if meta.get("template_version") else ""))
    if meta.get("run") is not None:
        details.append(f"run {meta['run']}")
    lines = [f"Suggested by {coder}" + (f" ({', '.join(details)})" if details else "") + "."]
    if meta.get("confidence") is not None:
        lines.append(f"Confidence: {float(meta['confidence'])!r}")
    if meta.get("evidence"):
        lines.append(f"Evidence: \u201c{meta['evidence']}\u201d")
    if meta.get("rationale"):
        lines.append(f"Rationale: {meta['rationale']}")
    return "\n".join(lines) + ("" if meta.get("rationale") else "\n")


def read_coding_note(text: str) -> dict | None:
    """The fields of a Note written by :func:`coding_note` (or the JSON notes of earlier versions), else None."""
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return None
        return data if isinstance(data, dict) and data.get("note") == CODING_NOTE else None
    m = _NOTE.match(text if text.endswith("\n") or "Rationale: " in text else text + "\n")
    if not m:
        return None
    meta: dict = {"note": CODING_NOTE, "rationale": m["rationale"], "evidence": m["evidence"], "confidence": None}
    if m["confidence"]:
        try:
            meta["confidence"] = float(m["confidence"])
        except ValueError:
            return None
    for part in (m["details"] or "").split(", "):
        d = _DETAIL.fullmatch(part)
        if d and d[1] == "template":
            name, _, version = d[2].rpartition(" v")
            meta["template"], meta["template_version"] = (name, version) if name else (d[2], None)
        elif d:
            meta[d[1]] = d[2]
    return meta
GUID = re.compile(r"^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$")


@dataclass
class RefiCode:
    guid: str
    name: str
    description: str = ""
    color: str | None = None
    codable: bool = True
    parent: str | None = None
    entry: dict | None = None
    """An assistcode code entry carried in a Note, when the file was written by assistcode."""


@dataclass
class RefiCoding:
    code: str
    user: str | None
    notes: list[str] = field(default_factory=list)


@dataclass
class RefiSelection:
    guid: str
    start: int
    end: int
    user: str | None
    codings: list[RefiCoding] = field(default_factory=list)


@dataclass
class RefiSource:
    guid: str
    name: str
    text: str
    selections: list[RefiSelection] = field(default_factory=list)


@dataclass
class RefiProject:
    name: str = ""
    users: dict[str, str] = field(default_factory=dict)
    codes: list[RefiCode] = field(default_factory=list)
    sources: list[RefiSource] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    """What was not imported, by kind (picture, audio, ...), counted."""


def parse_xml(data: bytes, where: str | Path) -> Element:
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise InputError(f"refused: the XML declares a DTD, entities or external references ({type(exc).__name__}); "
                         "a REFI-QDA file needs none", path=where) from exc
    except ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise InputError(f"not well-formed XML: {exc}", path=where, line=line) from exc


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def children(el: Element, name: str) -> list[Element]:
    return [c for c in el if local(c.tag) == name]


def child(el: Element, name: str) -> Element | None:
    for c in el:
        if local(c.tag) == name:
            return c
    return None


def text_of(el: Element | None) -> str:
    return "" if el is None else "".join(el.itertext()).strip()


class Reader:
    """Shared state of one parse: warnings, and GUID normalisation that says so once."""

    def __init__(self, where: str | Path) -> None:
        self.where = where
        self.warnings: list[str] = []
        self._braces = False

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def guid(self, value: str | None, what: str, required: bool = True) -> str | None:
        if value is None or not value.strip():
            if required:
                raise InputError(f"{what} has no guid", path=self.where)
            return None
        m = GUID.match(value.strip())
        if not m:
            raise InputError(f"{what}: {value!r} is not a GUID", path=self.where)
        if value.strip().startswith("{") and not self._braces:
            self._braces = True
            self.warn("GUIDs written in braces: read without them")
        return m.group(1).lower()

    def codes(self, parent_el: Element, parent: str | None, out: list[RefiCode], notes: dict[str, tuple[str, str]]) -> None:
        for el in children(parent_el, "Code"):
            guid = self.guid(el.get("guid"), "a Code")
            name = el.get("name")
            if not name:
                self.warn("a Code without a name: named by its guid")
                name = guid
            codable = el.get("isCodable")
            if codable is None:
                self.warn("a Code without isCodable: taken as codable")
            entry = None
            for ref in children(el, "NoteRef"):
                note = notes.get(self.guid(ref.get("targetGUID"), "a NoteRef") or "")
                if note and note[0] == CODE_NOTE:
                    try:
                        entry = json.loads(note[1])
                    except json.JSONDecodeError:
                        self.warn(f"code {name!r}: its assistcode note is not JSON; read from the name instead")
            color = el.get("color")
            out.append(RefiCode(guid, name, text_of(child(el, "Description")), color,
                                codable is None or codable.lower() in ("true", "1"), parent, entry))
            self.codes(el, guid, out, notes)


def parse_codebook(root: Element, reader: Reader) -> list[RefiCode]:
    """The codes of a ``CodeBook`` element (in a project or a .qdc)."""
    codes_el = child(root, "Codes")
    if codes_el is None:
        raise InputError("the CodeBook holds no Codes element", path=reader.where)
    out: list[RefiCode] = []
    reader.codes(codes_el, None, out, {})
    return out


def parse_project(root: Element, reader: Reader,
                  load_text: Callable[[Element, str], tuple[str, list[int]] | None]) -> RefiProject:
    """A ``Project`` element. ``load_text(source_element, name)`` returns a text source's plain text with LF line
    ends and the positions of the CRs it dropped from CRLF (selections count in the original text), or ``None`` to
    skip it, having said why."""
    if local(root.tag) != "Project":
        raise InputError(f"the root element is {local(root.tag)!r}, not Project", path=reader.where)
    if not root.tag.startswith("{" + PROJECT_NS):
        reader.warn(f"the project is not in the namespace {PROJECT_NS}: read by element names")
    proj = RefiProject(root.get("name") or "")
    default_user = reader.guid(root.get("creatingUserGUID"), "the Project", required=False)
    users = child(root, "Users")
    for u in children(users, "User") if users is not None else []:
        guid = reader.guid(u.get("guid"), "a User")
        name = u.get("name") or u.get("id")
        if not name:
            reader.warn("a User without a name: named by its guid")
            name = f"user-{guid[:8]}"
        proj.users[guid] = name
    notes: dict[str, tuple[str, str]] = {}
    notes_el = child(root, "Notes")
    for n in children(notes_el, "Note") if notes_el is not None else []:
        guid = reader.guid(n.get("guid"), "a Note")
        notes[guid] = (n.get("name") or "", text_of(child(n, "PlainTextContent")) or text_of(child(n, "Description")))
    book = child(root, "CodeBook")
    if book is not None:
        codes_el = child(book, "Codes")
        if codes_el is not None:
            reader.codes(codes_el, None, proj.codes, notes)
    known_codes = {c.guid for c in proj.codes}

    def note_texts(el: Element) -> list[str]:
        out = []
        for ref in children(el, "NoteRef"):
            target = reader.guid(ref.get("targetGUID"), "a NoteRef")
            if target in notes:
                out.append(notes[target][1])
            else:
                reader.warn("a NoteRef points to no Note: left out")
        return out

    sources = child(root, "Sources")
    for el in list(sources) if sources is not None else []:
        kind = local(el.tag)
        if kind != "TextSource":
            proj.skipped[kind] = proj.skipped.get(kind, 0) + 1
            continue
        guid = reader.guid(el.get("guid"), "a TextSource")
        name = el.get("name") or f"source-{guid[:8]}"
        loaded = load_text(el, name)
        if loaded is None:
            proj.skipped["TextSource without readable text"] = proj.skipped.get("TextSource without readable text", 0) + 1
            continue
        text, dropped = loaded
        src = RefiSource(guid, name, text)
        for sel in children(el, "PlainTextSelection"):
            sguid = reader.guid(sel.get("guid"), f"a selection in {name!r}")
            try:
                start, end = int(sel.get("startPosition", "")), int(sel.get("endPosition", ""))
            except ValueError:
                raise InputError(f"source {name!r}: a selection lacks whole-number startPosition/endPosition",
                                 path=reader.where) from None
            if not 0 <= start <= end <= len(text) + len(dropped):
                raise InputError(f"source {name!r}: selection {start}-{end} lies outside its text of "
                                 f"{len(text) + len(dropped)} characters", path=reader.where)
            if dropped:  # offsets into the CRLF text, moved to the LF text assistcode keeps
                start -= bisect.bisect_left(dropped, start)
                end -= bisect.bisect_left(dropped, end)
            user = reader.guid(sel.get("creatingUser"), "a selection", required=False)
            memos = []
            desc = text_of(child(sel, "Description"))
            if desc:
                reader.warn("a selection carries its memo as Description instead of a Note: read as a note")
                memos.append(desc)
            memos += note_texts(sel)
            selection = RefiSelection(sguid, start, end, user)
            for coding in children(sel, "Coding"):
                ref = child(coding, "CodeRef")
                code = reader.guid(ref.get("targetGUID") if ref is not None else None, f"a Coding in {name!r}")
                if code not in known_codes:
                    raise InputError(f"source {name!r}: a Coding refers to code {code}, which the codebook lacks",
                                     path=reader.where)
                cuser = reader.guid(coding.get("creatingUser"), "a Coding", required=False) or user or default_user
                if cuser is None:
                    reader.warn("codings with no creatingUser anywhere: given to a user named 'unknown'")
                    cuser = "00000000-0000-0000-0000-000000000000"
                    proj.users.setdefault(cuser, "unknown")
                elif cuser not in proj.users:
                    reader.warn("a coding's user is not among the Users: named by its guid")
                    proj.users[cuser] = f"user-{cuser[:8]}"
                selection.codings.append(RefiCoding(code, cuser, memos + note_texts(coding)))
            src.selections.append(selection)
        if children(el, "Coding"):
            reader.warn(f"source {name!r}: codings of the whole source (not of a selection) are left out")
        proj.sources.append(src)
    proj.warnings = reader.warnings
    return proj


def slug(name: str, taken: set[str]) -> str:
    """A code id from a name: lower-case ASCII words joined by hyphens, unique among ``taken``."""
    base = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")[:60] or "code"
    out, n = base, 2
    while out in taken:
        out, n = f"{base}-{n}", n + 1
    taken.add(out)
    return out
