"""The nouns of assistcode (see DESIGN.md): plain dataclasses over plain data.

Pydantic validates what comes in from files at the edges (:mod:`assistcode.codebook`); inside, these are the types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator

from .ids import document_id, hash_json, sha256_text

REVIEWED = "reviewed"
"""The coder whose codes are the settled review decisions (assistcode review): one name, used everywhere."""

@dataclass(frozen=True)
class Document:
    """A whole source text. ``text`` is what offsets count in: Unicode code points, newlines normalised to LF."""

    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    encoding: str = "utf-8"
    key: str = ""
    """What tells apart documents of equal text: a row's id (or row number) in a table; empty for a file."""

    @cached_property
    def text_hash(self) -> str:
        return sha256_text(self.text)

    @cached_property
    def identity(self) -> str:
        """The hash that ids derive from: the text's sha256, joined with ``key`` where there is one."""
        return self.text_hash if not self.key else sha256_text(self.text_hash + "\x1f" + self.key)

    @property
    def id(self) -> str:
        return document_id(self.identity)


@dataclass(frozen=True)
class Segment:
    """The unit of analysis. Invariant: ``document.text[start:end] == text``."""

    id: str
    document_id: str
    position: int
    start: int
    end: int
    text: str
    speaker: str | None = None
    start_time: float | None = None
    """Seconds into the recording where the turn starts, where the transcript says."""
    role: str | None = None
    """``interviewer`` or ``participant`` for interview turns; ``None`` for survey rows and unlabelled text."""


@dataclass(frozen=True)
class Code:
    """One code of a codebook. ``parent`` names another code's id (themes and sub-codes)."""

    id: str
    name: str
    definition: str = ""
    include: str = ""
    exclude: str = ""
    examples: tuple[str, ...] = ()
    parent: str | None = None
    color: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "definition": self.definition,
            "include": self.include,
            "exclude": self.exclude,
            "examples": list(self.examples),
            "parent": self.parent,
            "color": self.color,
        }


@dataclass(frozen=True)
class Codebook:
    """An ordered set of codes, validated (unique ids, known parents, no cycles). Content-hashed."""

    name: str
    codes: tuple[Code, ...]
    description: str = ""
    exclusive: bool = False
    """The codes are mutually exclusive: at most one per unit (``exclusive: true`` in the codebook file)."""

    @cached_property
    def hash(self) -> str:
        """sha256 over the codes' content (and ``exclusive`` where set): any change of wording is a new version."""
        body: dict[str, Any] = {"codes": [c.as_dict() for c in self.codes]}
        if self.exclusive:  # only when set, so the hashes of existing codebooks stay as they were
            body["exclusive"] = True
        return hash_json(body)

    @cached_property
    def by_id(self) -> dict[str, Code]:
        return {c.id: c for c in self.codes}

    def __contains__(self, code_id: object) -> bool:
        return code_id in self.by_id

    def __iter__(self) -> Iterator[Code]:
        return iter(self.codes)

    def __len__(self) -> int:
        return len(self.codes)

    def ancestors(self, code_id: str) -> list[str]:
        """The chain from ``code_id`` up to its root, ``code_id`` first."""
        chain = [code_id]
        while (parent := self.by_id[chain[-1]].parent) is not None:
            chain.append(parent)
        return chain

    def depth(self, code_id: str) -> int:
        """1 for a top-level code, 2 for its children, and so on."""
        return len(self.ancestors(code_id))

    def rollup(self, code_id: str, depth: int = 1) -> str:
        """The ancestor of ``code_id`` at ``depth`` (1 = top level); the code itself if it is shallower."""
        chain = self.ancestors(code_id)
        return chain[max(len(chain) - depth, 0)]

    def children(self, code_id: str | None) -> list[Code]:
        return [c for c in self.codes if c.parent == code_id]

