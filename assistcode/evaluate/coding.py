"""The data every comparison starts from: which code set each coder gave each unit (``None``: never saw it)."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..gold import GoldTable
from ..model import Codebook


@dataclass(frozen=True)
class CodingData:
    """Coders x units code sets. A unit a coder saw and left uncoded holds the empty set."""

    units: tuple[str, ...]
    coders: tuple[str, ...]
    sets: tuple[tuple[frozenset | None, ...], ...]
    kinds: dict[str, str] = field(default_factory=dict)
    """coder -> human | model | reviewer."""
    clusters: tuple[str, ...] | None = None
    """Each unit's document, for a bootstrap clustered by document."""
    unit_meta: pd.DataFrame | None = None
    """Per unit metadata (document metadata), indexed like ``units``."""
    codes: tuple[str, ...] = ()
    """All codes, in codebook order where there is one."""

    def __post_init__(self) -> None:
        if not self.codes:
            seen = sorted({c for row in self.sets for s in row if s for c in s})
            object.__setattr__(self, "codes", tuple(seen))

    def kind(self, coder: str) -> str:
        return self.kinds.get(coder, "human")

    @property
    def humans(self) -> list[str]:
        return [c for c in self.coders if self.kind(c) == "human"]

    @property
    def models(self) -> list[str]:
        return [c for c in self.coders if self.kind(c) == "model"]

    def row(self, coder: str) -> tuple[frozenset | None, ...]:
        try:
            return self.sets[self.coders.index(coder)]
        except ValueError:
            raise InputError(f"no coder named {coder!r}", hint="coders: " + ", ".join(self.coders)) from None

    def subset(self, coders: Sequence[str]) -> "CodingData":
        return replace(self, coders=tuple(coders), sets=tuple(self.row(c) for c in coders))

    def coverage(self, coder: str) -> float:
        row = self.row(coder)
        return sum(s is not None for s in row) / len(row) if row else 0.0

    def set_matrix(self, coders: Sequence[str] | None = None) -> list[list[frozenset | None]]:
        return [list(self.row(c)) for c in (coders or self.coders)]

    def binary(self, code: str, coders: Sequence[str] | None = None) -> np.ndarray:
        """coders x units: 1 applied, 0 seen and not applied, NaN never seen."""
        return np.array([self._indicators(c).get(code, self._seen(c)) for c in (coders or self.coders)])

    def cluster_ids(self) -> np.ndarray | None:
        """Each unit's document as a number, in the sorted order of the documents' ids (the same groups, in the same
        order, as the ids themselves: a bootstrap draws the same documents), computed once, not per coefficient."""
        if self.clusters is None:
            return None
        if "_cluster_ids" not in self.__dict__:
            self.__dict__["_cluster_ids"] = np.unique(np.asarray(self.clusters), return_inverse=True)[1].ravel()
        return self.__dict__["_cluster_ids"]

    def _seen(self, coder: str) -> np.ndarray:
        """0 where the coder saw a unit, NaN where not (a code the coder never applied)."""
        return self._indicators(coder)[None]  # type: ignore[index]

    def _indicators(self, coder: str) -> dict[str | None, np.ndarray]:
        """Per code the coder applied, its row of :meth:`binary` (built once per coder: 30 codes x 100,000 units
        no longer walk the sets 60 times); under ``None`` the row of a code never applied."""
        cache = self.__dict__.setdefault("_binary_rows", {})
        if coder not in cache:
            row = self.row(coder)
            seen = np.array([0.0 if s is not None else np.nan for s in row])
            applied: dict[str, list[int]] = {}
            for u, s in enumerate(row):
                if s:
                    for c in s:
                        applied.setdefault(c, []).append(u)
            rows: dict[str | None, np.ndarray] = {None: seen}
            for c, units in applied.items():
                rows[c] = seen.copy()
                rows[c][units] = 1.0
            cache[coder] = rows
        return cache[coder]

    def single_label(self, coders: Sequence[str] | None = None) -> list[list[str | None]] | None:
        """The code of each unit where every coder applied at most one code (empty -> "(none)"); else ``None``."""
        out = []
        for c in coders or self.coders:
            row = []
            for s in self.row(c):
                if s is None:
                    row.append(None)
                elif len(s) > 1:
                    return None
                else:
                    row.append(next(iter(s)) if s else "(none)")
            out.append(row)
        return out

    def with_consensus(self, name: str = "consensus", coders: Sequence[str] | None = None) -> "CodingData":
        """Add a coder holding, per unit, the codes a strict majority of ``coders`` (default: the humans) applied,
        among those who saw the unit (ties: not applied). Units nobody saw stay missing."""
        members = list(coders or self.humans)
        rows = [self.row(c) for c in members]
        consensus: list[frozenset | None] = []
        decided: dict[tuple[frozenset | None, ...], frozenset | None] = {}  # the same codes -> the same majority
        for cells in zip(*rows):
            if cells in decided:
                consensus.append(decided[cells])
                continue
            seen = [s for s in cells if s is not None]
            majority: frozenset | None = None
            if seen:
                counts: dict[str, int] = {}
                for s in seen:
                    for code in s:
                        counts[code] = counts.get(code, 0) + 1
                majority = frozenset(c for c, n in counts.items() if 2 * n > len(seen))
            decided[cells] = majority
            consensus.append(majority)
        if not members:
            consensus = [None] * len(self.units)
        return replace(self, coders=self.coders + (name,), sets=self.sets + (tuple(consensus),),
                       kinds={**self.kinds, name: "consensus"})

    def map_codes(self, mapping: Callable[[str], str], codes: Sequence[str] | None = None) -> "CodingData":
        sets = tuple(tuple(None if s is None else frozenset(mapping(c) for c in s) for s in row) for row in self.sets)
        new_codes = tuple(dict.fromkeys(codes if codes is not None else (mapping(c) for c in self.codes)))
        return replace(self, sets=sets, codes=new_codes)

    def rollup(self, depth: int, codebook: Codebook | None = None, separator: str = "->") -> "CodingData":
        """Map each code to its ancestor at ``depth`` (1 = top level): through the codebook's parents, or, with no
        codebook, through codes written ``parent->child``."""
        if depth < 1:
            raise InputError(f"roll-up depth {depth}: must be 1 or more", field="--rollup")
        if codebook is not None:
            def up(code: str) -> str:
                return codebook.rollup(code, depth) if code in codebook else code
        else:
            def up(code: str) -> str:
                return separator.join(code.split(separator)[:depth])
        return self.map_codes(up)

    def restrict(self, mask: np.ndarray) -> "CodingData":
        idx = np.flatnonzero(mask)
        meta = self.unit_meta.iloc[idx].reset_index(drop=True) if self.unit_meta is not None else None
        return replace(self, units=tuple(self.units[i] for i in idx),
                       sets=tuple(tuple(row[i] for i in idx) for row in self.sets),
                       clusters=tuple(self.clusters[i] for i in idx) if self.clusters else None, unit_meta=meta)


