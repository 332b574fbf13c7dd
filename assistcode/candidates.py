"""Candidate codes from inductive runs: list them, group near-duplicates, and merge a group into a new codebook
version on the researcher's say."""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from typing import Any, Sequence

from .errors import InputError
from .model import Code, Codebook
from .store.db import transaction

_STOP = {"the", "a", "an", "of", "and", "or", "to", "in", "for", "on", "with", "as", "by", "at"}


@dataclass
class Candidate:
    id: int
    run_id: int
    segment_id: str
    name: str
    definition: str
    evidence: str
    confidence: float | None
    status: str


def list_candidates(db: sqlite3.Connection, status: str | None = "new") -> list[Candidate]:
    sql = "SELECT id, run_id, segment_id, name, definition, evidence, confidence, status FROM candidates"
    rows = db.execute(sql + (" WHERE status = ?" if status else "") + " ORDER BY id", (status,) if status else ())
    return [Candidate(*r) for r in rows]


def _tokens(name: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", name.lower()) if w not in _STOP}


def similarity(a: str, b: str) -> float:
    """The larger of word-set overlap (Jaccard) and character similarity of the names."""
    ta, tb = _tokens(a), _tokens(b)
    jaccard = len(ta & tb) / len(ta | tb) if ta | tb else 0.0
    return max(jaccard, SequenceMatcher(None, a.lower(), b.lower()).ratio())


def group_candidates(candidates: Sequence[Candidate], threshold: float = 0.6) -> list[list[Candidate]]:
    """Single-linkage groups of candidates whose names are at least ``threshold`` similar; largest groups first."""
    parent = list(range(len(candidates)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(candidates)):
        for j in range(i + 1, len(candidates)):
            if similarity(candidates[i].name, candidates[j].name) >= threshold:
                parent[find(i)] = find(j)
    groups: dict[int, list[Candidate]] = {}
    for i, c in enumerate(candidates):
        groups.setdefault(find(i), []).append(c)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0].id))


def slug(name: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", name.lower()))[:60] or "code"


def merge_candidates(project: Any, ids: Sequence[int], name: str | None = None, definition: str | None = None,
                     parent: str | None = None) -> tuple[Codebook, Code]:
    """Add one code made from the chosen candidates to the current codebook, as a new version (earlier versions
    stay), and mark the candidates merged."""
    chosen = [c for c in list_candidates(project.db, None) if c.id in set(ids)]
    if len(chosen) != len(set(ids)):
        missing = sorted(set(ids) - {c.id for c in chosen})
        raise InputError(f"no candidate with id {missing[0]}", hint="see `assistcode codebook candidates`")
    current = project.codebook()
    name = name or chosen[0].name
    code_id = slug(name)
    if code_id in current:
        raise InputError(f"the codebook already has a code {code_id!r}", hint="choose another --as NAME")
    if parent is not None and parent not in current:
        raise InputError(f"no code {parent!r} to be the parent", field="--parent")
    examples = tuple(dict.fromkeys(c.evidence for c in chosen if c.evidence))[:5]
    code = Code(code_id, name, definition or chosen[0].definition, examples=examples, parent=parent)
    codebook = replace(current, codes=current.codes + (code,))
    with transaction(project.db):
        project.import_codebook(codebook)
        project.db.executemany("UPDATE candidates SET status = 'merged', merged_into = ? WHERE id = ?",
                               [(code_id, c.id) for c in chosen])
    return codebook, code


def reject_candidates(db: sqlite3.Connection, ids: Sequence[int]) -> int:
    with transaction(db):
        return db.executemany("UPDATE candidates SET status = 'rejected' WHERE id = ?", [(i,) for i in ids]).rowcount
