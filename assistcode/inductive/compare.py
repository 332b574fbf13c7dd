"""Two codebooks set against each other: codes matched one-to-one, coverage and precision, and the agreement of the
two codings once one is mapped onto the other.

Matching, in order: equal ids or names (normalised) match outright, then names equal but for a plural ("emotions",
"emotion"); the rest are matched by a Hungarian assignment
on the similarity of meaning (MiniLM embeddings of name and definition where the ``similarity`` extra is installed,
else the words and letters of the names), plus a bonus of at most ``UNIT_BONUS`` for the overlap (Jaccard) of the
units the codes were applied to, where both operands say (meaning stays first: two rare codes that share their one
unit do not match on that alone); a pair below the threshold stays unmatched. A code left unmatched that comes near a code of
the other side (above the threshold, but that code went to another) is listed apart as a near many-to-one match.
"""
from __future__ import annotations

import html
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..candidates import similarity as name_similarity
from ..review.team import wilson
from .codeset import CodeSet, normalise_code, singular
from .induce import embedder_or_none

THRESHOLD = {"embedding": 0.55, "names": 0.6}
"""Default similarity a pair needs to match, by how meaning is judged."""
UNIT_BONUS = 0.15
"""What a perfect overlap of units adds to a pair's similarity of meaning."""


@dataclass
class Match:
    reference: str
    other: str
    score: float
    how: str
    """exact | meaning | meaning+units"""
    reference_name: str = ""
    other_name: str = ""
    units_both: int | None = None
    units_reference_only: int | None = None
    units_other_only: int | None = None