def from_table(table: GoldTable, models: Sequence[str] = ()) -> CodingData:
    """From a parsed file of codes (``assistcode agree``). With no record of what each coder saw, a coder saw
    the units they have rows for: there are no documents to assume more from."""
    sets = table.code_sets()
    if not table.explicit_seen:
        table.notes = [n for n in table.notes if "taken to have seen" not in n] + [
            f"{Path(table.source).name}: no row records a unit seen and left uncoded, so a coder counts as having "
            "rated only the units they have rows for (add rows with an empty code to record 'seen, no code')"]
    units = tuple(table.units)
    coders = tuple(table.coders)
    return CodingData(units, coders, tuple(tuple(sets[c].get(u) for u in units) for c in coders),
                      kinds={c: ("model" if c in models else "human") for c in coders})


def from_store(db: sqlite3.Connection, coders: Sequence[str] | None = None, codebook: Codebook | None = None) -> CodingData:
    """From a project: every unit any chosen coder saw, in document order."""
    known = {r[0]: r[1] for r in db.execute("SELECT name, kind FROM coders")}
    chosen = list(coders) if coders else list(known)
    for c in chosen:
        if c not in known:
            raise InputError(f"no coder named {c!r} in this project", hint="coders: " + ", ".join(known))
    marks = ",".join("?" * len(chosen))
    seen = db.execute(
        f"SELECT s.segment_id, s.coder, g.document_id, g.position FROM seen s JOIN segments g ON g.id = s.segment_id "
        f"WHERE s.coder IN ({marks}) ORDER BY g.rowid", chosen
    ).fetchall()
    applied: dict[str, dict[str, set[str]]] = {c: {} for c in chosen}
    for seg, coder, code in db.execute(f"SELECT segment_id, coder, code FROM annotations WHERE coder IN ({marks})", chosen):
        applied[coder].setdefault(seg, set()).add(code)
    # a run's few-shot examples are never scored: the model was shown their answer
    shown_answer = set()
    for coder, manifest in db.execute(f"SELECT coder, manifest FROM runs WHERE coder IN ({marks})", chosen):
        for seg in json.loads(manifest).get("examples", {}).get("segments", []):
            shown_answer.add((seg, coder))
    units: dict[str, str] = {}
    saw: dict[str, set[str]] = {c: set() for c in chosen}
    for seg, coder, doc, _ in seen:
        if not shown_answer or (seg, coder) not in shown_answer:
            units.setdefault(seg, doc)
            saw[coder].add(seg)
    unit_ids = tuple(units)
    distinct: dict[frozenset, frozenset] = {}  # one object per distinct code set (hashed once, compared by identity)

    def code_set(codes: set[str] | None) -> frozenset:
        s = frozenset(codes or ())
        return distinct.setdefault(s, s)

    sets = tuple(
        tuple(code_set(applied[c].get(u)) if u in saw[c] else None for u in unit_ids) for c in chosen
    )
    docs = {d: json.loads(m) for d, m in db.execute("SELECT id, metadata FROM documents")}
    meta = pd.DataFrame([docs.get(units[u], {}) for u in unit_ids])
    codes = tuple(c.id for c in codebook.codes) if codebook is not None else ()
    return CodingData(unit_ids, tuple(chosen), sets, kinds={c: known[c] for c in chosen},
                      clusters=tuple(units[u] for u in unit_ids), unit_meta=meta, codes=codes)
