"""REFI-QDA codebooks (``.qdc``): a ``CodeBook`` XML document, read as hostile and written validated."""
from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element, SubElement, tostring

from ..errors import InputError
from ..exports import atomic_write
from ..model import Codebook
from .qde import CODEBOOK_NS, Reader, local, parse_codebook, parse_xml
from .validate import problems

MAX_BYTES = 64 * 1024 * 1024


def read_qdc(path: str | Path) -> tuple[Codebook, list[str]]:
    """The codebook of a ``.qdc`` (ids from the code names; REFI codes carry no ids), and the warnings."""
    from .qdpx import codebook_from_refi

    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(f"{size:,} bytes: over the {MAX_BYTES:,} byte limit for a codebook", path=path)
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from exc
    root = parse_xml(data, path)
    if local(root.tag) != "CodeBook":
        raise InputError(f"the root element is {local(root.tag)!r}, not CodeBook", path=path)
    reader = Reader(path)
    if not root.tag.startswith("{" + CODEBOOK_NS):
        reader.warn(f"the codebook is not in the namespace {CODEBOOK_NS}: read by element names")
    codes = parse_codebook(root, reader)
    codebook, _ = codebook_from_refi(codes, root.get("origin") or path.stem)
    return codebook, reader.warnings


def write_qdc(codebook: Codebook, path: str | Path) -> Path:
    """Write ``codebook`` as a ``.qdc`` (hierarchy, definitions as Description, colours), validated, atomically."""
    from .qdpx import tree_order, guid, RGB

    def q(tag: str) -> str:
        return tag  # the namespace is declared once, as xmlns on the root

    root = Element(q("CodeBook"), {"xmlns": CODEBOOK_NS, "origin": codebook.name or "assistcode"})
    elements: dict[str | None, Element] = {None: SubElement(root, q("Codes"))}
    for c in tree_order(codebook):
        attrs = {"guid": guid("code", c.id), "name": c.name, "isCodable": "true"}
        if c.color and RGB.match(c.color):
            attrs["color"] = c.color
        el = SubElement(elements[c.parent], q("Code"), attrs)
        text = "\n\n".join(x for x in (c.definition, f"Include: {c.include}" if c.include else "",
                                         f"Exclude: {c.exclude}" if c.exclude else "") if x)
        if text:
            SubElement(el, q("Description")).text = text
        elements[c.id] = el
    xml = b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode").encode("utf-8")
    errors = problems(xml, "codebook")
    if errors:
        raise AssertionError("the .qdc assistcode built is not valid QDA-XML: " + "; ".join(errors[:5]))
    with atomic_write(path, "wb") as fh:
        fh.write(xml)
    return Path(path)
