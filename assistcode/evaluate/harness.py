"""The evaluation harness: compare coders (humans, model runs) on the units they share.

:func:`evaluate` returns plain, JSON-ready data; :mod:`assistcode.report` renders it.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from scipy.stats import hypergeom

from ..agreement.coefficients import AgreementWarning
from ..agreement.summary import estimate
from ..errors import AgreementError, InputError
from .coding import CodingData
from .result import EvalResult

RARE = 0.05
SMALL_N = 30


@dataclass
class EvalOptions:
    n_boot: int = 1000
    ci_level: float = 0.95
    ci_method: str = "bca"
    seed: int = 0
    cluster: bool = True
    """Resample documents, not units, where units carry their document (segments of one interview are not
    independent)."""
    reference: str | None = None
    """The coder models are compared against per code; default: the human consensus (two or more humans) or
    the only human."""
    rollup: int | None = None
    by: Sequence[str] = ()
    """Document metadata fields to break agreement down by."""


def estimate_row(statistic: str, data: Any, opts: EvalOptions, clusters: Sequence[Any] | None, **kw: Any) -> dict[str, Any]:
    """One coefficient with its interval as a row (``Estimate.as_dict``); a statistic that cannot be computed is a
    row with ``value`` None and a note saying why."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AgreementWarning)
            e = estimate(statistic, data, n_boot=opts.n_boot, ci_level=opts.ci_level, ci_method=opts.ci_method,
                         clusters=clusters, seed=opts.seed, **kw)
        return e.as_dict()
    except AgreementError as exc:
        return {"statistic": statistic, "value": None, "note": str(exc), "n_units": 0, "n_coders": len(data)}


def _clusters(data: CodingData, opts: EvalOptions) -> np.ndarray | None:
    return data.cluster_ids() if (opts.cluster and data.clusters) else None


def _overall(data: CodingData, coders: list[str], opts: EvalOptions) -> list[dict[str, Any]]:
    clusters = _clusters(data, opts)
    out = [estimate_row("krippendorff_alpha", data.set_matrix(coders), opts, clusters, level="masi")]
    single = data.single_label(coders)
    if single is not None:
        out.append(estimate_row("krippendorff_alpha", single, opts, clusters, level="nominal"))
        if len(coders) == 2:
            out.append(estimate_row("cohen_kappa", single, opts, clusters))
        else:
            out.append(estimate_row("fleiss_kappa", single, opts, clusters))
        out.append(estimate_row("gwet_ac1", single, opts, clusters))
    return out


def _per_code_stats(binary: np.ndarray, opts: EvalOptions, clusters: Sequence[str] | None) -> list[dict[str, Any]]:
    cats = [0.0, 1.0]  # both values declared: q = 2 for AC1 even where a code never occurs
    if binary.shape[0] == 2:
        names = [("cohen_kappa", {}), ("gwet_ac1", {"categories": cats}), ("pabak", {}),
                 ("krippendorff_alpha", {})]
    else:
        names = [("fleiss_kappa", {}), ("gwet_ac1", {"categories": cats}), ("krippendorff_alpha", {})]
    return [estimate_row(name, binary, opts, clusters, **kw) for name, kw in names]


def _prf(model: np.ndarray, ref: np.ndarray) -> dict[str, float | None]:
    both = ~np.isnan(model) & ~np.isnan(ref)
    m, r = model[both] == 1, ref[both] == 1
    tp, fp, fn = int((m & r).sum()), int((m & ~r).sum()), int((~m & r).sum())
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if precision == 0 or recall == 0 else None)
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


