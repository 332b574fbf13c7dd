"""REFI-QDA projects (``.qdpx``) in and out.

Import: text sources become documents (their plain text, offsets kept exactly), each coded selection a segment, the
codebook the current codebook, and each user a coder. Export: documents, codebook and the chosen coders' codes, each
model run as its own User with its rationale and confidence as Notes on its codings; GUIDs derive from assistcode's
ids, so exporting twice gives the same GUIDs; the project is validated against the schema before it is written.
"""
from __future__ import annotations

import json
import re
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence
from xml.etree.ElementTree import Element, SubElement, tostring

from .. import __version__
from ..corpus import store_document
from ..errors import InputError
from ..exports import atomic_path
from ..gold import GoldRow, GoldTable
from ..ids import segment_id
from ..model import REVIEWED, Code, Codebook, Document
from ..segmenters import spans_for
from ..spans import Span, merge
from ..store.db import now, transaction
from . import sources as source_files
from .archive import Limits, SafeArchive
from .qde import (CODE_NOTE, CODING_NOTE, PROJECT_NS, coding_note, read_coding_note, Reader, RefiCode, RefiProject, child, parse_project, parse_xml,
                  slug)
from .validate import problems

NAMESPACE = uuid.UUID("6f1c1e52-8a58-4c2b-9f39-5e0f3b1a7d21")
RGB = re.compile(r"^#([A-Fa-f0-9]{6}|[A-Fa-f0-9]{3})$")
MODEL_USER = re.compile(r"^run\d+:")


def guid(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "\x1f".join(parts)))


# ---- reading ------------------------------------------------------------------------------------------------------

