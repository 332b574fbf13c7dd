"""Iterative constant comparison: an inductive run's proposals grouped into a codebook, then the same segments
coded again with the growing codebook (``inductive-constant``: apply the codes that fit, by name, and propose new
ones), round after round, as researchers re-read their data with the codes they have so far.

Round 1 groups the run's proposals (``induce_codebook``). Round k > 1 codes the run's segments with round k-1's
codebook (the codes gathering ``carry_min`` proposals or more); a proposal named exactly as a code (case, spaces
and edge punctuation aside) applies that code, the others are grouped into new codes. A code not applied in a round
stays in the codebook (the codebook grows; it does not forget) with no segments in that round. The codes' segments
are those of the last round.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..errors import InputError
from .codeset import normalise_code
from .induce import DISTANCE, InducedCode, induce_codebook

TEMPLATE = "inductive-constant"


@dataclass
class Round:
    number: int
    run_id: int
    proposals: int
    applied: int
    """Proposals that applied a code of the codebook by its name."""
    new_codes: int
    codes: int
    """Codes in the codebook after the round."""
    naming: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"round": self.number, "run": self.run_id, "proposals": self.proposals, "applied": self.applied,
                "new_codes": self.new_codes, "codes": self.codes, **({"naming": self.naming} if self.naming else {})}


@dataclass
class Rounds:
    codes: list[InducedCode]
    last_run: int
    """The run whose proposals the codes' segments come from."""
    rounds: list[Round] = field(default_factory=list)


def run_proposals(project: Any, run_id: int) -> list[Any]:
    from ..candidates import list_candidates

    return [c for c in list_candidates(project.db, None) if c.run_id == run_id]


def to_codebook(codes: Sequence[InducedCode], name: str) -> Any:
    from ..model import Code, Codebook

    return Codebook(name=name, codes=tuple(Code(c.id, c.name, c.definition, examples=c.examples) for c in codes))


def constant_comparison(project: Any, run_ref: str, rounds: int = 1, *, distance: float = DISTANCE,
                        embeddings: bool | None = None, namer: Any = None, carry_min: int = 1,
                        config: Any = None, provider: Any = None, segment_ids: Sequence[str] | None = None,
                        progress: Callable[[dict[str, Any]], None] | None = None) -> Rounds:
    """Induce a codebook from run ``run_ref`` over ``rounds`` rounds (see the module docstring). ``namer`` (a
    :class:`~assistcode.inductive.naming.Namer`) writes each new group's name and definition; ``config`` (a
    ``RunConfig``) is how later rounds are coded (default: the run's provider and model); ``provider`` an instance
    to code them with (tests); ``segment_ids`` limits later rounds to these of the run's segments (a sample)."""
    from ..runs.engine import RunConfig, code_project
    from ..runs.store import get_run

    if rounds < 1:
        raise InputError(f"must be 1 or more, not {rounds}", field="--rounds")
    run = get_run(project.db, run_ref)
    found = run_proposals(project, run.id)
    if not found:
        raise InputError(f"run {run.id} ({run.coder}) proposed no codes",
                         hint="run an inductive template first: assistcode code --template inductive ...")
    codes = induce_codebook(found, distance=distance, embeddings=embeddings)
    naming = namer.name(codes).as_dict() if namer is not None else None
    result = Rounds(codes, run.id, [Round(1, run.id, len(found), 0, len(codes), len(codes), naming)])
    if rounds == 1:
        return result
    coded_ok = {r[0] for r in project.db.execute(
        "SELECT segment_id FROM run_segments WHERE run_id = ? AND status = 'ok'", (run.id,))}
    if segment_ids is not None:
        unknown = set(segment_ids) - coded_ok
        if unknown:
            raise InputError(f"{len(unknown)} segments not coded by run {run.id}, e.g. {sorted(unknown)[0]!r}")
        coded_ok = set(segment_ids)
    segment_ids = sorted(coded_ok)
    if config is None:
        described = run.manifest.get("provider") or {}
        params = run.manifest.get("parameters") or {}
        config = RunConfig(provider=described.get("provider") or "mock", model=described.get("model") or "mock",
                           max_tokens=params.get("max_tokens") or 1024, concurrency=params.get("concurrency") or 1)
    config.template = TEMPLATE
    for number in range(2, rounds + 1):
        carried = [c for c in codes if len(c.members) >= carry_min] or codes
        codebook = to_codebook(carried, f"induced from run {run.id}, round {number - 1}")
        if progress:
            progress({"phase": "round", "round": number, "codes": len(carried)})
        coded = code_project(project, config, codebook=codebook, segment_ids=segment_ids, progress=progress,
                             provider=provider)
        if coded.run is None:
            raise InputError(f"round {number} made no run")
        proposals = run_proposals(project, coded.run.id)
        by_name: dict[str, InducedCode] = {}
        for c in carried:
            by_name.setdefault(normalise_code(c.name), c)
            by_name.setdefault(normalise_code(c.id.replace("-", " ")), c)
        applied: dict[str, list[Any]] = {c.id: [] for c in carried}
        fresh = []
        for p in proposals:
            code = by_name.get(normalise_code(p.name))
            if code is not None:
                applied[code.id].append(p)
            else:
                fresh.append(p)
        kept = [InducedCode(c.id, c.name, c.definition, applied.get(c.id, []),
                            {p.segment_id for p in applied.get(c.id, [])}, c.examples) for c in codes]
        new = induce_codebook(fresh, distance=distance, embeddings=embeddings) if fresh else []
        naming = None
        if namer is not None and new:
            naming = namer.name(new, taken=[c.id for c in kept]).as_dict()
        else:
            from .naming import unique_ids

            taken = {c.id for c in kept}
            for c in new:  # induce_codebook's ids are unique among the new codes only
                if c.id in taken:
                    unique_ids([c], sorted(taken))
                taken.add(c.id)
        codes = kept + new
        result = Rounds(codes, coded.run.id, [*result.rounds, Round(number, coded.run.id, len(proposals),
                                                                  len(proposals) - len(fresh), len(new), len(codes),
                                                                  naming)])
    return result
