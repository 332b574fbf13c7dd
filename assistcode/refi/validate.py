"""Validation against the REFI-QDA schemas shipped with the package (QDA-XML 1.0)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).resolve().parent / "schemas"


@lru_cache(maxsize=2)
def schema(kind: str) -> Any:
    import xmlschema

    return xmlschema.XMLSchema(str(SCHEMAS / ("Project.xsd" if kind == "project" else "Codebook.xsd")))


def problems(xml: bytes | str, kind: str) -> list[str]:
    """Every schema violation in ``xml`` (``kind``: project or codebook), as readable lines; empty when valid."""
    from defusedxml.ElementTree import fromstring

    root = fromstring(xml, forbid_dtd=True)
    return [f"{e.path}: {e.reason}" for e in schema(kind).iter_errors(root)]