@dataclass
class Comparison:
    reference: str
    other: str
    method: str
    threshold: float
    coverage: float
    precision: float
    matches: list[Match]
    unmatched: dict[str, list[dict[str, Any]]]
    near: list[dict[str, Any]]
    counts: dict[str, int]
    agreement: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    coverage_interval: tuple[float | None, float | None] = (None, None)
    """95% Wilson score interval of the coverage, the considered reference codes taken as a sample of the codes
    researchers use (so it shows how much one code more or less moves it)."""
    precision_interval: tuple[float | None, float | None] = (None, None)
    """The same for the precision, over the other side's codes."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _meaning(a: CodeSet, b: CodeSet, embeddings: bool | None) -> tuple[np.ndarray, str]:
    embedder = embedder_or_none(embeddings)
    if embedder is not None:
        va = embedder.embed([c.text for c in a.codes])
        vb = embedder.embed([c.text for c in b.codes])
        return np.clip(va @ vb.T, -1.0, 1.0), "embedding"
    sims = np.array([[name_similarity(x.name, y.name) for y in b.codes] for x in a.codes]).reshape(len(a.codes), len(b.codes))
    return sims, "names"


def _overlap(a: CodeSet, b: CodeSet, ua: dict[str, set[str]], ub: dict[str, set[str]]) -> np.ndarray | None:
    """Jaccard of the units each pair of codes was applied to (``ua``, ``ub``: their code_units()), over the units
    both operands cover; None where they share no unit."""
    if a.units is None or b.units is None:
        return None
    shared = set(a.units) & set(b.units)
    if not shared:
        return None
    out = np.zeros((len(a.codes), len(b.codes)))
    for i, x in enumerate(a.codes):
        sx = ua.get(x.id, set()) & shared
        for j, y in enumerate(b.codes):
            sy = ub.get(y.id, set()) & shared
            union = len(sx | sy)
            out[i, j] = len(sx & sy) / union if union else 0.0
    return out


def compare_codesets(reference: CodeSet, other: CodeSet, *, threshold: float | None = None,
                     embeddings: bool | None = None, min_units: int = 1, n_boot: int = 1000,
                     seed: int = 0) -> Comparison:
    """Match ``other``'s codes (e.g. a model's) to ``reference``'s (e.g. the researchers'); see the module docstring.

    Coverage is the share of the reference codes applied to at least ``min_units`` units (all codes where the
    reference says nothing of units) that found a match; precision the share of the other codes that did.
    """
    from scipy.optimize import linear_sum_assignment

    a, b = reference, other
    meaning, how = _meaning(a, b, embeddings)
    limit = THRESHOLD[how] if threshold is None else threshold
    ua, ub = a.code_units(), b.code_units()
    overlap = _overlap(a, b, ua, ub)
    score = meaning if overlap is None else np.minimum(meaning + UNIT_BONUS * overlap, 1.0)
    method = f"exact ids/names (or names equal but for a plural), then {'MiniLM embeddings' if how == 'embedding' else 'name similarity'}"
    method += f" plus {UNIT_BONUS:g} x unit overlap" if overlap is not None else ""
    matches: list[Match] = []
    taken_a: set[int] = set()
    taken_b: set[int] = set()
    for fold in (normalise_code, lambda t: singular(normalise_code(t))):  # equal first, then equal but for a plural
        keys_b: dict[str, int] = {}
        for j, y in enumerate(b.codes):
            if j not in taken_b:
                for k in (fold(y.id), fold(y.name)):
                    keys_b.setdefault(k, j)
        for i, x in enumerate(a.codes):
            if i in taken_a:
                continue
            for k in (fold(x.id), fold(x.name)):
                j = keys_b.get(k)
                if j is not None and j not in taken_b:
                    matches.append(Match(x.id, b.codes[j].id, 1.0, "exact"))
                    taken_a.add(i)
                    taken_b.add(j)
                    break
    rest_a = [i for i in range(len(a.codes)) if i not in taken_a]
    rest_b = [j for j in range(len(b.codes)) if j not in taken_b]
    if rest_a and rest_b:
        sub = score[np.ix_(rest_a, rest_b)]
        rows, cols = linear_sum_assignment(-sub)
        for r, c in zip(rows, cols):
            if sub[r, c] >= limit:
                i, j = rest_a[r], rest_b[c]
                matches.append(Match(a.codes[i].id, b.codes[j].id, round(float(sub[r, c]), 4),
                                     "meaning" if overlap is None else "meaning+units"))
                taken_a.add(i)
                taken_b.add(j)
    index_a = {x.id: i for i, x in enumerate(a.codes)}
    index_b = {y.id: j for j, y in enumerate(b.codes)}
    shared = set(a.units or {}) & set(b.units or {})
    for m in matches:
        m.reference_name, m.other_name = a.codes[index_a[m.reference]].name, b.codes[index_b[m.other]].name
        if shared:
            sx, sy = ua.get(m.reference, set()) & shared, ub.get(m.other, set()) & shared
            m.units_both, m.units_reference_only, m.units_other_only = len(sx & sy), len(sx - sy), len(sy - sx)
    matches.sort(key=lambda m: index_a[m.reference])
    partner_a = {index_a[m.reference]: m.other for m in matches}
    partner_b = {index_b[m.other]: m.reference for m in matches}
    near = []
    for i in range(len(a.codes)):
        if i not in taken_a and len(b.codes):
            j = int(np.argmax(score[i]))
            if score[i, j] >= limit:
                near.append({"side": "reference", "code": a.codes[i].id, "near": b.codes[j].id,
                             "score": round(float(score[i, j]), 4), "which_matched": partner_b.get(j)})
    for j in range(len(b.codes)):
        if j not in taken_b and len(a.codes):
            i = int(np.argmax(score[:, j]))
            if score[i, j] >= limit:
                near.append({"side": "other", "code": b.codes[j].id, "near": a.codes[i].id,
                             "score": round(float(score[i, j]), 4), "which_matched": partner_a.get(i)})
    considered = [i for i, x in enumerate(a.codes) if a.units is None or len(ua.get(x.id, ())) >= min_units]
    covered = sum(1 for i in considered if i in taken_a)

    def left(cs: CodeSet, taken: set[int], units: dict[str, set[str]]) -> list[dict[str, Any]]:
        return [{"id": c.id, "name": c.name, "units": len(units.get(c.id, ())) if cs.units is not None else None}
                for k, c in enumerate(cs.codes) if k not in taken]

    result = Comparison(
        reference=a.label, other=b.label, method=method, threshold=limit,
        coverage=covered / len(considered) if considered else float("nan"),
        precision=len(taken_b) / len(b.codes) if b.codes else float("nan"),
        matches=matches,
        coverage_interval=wilson(covered, len(considered))[1:],
        precision_interval=wilson(len(taken_b), len(b.codes))[1:],
        unmatched={"reference": left(a, taken_a, ua), "other": left(b, taken_b, ub)},
        near=near,
        counts={"reference_codes": len(a.codes), "other_codes": len(b.codes), "matched": len(matches),
                "reference_codes_considered": len(considered), "reference_codes_covered": covered,
                "units_shared": len(shared)},
        notes=[*a.notes, *b.notes],
    )
    if a.units is not None and min_units > 1:
        result.notes.append(f"coverage counts the {len(considered)} reference codes applied to {min_units} or more units")
    if shared:
        result.agreement = mapped_agreement(a, b, matches, sorted(shared), n_boot=n_boot, seed=seed)
    elif a.units is not None and b.units is not None:
        result.notes.append("the two operands share no unit (is the same text column imported?): no unit-level agreement")
    return result


def mapped_agreement(a: CodeSet, b: CodeSet, matches: list[Match], units: list[str], *, n_boot: int = 1000,
                     seed: int = 0) -> dict[str, Any]:
    """Krippendorff's alpha (MASI) of the two codings over their shared units, ``b``'s codes renamed to their
    matches in ``a``; unmatched codes stay apart (they can only disagree)."""
    from ..agreement import AgreementWarning
    from ..agreement.summary import estimate

    rename = {m.other: m.reference for m in matches}
    ref = [set(a.units[u]) for u in units]  # type: ignore[index]
    oth = [{rename.get(c, "other:" + c) for c in b.units[u]} for u in units]  # type: ignore[index]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AgreementWarning)
        est = estimate("krippendorff_alpha", [ref, oth], level="masi", n_boot=n_boot, seed=seed)
    return {"statistic": "krippendorff_alpha", "level": "masi", "value": est.value, "low": est.low, "high": est.high,
            "n_units": est.n_units, "ci_method": est.ci_method, "n_boot": est.n_boot}


def interval_text(ci: Any) -> str:
    """`` [lo, hi]`` of an interval (a pair, as a comparison or its JSON holds it), or nothing where there is none."""
    return f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci and ci[0] is not None and ci[1] is not None else ""


def render_text(c: Comparison) -> str:
    """The comparison as a terminal report."""
    lines = [f"Reference: {c.reference}", f"Other:     {c.other}", f"Matching:  {c.method} (threshold {c.threshold:g})",
             f"Coverage {c.coverage:.2f}{interval_text(c.coverage_interval)} ({c.counts['reference_codes_covered']} of "
             f"{c.counts['reference_codes_considered']} reference codes matched)   Precision {c.precision:.2f}"
             f"{interval_text(c.precision_interval)} ({c.counts['matched']} of {c.counts['other_codes']} other codes)"]
    if c.agreement:
        ag = c.agreement
        lines.append(f"Agreement after mapping: alpha (MASI) {ag['value']:.3f} [{ag['low']:.3f}, {ag['high']:.3f}] "
                     f"on {ag['n_units']} units")
    lines.append("")
    lines.append("Matches:")
    for m in c.matches:
        units = f"  units both/ref only/other only {m.units_both}/{m.units_reference_only}/{m.units_other_only}" \
            if m.units_both is not None else ""
        lines.append(f"  {m.reference_name!r:40} ~ {m.other_name!r:40} {m.score:.2f} {m.how}{units}")
    for side in ("reference", "other"):
        lines.append(f"Unmatched ({side}, {len(c.unmatched[side])}):")
        for u in c.unmatched[side]:
            lines.append(f"  {u['name']}" + (f"  ({u['units']} units)" if u["units"] is not None else ""))
    if c.near:
        lines.append("Near many-to-one (unmatched, but close to a code that matched another):")
        for n in c.near:
            lines.append(f"  {n['side']}: {n['code']} ~ {n['near']} {n['score']:.2f} (matched to {n['which_matched']})")
    lines.extend(f"Note: {n}" for n in c.notes)
    return "\n".join(lines)


def render_html(c: Comparison) -> str:
    """A self-contained page: the matched pairs side by side, then what each side has alone."""
    e = html.escape
    def units(m: Match) -> str:
        return "" if m.units_both is None else f"{m.units_both} / {m.units_reference_only} / {m.units_other_only}"

    rows = "".join(f"<tr><td>{e(m.reference_name)}</td><td>{e(m.other_name)}</td><td>{m.score:.2f}</td>"
                   f"<td>{e(m.how)}</td><td>{units(m)}</td></tr>" for m in c.matches)
    def item(u: dict[str, Any]) -> str:
        units = "" if u["units"] is None else f" ({u['units']} units)"
        return f"<li>{e(u['name'])}{units}</li>"

    alone = "".join(f"<h3>Only in {e(side)} ({len(items)})</h3><ul>" + "".join(item(u) for u in items) + "</ul>"
                    for side, items in c.unmatched.items())
    ag = c.agreement
    agreement = (f"<p>Agreement after mapping: Krippendorff's alpha (MASI) {ag['value']:.3f} "
                 f"[{ag['low']:.3f}, {ag['high']:.3f}], {ag['n_units']} units</p>") if ag else ""
    return (f"<!doctype html><meta charset='utf-8'><title>Codebook comparison</title>"
            "<style>body{font:14px system-ui;margin:2em}td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style>"
            f"<h1>Codebook comparison</h1><p>Reference: {e(c.reference)}<br>Other: {e(c.other)}<br>"
            f"Matching: {e(c.method)} (threshold {c.threshold:g})</p>"
            f"<p><b>Coverage {c.coverage:.2f}</b>{interval_text(c.coverage_interval)}, <b>precision {c.precision:.2f}</b>"
            f"{interval_text(c.precision_interval)} (95% Wilson intervals)</p>{agreement}"
            "<table><tr><th>reference</th><th>other</th><th>score</th><th>how</th><th>units both / ref / other</th></tr>"
            f"{rows}</table>{alone}")
