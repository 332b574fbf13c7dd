"""``eval --spans``: agreement on where codes begin and end, for human span coders and model runs alike.

A run's located evidence quotes are its span codings (:func:`assistcode.spans.read_spans`). The result has the shape
of :func:`assistcode.evaluate.evaluate`'s (``meta``, ``overall``, ``per_code``, ``place``, ``notes``; estimates
with ``value``, ``low``, ``high``), with unitizing coefficients in place of the segment-level ones, and a ``spans``
section holding each document's spans per coder for the per-document strips of the reports.
"""
from __future__ import annotations

import math
import sqlite3
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

from ..errors import AgreementError, InputError
from ..spans import Span, as_codings, document_lengths, read_spans, seen_documents

STRIP_DOCUMENTS = 50
"""Documents whose spans the result carries for the per-document strips (the first, by id)."""
CONVENTIONS = {
    "u_alpha": "Krippendorff (1995) u-alpha over all codes; documents are the continua",
    "cu_alpha": "c|u-alpha (Krippendorff et al. 2016): agreement on codes where coded stretches overlap (a coder's "
                "set of codes at a place is one value)",
    "Cu_alpha": "Cu-alpha (Krippendorff et al. 2016): codes and gaps, over the whole continuum (code sets as one value)",
    "|u_alpha": "|u-alpha (Krippendorff et al. 2016), one code against the rest: ATLAS.ti's alpha-binary",
}
OVERALL = ("u_alpha", "cu_alpha", "Cu_alpha")


@dataclass
class SpanEvalOptions:
    n_boot: int = 1000
    ci_level: float = 0.95
    seed: int = 0
    reference: str | None = None
    """The coder models are compared against per code; default: the only human, else each model among the humans."""
    iou: float = 0.5
    """Span F1 counts a model span as found where it overlaps a reference span of the code by this IoU or more."""


@dataclass
class SpanData:
    """The span codings of the coders compared, on the documents every one of them saw."""

    spans: list[Span]
    lengths: dict[str, int]
    coders: list[str]
    kinds: dict[str, str]
    codes: list[str]
    coverage: dict[str, float] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    left_out: int = 0
    """Documents some coder saw but not all of them: outside the comparison."""

    @property
    def humans(self) -> list[str]:
        return [c for c in self.coders if self.kinds.get(c) != "model"]

    @property
    def models(self) -> list[str]:
        return [c for c in self.coders if self.kinds.get(c) == "model"]


def span_data(db: sqlite3.Connection, coders: Sequence[str] | None, codes: Sequence[str]) -> SpanData:
    """The store's span codings (and runs' located quotes) of ``coders`` (default: every coder with spans)."""
    kinds = {r[0]: r[1] for r in db.execute("SELECT name, kind FROM coders")}
    spans = read_spans(db, coders)
    if coders:
        unknown = [c for c in coders if c not in kinds]
        if unknown:
            raise InputError(f"no coder named {unknown[0]!r}", field="--coders", hint="coders: " + ", ".join(kinds))
        chosen = list(coders)
    else:
        with_spans = {s.coder for s in spans}
        chosen = [c for c in kinds if c in with_spans]
    seen = seen_documents(db, chosen)
    every = set.intersection(*seen.values()) if seen else set()
    anyone = set.union(*seen.values()) if seen else set()
    lengths = document_lengths(db, sorted(every))
    spans = [s for s in spans if s.document in lengths and s.coder in chosen]
    titles = {d: db.execute("SELECT title FROM documents WHERE id = ?", (d,)).fetchone()[0] for d in lengths}
    return SpanData(spans, lengths, chosen, {c: kinds[c] for c in chosen},
                    [c for c in codes if any(s.code == c for s in spans)] or list(codes),
                    {c: (len(every) / len(seen[c]) if seen[c] else 0.0) for c in chosen}, titles, len(anyone - every))


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _estimate(statistic: str, value: Any, interval: tuple[float, float] | None, data: SpanData, n_coders: int,
              opts: SpanEvalOptions) -> dict[str, Any]:
    low, high = interval if interval else (None, None)
    est = {"statistic": statistic, "value": _number(value), "low": _number(low), "high": _number(high),
           "level": opts.ci_level, "ci_method": "percentile", "n_boot": opts.n_boot if interval else 0,
           "clustered": True, "se_boot": None, "se": None, "se_method": None, "n_units": len(data.lengths),
           "n_coders": n_coders, "convention": CONVENTIONS[statistic.split(":")[0]], "note": ""}
    if est["value"] is None:
        est["note"] = "undefined (no coded stretch, or no variation, in these documents)"
    return est


