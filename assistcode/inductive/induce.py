"""Open codes grouped into a candidate codebook, as a researcher groups them in constant comparison.

Each group keeps its member proposals. With the ``similarity`` extra, proposals are grouped by the meaning of their
names and definitions (MiniLM embeddings, average-linkage clustering cut at a cosine distance); without it, by the
words of their names. The code a group becomes takes the name and definition of its most central member (the most
frequent name where one recurs).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..candidates import Candidate, group_candidates, slug
from .codeset import normalise_code

_EMBEDDER: Any = None
DISTANCE = 0.2
"""Default cut of the clustering: cosine distance between group members' embeddings (average linkage)."""


@dataclass
class InducedCode:
    id: str
    name: str
    definition: str
    members: list[Any]
    """The proposals (candidates) the code gathers."""
    segments: set[str] = field(default_factory=set)
    examples: tuple[str, ...] = ()


def embedder_or_none(use: bool | None = None) -> Any:
    """The MiniLM embedder where the ``similarity`` extra is installed (``use=None``: if available), else None."""
    if use is False:
        return None
    global _EMBEDDER
    if _EMBEDDER is None:  # loaded once per process: induce and compare in one command share it
        try:
            from ..similarity import Embedder

            emb = Embedder()
            emb.embed(["probe"])
            _EMBEDDER = emb
        except Exception:  # noqa: BLE001 - any failure to load means: no embeddings
            if use:
                raise
            return None
    return _EMBEDDER


def cluster(vectors: np.ndarray, distance: float) -> np.ndarray:
    """Average-linkage clusters of L2-normalised vectors cut at a cosine distance: a label per row."""
    if len(vectors) == 1:
        return np.zeros(1, dtype=int)
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(vectors, method="average", metric="cosine")
    return fcluster(tree, t=distance, criterion="distance") - 1


def _name_for(members: Sequence[Candidate], vectors: np.ndarray | None) -> Candidate:
    counts = Counter(normalise_code(c.name) for c in members)
    top, n = counts.most_common(1)[0]
    if n > 1 or vectors is None:
        return next(c for c in members if normalise_code(c.name) == top)
    centre = vectors.mean(axis=0)
    return members[int(np.argmax(vectors @ centre))]


def induce_codebook(candidates: Sequence[Candidate], *, distance: float = DISTANCE, embeddings: bool | None = None,
                    name_threshold: float = 0.6) -> list[InducedCode]:
    """Group inductive proposals into codes, the largest groups first; ids are slugs of the names, made unique."""
    if not candidates:
        return []
    embedder = embedder_or_none(embeddings)
    groups: list[list[Candidate]]
    vectors: np.ndarray | None = None
    if embedder is not None:
        vectors = embedder.embed([f"{c.name}: {c.definition}" if c.definition else c.name for c in candidates])
        labels = cluster(vectors, distance)
        by_label: dict[int, list[int]] = {}
        for i, label in enumerate(labels):
            by_label.setdefault(int(label), []).append(i)
        index_groups = sorted(by_label.values(), key=lambda g: (-len(g), g[0]))
        groups = [[candidates[i] for i in g] for g in index_groups]
        vec_groups: list[np.ndarray | None] = [vectors[g] for g in index_groups]
    else:
        groups = group_candidates(candidates, name_threshold)
        vec_groups = [None] * len(groups)
    out: list[InducedCode] = []
    used: Counter[str] = Counter()
    for members, vecs in zip(groups, vec_groups):
        head = _name_for(members, vecs)
        base = slug(head.name)
        used[base] += 1
        code_id = base if used[base] == 1 else f"{base}-{used[base]}"
        examples = tuple(dict.fromkeys(c.evidence for c in members if c.evidence))[:5]
        out.append(InducedCode(code_id, head.name.strip(), head.definition.strip(), list(members),
                               {c.segment_id for c in members}, examples))
    return out


_WORD = re.compile(r"[^\W\d_]{3,}")


def induce_from_texts(texts: Sequence[tuple[str, str]], *, distance: float = 0.5, min_size: int = 3,
                      stopwords: frozenset[str] = frozenset()) -> list[InducedCode]:
    """The embedding floor of inductive coding: sentences of the units (unit key, text) clustered by meaning, each
    cluster named by its most distinctive words (counted in the cluster against the whole); no model."""
    from ..similarity import STOPWORDS, Embedder

    pieces = [(unit, s.strip()) for unit, text in texts for s in re.split(r"(?<=[.!?;])\s+", text) if len(s.split()) >= 3]
    if not pieces:
        return []
    vectors = Embedder().embed([p for _, p in pieces])
    labels = cluster(vectors, distance)
    stop = STOPWORDS | stopwords
    words_all: Counter[str] = Counter(w for _, p in pieces for w in set(_WORD.findall(p.lower())) if w not in stop)
    total = len(pieces)
    out: list[InducedCode] = []
    for label in sorted(set(labels.tolist()), key=lambda lab: -int((labels == lab).sum())):
        idx = np.flatnonzero(labels == label)
        if len(idx) < min_size:
            continue
        words: Counter[str] = Counter(w for i in idx for w in set(_WORD.findall(pieces[i][1].lower())) if w not in stop)
        # distinctive: frequent in the cluster, rarer outside it (a smoothed ratio of shares)
        score = {w: (n / len(idx)) * np.log((1 + total) / (1 + words_all[w])) for w, n in words.items() if n >= 2}
        top = [w for w, _ in sorted(score.items(), key=lambda kv: -kv[1])[:2]]
        if not top:
            continue
        name = " ".join(top)
        members = [pieces[i][1] for i in idx]
        code = InducedCode(slug(name), name, "", members, {pieces[i][0] for i in idx}, tuple(members[:3]))
        out.append(code)
    seen: Counter[str] = Counter()
    for c in out:
        seen[c.id] += 1
        if seen[c.id] > 1:
            c.id = f"{c.id}-{seen[c.id]}"
    return out