def _decode(data: bytes, where: str, warn: Any) -> tuple[str, list[int]]:
    """Plain text as REFI-QDA stores it (UTF-8), and the positions of the CRs dropped from CRLF (to move offsets)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        warn("a source starts with a byte-order mark: dropped (offsets count the text after it)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"source text is not valid UTF-8 (byte {exc.start}: {data[exc.start:exc.start + 4]!r}); "
                         "REFI-QDA plain text is UTF-8", path=where) from exc
    dropped = [i for i, ch in enumerate(text) if ch == "\r" and text[i + 1:i + 2] == "\n"]
    return text.replace("\r\n", "\n"), dropped


def read_qdpx(path: str | Path, *, sources_dir: str | Path | None = None, limits: Limits | None = None) -> RefiProject:
    """Parse a ``.qdpx`` completely (nothing is written). External sources are read only from ``sources_dir``
    (default: the archive's folder): a hostile project cannot make assistcode read other files."""
    path = Path(path)
    allowed = Path(sources_dir or path.parent).resolve()
    with SafeArchive(path, limits) as z:
        qdes = [n for n in z.names if n.lower().endswith(".qde")]
        if not qdes:
            raise InputError("no project file (.qde) inside the archive", path=path)
        name = next((n for n in qdes if n.lower().rsplit("/", 1)[-1] == "project.qde"), None)
        if name is None and len(qdes) > 1:
            raise InputError("several .qde files and none named project.qde: " + ", ".join(qdes[:5]), path=path)
        name = name or qdes[0]
        reader = Reader(f"{path}:{name}")
        if name != "project.qde":
            reader.warn(f"the project file is named {name!r}, not project.qde")
        root = parse_xml(z.read(name), f"{path}:{name}")
        def load_text(el: Element, sname: str) -> tuple[str, list[int]] | None:
            inline = child(el, "PlainTextContent")
            where = f"{path}: source {sname!r}"
            if inline is not None:
                text, dropped = _decode("".join(inline.itertext()).encode("utf-8"), where, reader.warn)
            elif el.get("plainTextPath"):
                text, dropped = _decode(_source_bytes(z, el.get("plainTextPath", ""), allowed, where, reader), where, reader.warn)
            elif (el.get("richTextPath") or "").lower().endswith(".docx"):
                text, dropped = _docx_text(z, el.get("richTextPath", ""), allowed, where, reader), []
                reader.warn(f"source {sname!r} has only a .docx: its text is read from the document; selections "
                            "count in that text")
            else:
                reader.warn(f"source {sname!r} has no plain text: left out")
                return None
            return text, dropped

        return parse_project(root, reader, load_text)


def _source_bytes(z: SafeArchive, ref: str, allowed: Path, where: str, reader: Reader,
                  suffixes: frozenset[str] = source_files.TEXT_SUFFIXES) -> bytes:
    return source_files.source_bytes(z, ref, allowed, where, reader.warn, suffixes)


def _docx_text(z: SafeArchive, ref: str, allowed: Path, where: str, reader: Reader) -> str:
    import io

    from ..readers.docx import docx_text

    data = _source_bytes(z, ref, allowed, where, reader, source_files.DOCUMENT_SUFFIXES)
    return docx_text(io.BytesIO(data), where)


def codebook_from_refi(codes: Sequence[RefiCode], name: str, description: str = "") -> tuple[Codebook, dict[str, str]]:
    """The codebook, and guid -> code id. Codes written by assistcode keep their ids and entries; others get ids
    from their names."""
    taken: set[str] = set()
    ids: dict[str, str] = {}
    for c in codes:
        if c.entry and isinstance(c.entry.get("id"), str) and c.entry["id"] not in taken:
            ids[c.guid] = c.entry["id"]
            taken.add(c.entry["id"])
    for c in codes:
        if c.guid not in ids:
            ids[c.guid] = slug(c.name, taken)
    out = []
    for c in codes:
        e = c.entry or {}
        out.append(Code(ids[c.guid], c.name, c.description or e.get("definition", ""), e.get("include", ""),
                        e.get("exclude", ""), tuple(e.get("examples", ())),
                        ids[c.parent] if c.parent else None, c.color if c.color and RGB.match(c.color) else None))
    if not out:
        raise InputError("the project has no codes", hint="a REFI-QDA project to import needs a CodeBook")
    return Codebook(name, tuple(out), description), ids


@dataclass
class QdpxImport:
    documents_added: int = 0
    documents_present: int = 0
    segments_added: int = 0
    codings: int = 0
    coders: dict[str, str] = field(default_factory=dict)
    """coder name -> kind."""
    selections_unmatched: int = 0
    spans: int = 0
    """Span codings stored: each coded selection on its document, whatever the segments (eval --spans)."""
    skipped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _spans(text: str, selections: list[tuple[int, int]], uncoded: str | None) -> list[tuple[int, int, str | None]]:
    spans = sorted(set(selections))
    if uncoded:
        covered, at, gaps = sorted(spans), 0, []
        for s, e in covered:
            if s > at:
                gaps.append((at, s))
            at = max(at, e)
        if at < len(text):
            gaps.append((at, len(text)))
        for a, b in gaps:
            spans += [(a + s, a + e, None) for s, e, _ in spans_for(text[a:b], uncoded)]  # type: ignore[misc]
    return sorted((s, e, None) for s, e, *_ in spans)


def import_qdpx(project: Any, path: str | Path, *, segment_uncoded: str | None = None,
                sources_dir: str | Path | None = None, limits: Limits | None = None) -> QdpxImport:
    """Everything or nothing: the archive is read and checked whole before one transaction writes it."""
    path = Path(path)
    refi = read_qdpx(path, sources_dir=sources_dir, limits=limits)
    if segment_uncoded:
        spans_for("", segment_uncoded)  # an unknown segmenter fails before any work
    codebook, code_ids = codebook_from_refi(refi.codes, refi.name or path.stem)
    report = QdpxImport(skipped=dict(refi.skipped), warnings=list(refi.warnings))
    names: dict[str, str] = {}
    for g, n in refi.users.items():
        names[g] = n if n not in names.values() else f"{n} ({g[:8]})"
    texts_seen: dict[str, str] = {}
    rows: dict[str, list[GoldRow]] = {"human": [], "model": [], "reviewer": []}
    extras: list[tuple[str, str, str, dict[str, Any]]] = []
    span_rows: list[tuple[Span, str]] = []
    with transaction(project.db):
        project.import_codebook(codebook)
        cur = project.db.execute("INSERT INTO imports (kind, source, options, created_at) VALUES ('corpus', ?, ?, ?)",
                                 (path.name, json.dumps({"format": "qdpx", "uncoded": segment_uncoded}), now()))
        for src in refi.sources:
            key = "" if src.text not in texts_seen else src.name  # equal texts stay apart
            texts_seen.setdefault(src.text, src.name)
            doc = Document(src.text, title=src.name, metadata={"source": src.name, "refi_guid": src.guid}, key=key)
            spans = _spans(src.text, [(s.start, s.end) for s in src.selections], segment_uncoded)
            added = store_document(project.db, doc, lambda: spans, "refi-qda", cur.lastrowid)
            if added is None:
                report.documents_present += 1
            else:
                report.documents_added += 1
                report.segments_added += added
            for sel in src.selections:
                if sel.end > sel.start:  # each coded selection is also a span coding on its document
                    span_rows += [(Span(doc.id, sel.start, sel.end, names[c.user or ""], code_ids[c.code]),
                                   _kind(names[c.user or ""], _coding_meta(c.notes))) for c in sel.codings]
                sid = segment_id(doc.identity, sel.start, sel.end)
                if not project.db.execute("SELECT 1 FROM segments WHERE id = ?", (sid,)).fetchone():
                    report.selections_unmatched += 1
                    continue
                for coding in sel.codings:
                    coder = names[coding.user or ""]
                    meta = _coding_meta(coding.notes)
                    kind = _kind(coder, meta)
                    rows[kind].append(GoldRow(sid, coder, code_ids[coding.code], 0))
                    report.coders[coder] = kind
                    report.codings += 1
                    if coding.notes:
                        extras.append((sid, coder, code_ids[coding.code], meta or {"rationale": "\n\n".join(coding.notes)}))
        for kind, kind_rows in rows.items():
            if kind_rows:
                table = GoldTable(str(path), explicit_seen=False)
                table.rows = kind_rows
                project.import_gold(table, coder_kind=kind)
        project.db.executemany(
            "UPDATE annotations SET rationale = ?, confidence = ?, evidence = ? WHERE segment_id = ? AND coder = ? AND code = ?",
            [(m.get("rationale"), m.get("confidence"), m.get("evidence"), s, c, k) for s, c, k, m in extras])
        kinds = {sp.coder: kind for sp, kind in span_rows}
        span_list, merged = merge(sp for sp, _ in span_rows)
        for coder, kind in kinds.items():
            project.db.execute("INSERT OR IGNORE INTO coders (name, kind, created_at) VALUES (?, ?, ?)", (coder, kind, now()))
        before = project.db.total_changes
        project.db.executemany('INSERT OR IGNORE INTO span_codings (document_id, start, "end", coder, code, import_id) '
                               "VALUES (?, ?, ?, ?, ?, ?)", [(sp.document, sp.start, sp.end, sp.coder, sp.code, cur.lastrowid) for sp in span_list])
        report.spans = project.db.total_changes - before
    if merged:
        report.warnings.append(f"{merged} overlapping selections of the same code by the same user merged into one "
                               "span coding (segments keep them apart)")
    if report.selections_unmatched:
        report.warnings.append(f"{report.selections_unmatched} selections match no segment of documents already in the "
                               "project (segmented otherwise): left out")
    return report


def _kind(coder: str, meta: dict[str, Any] | None) -> str:
    """A coder's kind from its name and its codings' notes: a model run, a reviewer, or a human."""
    return ("model" if meta or MODEL_USER.match(coder) else
            "reviewer" if coder == REVIEWED or coder.startswith("reviewer:") else "human")


def _coding_meta(notes: list[str]) -> dict[str, Any] | None:
    for n in notes:
        meta = read_coding_note(n)
        if meta is not None:
            return meta
    return None


# ---- writing ------------------------------------------------------------------------------------------------------

def _q(tag: str) -> str:
    return tag  # the namespace is declared once, as xmlns on the root


@dataclass
class QdpxExport:
    path: Path
    documents: int = 0
    selections: int = 0
    codings: int = 0
    users: list[str] = field(default_factory=list)


def export_qdpx(project: Any, output: str | Path, *, coders: Sequence[str] | None = None, segments: str = "coded") -> QdpxExport:
    """Write the project (documents, current codebook, the chosen coders' codes) as a ``.qdpx``, validated."""
    db = project.db
    codebook = project.codebook()
    known = {r[0]: r[1] for r in db.execute("SELECT name, kind FROM coders")}
    chosen = list(coders) if coders else list(known)
    for c in chosen:
        if c not in known:
            raise InputError(f"no coder named {c!r}", field="--coders", hint="coders: " + ", ".join(known))
    stamp = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    root = Element(_q("Project"), {"xmlns": PROJECT_NS, "name": codebook.name or "assistcode project",
                                   "origin": f"assistcode {__version__}",
                                   "creationDateTime": stamp})
    users = SubElement(root, _q("Users"))
    user_guid = {c: guid("coder", c) for c in chosen}
    for c in chosen:
        SubElement(users, _q("User"), {"guid": user_guid[c], "name": c, "id": c})
    notes: list[tuple[str, str, str]] = []
    book = SubElement(root, _q("CodeBook"))
    codes_el = SubElement(book, _q("Codes"))
    code_guid = {c.id: guid("code", c.id) for c in codebook.codes}
    elements: dict[str | None, Element] = {None: codes_el}
    for c in tree_order(codebook):
        attrs = {"guid": code_guid[c.id], "name": c.name, "isCodable": "true"}
        if c.color and RGB.match(c.color):
            attrs["color"] = c.color
        el = SubElement(elements[c.parent], _q("Code"), attrs)
        if c.definition:
            SubElement(el, _q("Description")).text = c.definition
        note = guid("code-note", c.id)
        notes.append((note, CODE_NOTE, json.dumps(c.as_dict(), ensure_ascii=False)))
        SubElement(el, _q("NoteRef"), {"targetGUID": note})
        elements[c.id] = el
    # annotations of the chosen coders, by segment
    marks = ",".join("?" * len(chosen))
    by_segment: dict[str, list[tuple]] = {}
    for row in db.execute(f"SELECT segment_id, coder, code, confidence, rationale, evidence, run_id FROM annotations "
                          f"WHERE coder IN ({marks}) ORDER BY id", chosen):
        by_segment.setdefault(row[0], []).append(row)
    runs = {r[0]: json.loads(r[1]) for r in db.execute("SELECT id, manifest FROM runs")}
    sources = SubElement(root, _q("Sources"))
    report = QdpxExport(Path(output), users=chosen)
    files: list[tuple[str, bytes]] = []
    for doc_id, title, key, text in db.execute("SELECT id, title, key, text FROM documents ORDER BY rowid"):
        sguid = guid("document", doc_id)
        src = SubElement(sources, _q("TextSource"), {"guid": sguid, "name": title or key or doc_id,
                                                      "plainTextPath": f"internal://{sguid}.txt"})
        files.append((f"sources/{sguid}.txt", text.encode("utf-8")))
        report.documents += 1
        written: set[tuple[int, int, str, str]] = set()
        for seg_id, start, end in db.execute('SELECT s.id, s.start, s."end" FROM documents d JOIN segments s ON s.rowid '
                                             "BETWEEN d.first_segment AND d.first_segment + d.segment_count - 1 "
                                             "WHERE d.id = ? ORDER BY s.rowid", (doc_id,)):
            rows = by_segment.get(seg_id, [])
            if not rows:
                if segments == "all":
                    SubElement(src, _q("PlainTextSelection"), {"guid": guid("selection", seg_id), "name": seg_id,
                                                               "startPosition": str(start), "endPosition": str(end)})
                    report.selections += 1
                continue
            per_coder: dict[str, list[tuple]] = {}
            for r in rows:
                per_coder.setdefault(r[1], []).append(r)
            for coder, crows in per_coder.items():
                written.update((start, end, coder, r[2]) for r in crows)
                sel = SubElement(src, _q("PlainTextSelection"), {
                    "guid": guid("selection", seg_id, coder), "name": seg_id, "startPosition": str(start),
                    "endPosition": str(end), "creatingUser": user_guid[coder]})
                report.selections += 1
                for _, _, code, conf, rationale, evidence, run_id in crows:
                    cg = guid("coding", seg_id, coder, code)
                    coding = SubElement(sel, _q("Coding"), {"guid": cg, "creatingUser": user_guid[coder]})
                    SubElement(coding, _q("CodeRef"), {"targetGUID": code_guid.get(code, guid("code", code))})
                    report.codings += 1
                    if known.get(coder) == "model" and (rationale or conf is not None or evidence):
                        m = runs.get(run_id, {})
                        meta = {"note": CODING_NOTE, "rationale": rationale, "confidence": conf, "evidence": evidence,
                                "model": m.get("provider", {}).get("model"), "template": m.get("template", {}).get("name"),
                                "template_version": m.get("template", {}).get("version"), "run": run_id}
                        note = guid("coding-note", seg_id, coder, code)
                        notes.append((note, f"{coder}: {code}", coding_note(coder, meta)))
                        SubElement(coding, _q("NoteRef"), {"targetGUID": note})
        _span_selections(db, src, doc_id, chosen, written, user_guid, code_guid, report)
    if notes:
        notes_el = SubElement(root, _q("Notes"))
        for g, name, body in notes:
            n = SubElement(notes_el, _q("Note"), {"guid": g, "name": name})
            SubElement(n, _q("PlainTextContent")).text = body
    SubElement(root, _q("Description")).text = (
        f"Exported by assistcode {__version__} on {stamp}. Coders: " + ", ".join(f"{c} ({known[c]})" for c in chosen)
        + ". Model codings carry their rationale, confidence, model and prompt template as Notes.")
    xml = b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode").encode("utf-8")
    errors = problems(xml, "project")
    if errors:  # a bug of ours, never the user's: say so loudly, write nothing
        raise AssertionError("the .qdpx assistcode built is not valid QDA-XML: " + "; ".join(errors[:5]))
    with atomic_path(output) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("project.qde", xml)
            for name, data in files:
                z.writestr(name, data)
    return report


def _span_selections(db: Any, src: Element, doc_id: str, coders: Sequence[str], written: set[tuple[int, int, str, str]],
                     user_guid: dict[str, str], code_guid: dict[str, str], report: QdpxExport) -> None:
    """The span codings of ``coders`` on a document (not runs' quotes: those travel as Notes) as selections, except
    those a segment's selection already carries."""
    marks = ",".join("?" * len(coders))
    by_range: dict[tuple[int, int, str], list[str]] = {}
    for start, end, coder, code in db.execute(
            f'SELECT start, "end", coder, code FROM span_codings WHERE document_id = ? AND run_id IS NULL '
            f'AND coder IN ({marks}) ORDER BY start, "end", coder, code', (doc_id, *coders)):
        if (start, end, coder, code) not in written:
            by_range.setdefault((start, end, coder), []).append(code)
    for (start, end, coder), codes in by_range.items():
        sel = SubElement(src, _q("PlainTextSelection"), {
            "guid": guid("span", doc_id, coder, str(start), str(end)), "name": f"{doc_id}:{start}-{end}",
            "startPosition": str(start), "endPosition": str(end), "creatingUser": user_guid[coder]})
        report.selections += 1
        for code in codes:
            coding = SubElement(sel, _q("Coding"), {"guid": guid("span-coding", doc_id, coder, str(start), str(end), code),
                                                    "creatingUser": user_guid[coder]})
            SubElement(coding, _q("CodeRef"), {"targetGUID": code_guid.get(code, guid("code", code))})
            report.codings += 1


def tree_order(codebook: Codebook) -> list[Code]:
    """Parents before children (a codebook may list a child first)."""
    out: list[Code] = []

    def walk(parent: str | None) -> None:
        for c in codebook.children(parent):
            out.append(c)
            walk(c.id)

    walk(None)
    return out


def project_xml(path: str | Path) -> bytes:
    """The ``project.qde`` of a ``.qdpx`` (for validation in tests and by hand)."""
    with SafeArchive(path) as z:
        name = next(n for n in z.names if n.lower().endswith(".qde"))
        return z.read(name)