def _group(data: SpanData, coders: list[str], opts: SpanEvalOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    """(point estimates as a dict, intervals by key; none where ``opts.n_boot`` is 0) of the unitizing family for
    one group of coders."""
    from ..agreement.coefficients import AgreementWarning
    from ..agreement.unitizing import SpanError, unitizing_alpha, unitizing_intervals

    spans = as_codings(s for s in data.spans if s.coder in coders)
    with warnings.catch_warnings():  # an undefined coefficient is reported as such in the result
        warnings.simplefilter("ignore", AgreementWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            point = unitizing_alpha(spans, data.lengths, coders=coders, codes=data.codes)
        except SpanError:
            raise  # a span the store should never hold: say so, never report it as "undefined"
        except AgreementError:
            return {}, {}
        values = {"u_alpha": point.u_alpha, "cu_alpha": point.cu_alpha, "Cu_alpha": point.Cu_alpha,
                  **{f"binary:{c}": v for c, v in point.binary.items()}}
        intervals: dict[str, Any] = {}
        if opts.n_boot > 0 and len(data.lengths) > 1:
            intervals = unitizing_intervals(spans, data.lengths, n_boot=opts.n_boot, level=opts.ci_level,
                                            seed=opts.seed, coders=coders, codes=data.codes)
    return values, intervals


def _covered(data: SpanData, coder: str, code: str) -> float | None:
    total = sum(data.lengths.values())
    if not total:
        return None
    return sum(s.end - s.start for s in data.spans if s.coder == coder and s.code == code) / total


def evaluate_spans(data: SpanData, options: SpanEvalOptions | None = None) -> dict[str, Any]:
    """Unitizing agreement overall and per code, with bootstrap intervals over documents, the human ceiling, and
    each model beside the humans."""
    opts = options or SpanEvalOptions()
    if len(data.coders) < 2:
        raise InputError(f"only {len(data.coders)} coder with spans ({', '.join(data.coders)}): nothing to compare",
                         hint="import span codings (import-gold --format spans, or a .qdpx), or run a model whose "
                              "evidence quotes are located (assistcode code --template span)")
    if not data.lengths:
        raise InputError("no document was seen by every coder compared: nothing to compare", field="--coders")
    notes: list[str] = []
    if data.left_out:
        notes.append(f"{data.left_out} documents seen by some of the coders but not all are left out")
    if len(data.lengths) < 30:
        notes.append(f"only {len(data.lengths)} documents: intervals (resampling documents) are wide")
    humans, models = data.humans, data.models
    reference = opts.reference
    if reference is None and models and len(humans) == 1:
        reference = humans[0]
    if reference is not None and reference not in data.coders:
        raise InputError(f"no span coder named {reference!r}", field="--reference",
                         hint="span coders: " + ", ".join(data.coders))
    cache: dict[tuple[str, ...], tuple[dict[str, Any], dict[str, Any]]] = {}
    points: dict[tuple[str, ...], dict[str, Any]] = {}

    def group(coders: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        key = tuple(coders)
        if key not in cache:
            cache[key] = _group(data, coders, opts)
        return cache[key]

    def point(coders: list[str]) -> dict[str, Any]:  # no intervals: the place among the humans needs none
        key = tuple(coders)
        if key in cache:
            return cache[key][0]
        if key not in points:
            points[key] = _group(data, coders, replace(opts, n_boot=0))[0]
        return points[key]

    def overall(name: str, coders: list[str]) -> dict[str, Any]:
        values, intervals = group(coders)
        return {"comparison": name, "coders": coders,
                "estimates": [_estimate(k, values.get(k), intervals.get(k), data, len(coders), opts) for k in OVERALL]}

    comparisons = []
    if len(humans) >= 2:
        comparisons.append(overall("humans (ceiling)", humans))
    if not models and len(humans) < 2:
        comparisons.append(overall("all coders", list(data.coders)))
    for m in models:
        if reference and reference != m:
            comparisons.append(overall(f"{m} vs {reference}", [m, reference]))
        if len(humans) >= 2:
            comparisons += [overall(f"{m} vs {h}", [m, h]) for h in humans if h != reference]
            comparisons.append(overall(f"humans + {m}", humans + [m]))
    if models:
        groups = [[m, reference] for m in models if reference and reference != m] or \
                 ([humans + [m] for m in models] if len(humans) >= 2 else [list(data.coders)])
    else:
        groups = [list(data.coders)]
    per_code = []
    for coders in groups:
        values, intervals = group(coders)
        for code in data.codes:
            key = f"binary:{code}"
            covered = [v for v in (_covered(data, c, code) for c in coders) if v is not None]
            row: dict[str, Any] = {"code": code, "coders": coders,
                                   "prevalence": sum(covered) / len(covered) if covered else None,
                                   "estimates": [_estimate("|u_alpha", values.get(key), intervals.get(key), data,
                                                           len(coders), opts)]}
            if len(humans) >= 2 and coders != humans:
                h_values, h_intervals = group(humans)
                row["ceiling"] = _estimate("|u_alpha", h_values.get(key), h_intervals.get(key), data, len(humans), opts)
            per_code.append(row)
        if len(coders) == 2 and coders[0] in models:
            _add_f1(data, coders, per_code, opts)
    place = []
    if models and len(humans) >= 2:
        for c in humans + models:
            vals = [_number(point([c, h]).get("u_alpha")) if c != h else None for h in humans]
            vals = [v for v in vals if v is not None]
            place.append({"coder": c, "kind": data.kinds[c],
                          "mean_alpha_with_humans": sum(vals) / len(vals) if vals else None})
        place.sort(key=lambda r: -(r["mean_alpha_with_humans"] if r["mean_alpha_with_humans"] is not None else -math.inf))
    strip_docs = sorted(data.lengths)[:STRIP_DOCUMENTS]
    if len(data.lengths) > STRIP_DOCUMENTS:
        notes.append(f"the per-document strips show the first {STRIP_DOCUMENTS} of {len(data.lengths)} documents")
    return {
        "meta": {
            "unit": "span",
            "n_units": len(data.lengths),
            "n_documents": len(data.lengths),
            "n_spans": len(data.spans),
            "coders": [{"name": c, "kind": data.kinds[c], "coverage": data.coverage.get(c)} for c in data.coders],
            "codes": list(data.codes),
            "reference": reference,
            "options": asdict(opts),
            "clustered_by_document": True,
        },
        "overall": comparisons,
        "per_code": per_code,
        "place": place,
        "breakdown": [],
        "confusion": None,
        "confusions": [],
        "calibration": [],
        "spans": {"documents": [
            {"id": d, "title": data.titles.get(d, d), "length": data.lengths[d],
             "coders": {c: sorted([s.start, s.end, s.code] for s in data.spans if s.document == d and s.coder == c)
                        for c in data.coders}}
            for d in strip_docs]},
        "notes": list(dict.fromkeys(notes)),
    }


def _add_f1(data: SpanData, coders: list[str], rows: list[dict[str, Any]], opts: SpanEvalOptions) -> None:
    """Span precision, recall and F1 of the model (``coders[0]``) against the reference at the IoU threshold."""
    from ..agreement.overlap import span_f1

    model, reference = coders
    f1 = span_f1(as_codings(s for s in data.spans if s.coder in coders), reference=reference, candidate=model,
                 iou=opts.iou, codes=data.codes)
    for row in rows:
        if row["coders"] == coders and row["code"] in f1:
            row.update({k: f1[row["code"]].get(k) for k in ("precision", "recall", "f1")})
            row["iou"] = opts.iou


def eval_spans(db: sqlite3.Connection, codebook: Any, coders: Sequence[str] | None = None,
               options: SpanEvalOptions | None = None) -> dict[str, Any]:
    """The store's span codings, compared: :func:`span_data` then :func:`evaluate_spans`."""
    data = span_data(db, coders, [c.id for c in codebook.codes])
    return evaluate_spans(data, options)
