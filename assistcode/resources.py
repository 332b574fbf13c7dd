"""Where the shipped prompt templates and gold standards are: package data when installed from a wheel, the
repository's top-level folders in a development checkout."""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """``prompts`` or ``gold_standard``."""
    shipped = _PACKAGE / "_data" / name
    if shipped.is_dir():
        return shipped
    return _PACKAGE.parent / name
