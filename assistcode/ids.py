"""Content hashes and stable identifiers.

Ids derive from content, never from file paths or clocks, so the same input gives the same ids on any machine.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any


def sha256_text(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace: the input to every structural hash."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def hash_json(value: Any) -> str:
    """Hex sha256 of the canonical JSON of ``value``."""
    return sha256_text(canonical_json(value))


def document_id(text_hash: str) -> str:
    """A document's id: ``d`` plus the first 16 hex digits of its text's sha256."""
    return "d" + text_hash[:16]


def segment_id(text_hash: str, start: int, end: int) -> str:
    """A segment's id from its document's text hash and its code-point offsets.

    blake2b is used for speed: an import of a million segments computes a million of these.
    """
    digest = hashlib.blake2b(f"{text_hash}:{start}:{end}".encode("ascii"), digest_size=8).hexdigest()
    return "s" + digest