def permutation_p(model: np.ndarray, ref: np.ndarray) -> float | None:
    """One-sided exact permutation p-value that the model agrees with the reference on a code more than chance.

    Permuting the model's labels across units keeps both marginals, so kappa moves only with the number of
    units both mark; that count is hypergeometric under the null (this is the one-sided Fisher exact test)."""
    both = ~np.isnan(model) & ~np.isnan(ref)
    m, r = model[both] == 1, ref[both] == 1
    n, k, draws, overlap = int(both.sum()), int(r.sum()), int(m.sum()), int((m & r).sum())
    if n == 0 or k in (0, n) or draws in (0, n):
        return None
    return float(hypergeom.sf(overlap - 1, n, k, draws))


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm (1979) step-down adjustment; ``None`` entries are left out and stay ``None``."""
    present = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    present.sort()
    m = len(present)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def _confusion(data: CodingData, a: str, b: str) -> dict[str, Any]:
    labels = list(data.codes) + ["(none)"]
    index = {c: i for i, c in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    pairs: dict[tuple[frozenset, frozenset], int] = {}  # each distinct pair of code sets counted once
    for sa, sb in zip(data.row(a), data.row(b)):
        if sa is None or sb is None:
            continue
        pairs[sa, sb] = pairs.get((sa, sb), 0) + 1
    for (sa, sb), times in pairs.items():
        for ca in (sa or {"(none)"}):
            for cb in (sb or {"(none)"}):
                matrix[index.get(ca, len(labels) - 1), index.get(cb, len(labels) - 1)] += times
    return {"rows": a, "cols": b, "labels": labels, "matrix": matrix.tolist()}


def _pair_value(data: CodingData, a: str, b: str, opts: EvalOptions) -> float | None:
    quick = EvalOptions(**{**asdict(opts), "n_boot": 0})
    est = estimate_row("krippendorff_alpha", data.set_matrix([a, b]), quick, None, level="masi")
    return est.get("value")


def evaluate(data: CodingData, options: EvalOptions | None = None) -> EvalResult:
    """Overall and per-code agreement with intervals, ceilings, and the model's place among the humans."""
    opts = options or EvalOptions()
    if opts.rollup:
        data = data.rollup(opts.rollup, None)
    notes: list[str] = []
    if len(data.coders) < 2:
        raise InputError(f"only {len(data.coders)} coder ({', '.join(data.coders)}): nothing to compare",
                         hint="import a second coder's codes, or run a model (assistcode code)")
    humans, models = data.humans, data.models
    if len(data.units) < SMALL_N:
        notes.append(f"only {len(data.units)} units: intervals are wide; report them with every figure")
    reference = opts.reference
    if reference is None:
        reference = "consensus" if len(humans) >= 2 and models else (humans[0] if models and humans else None)
    if reference == "consensus":
        data = data.with_consensus()
    elif reference is not None:
        data.row(reference)
    clusters = _clusters(data, opts)
    comparisons: list[dict[str, Any]] = []
    if len(humans) >= 2:
        comparisons.append({"comparison": "humans (ceiling)", "coders": humans, "estimates": _overall(data, humans, opts)})
    if not models:
        others = [c for c in data.coders if c != "consensus" and c not in humans]
        group = humans + others
        if len(humans) < 2:
            comparisons.append({"comparison": "all coders", "coders": group, "estimates": _overall(data, group, opts)})
    for m in models:
        cov = data.coverage(m)
        if cov < 1:
            notes.append(f"{m} coded {cov:.1%} of the units; the rest (failed or not yet coded) are left out of "
                         "agreement, never counted as 'no code'")
        if reference:
            comparisons.append({"comparison": f"{m} vs {reference}", "coders": [m, reference],
                                "estimates": _overall(data, [m, reference], opts)})
        if len(humans) >= 2:
            for h in humans:
                comparisons.append({"comparison": f"{m} vs {h}", "coders": [m, h],
                                    "estimates": _overall(data, [m, h], opts)})
            comparisons.append({"comparison": f"humans + {m}", "coders": humans + [m],
                                "estimates": _overall(data, humans + [m], opts)})
    # per code: each model against the reference, or all coders together when there is no model
    groups = [[m, reference] for m in models if reference] or [[c for c in data.coders if c != "consensus"]]
    per_code = []
    for group in groups:
        rows = []
        for code in data.codes:
            binary = data.binary(code, group)
            ref_row = binary[-1]
            rated = ref_row[~np.isnan(ref_row)] if len(group) == 2 else binary[~np.isnan(binary)]
            prevalence = float(rated.mean()) if rated.size else None
            row: dict[str, Any] = {"code": code, "coders": group, "prevalence": prevalence,
                                   "estimates": _per_code_stats(binary, opts, clusters)}
            if len(group) == 2 and group[0] in models:
                row.update(_prf(binary[0], binary[1]))
                row["p_value"] = permutation_p(binary[0], binary[1])
            if len(humans) >= 2:
                row["ceiling"] = estimate_row("krippendorff_alpha", data.binary(code, humans), opts, clusters)
            if prevalence is not None and (prevalence < RARE or prevalence > 1 - RARE):
                notes.append(f"code {code!r} has prevalence {prevalence:.1%}: kappa and alpha are unstable when "
                             "prevalence is skewed; report AC1 or PABAK beside them")
            rows.append(row)
        if rows and "p_value" in rows[0]:
            for row, adj in zip(rows, holm([r["p_value"] for r in rows])):
                row["p_holm"] = adj
        per_code.extend(rows)
    place = []
    # a pair already compared overall (same coders, same order) has its MASI alpha: not computed again
    masi = {tuple(c["coders"]): c["estimates"][0].get("value") for c in comparisons if len(c["coders"]) == 2
            and c["estimates"] and str(c["estimates"][0].get("convention", "")).endswith("level masi")}
    if models and len(humans) >= 2:
        for c in humans + models:
            others = [h for h in humans if h != c]
            values = [v for v in (masi[c, h] if (c, h) in masi else _pair_value(data, c, h, opts) for h in others)
                      if v is not None]
            place.append({"coder": c, "kind": data.kind(c), "mean_alpha_with_humans": float(np.mean(values)) if values else None})
        place.sort(key=lambda r: -(r["mean_alpha_with_humans"] or -math.inf))
    breakdown = []
    main = comparisons[-1]["coders"] if comparisons else list(data.coders)
    if models and reference:
        main = [models[0], reference]
    for fieldname in opts.by:
        if data.unit_meta is None or fieldname not in data.unit_meta:
            raise InputError(f"no document metadata field {fieldname!r}", field="--by",
                             hint="fields: " + ", ".join(data.unit_meta.columns) if data.unit_meta is not None else None)
        for value, idx in data.unit_meta.groupby(fieldname).indices.items():
            mask = np.zeros(len(data.units), bool)
            mask[idx] = True
            sub = data.restrict(mask)
            breakdown.append({"field": fieldname, "value": str(value), "coders": main, "n_units": int(mask.sum()),
                              "estimate": estimate_row("krippendorff_alpha", sub.set_matrix(main), opts, _clusters(sub, opts), level="masi")})
    confusion = _confusion(data, *main[:2]) if len(main) >= 2 else None
    # one co-occurrence matrix per run set against the reference (``confusion`` stays: the first of them)
    confusions = [_confusion(data, m, reference) for m in models] if reference else ([confusion] if confusion else [])
    return {
        "meta": {
            "n_units": len(data.units),
            "coders": [{"name": c, "kind": data.kind(c), "coverage": data.coverage(c)} for c in data.coders],
            "codes": list(data.codes),
            "reference": reference,
            "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(opts).items()},
            "clustered_by_document": clusters is not None,
        },
        "overall": comparisons,
        "per_code": per_code,
        "place": place,
        "breakdown": breakdown,
        "confusion": confusion,
        "confusions": confusions,
        "notes": list(dict.fromkeys(notes)),
    }
