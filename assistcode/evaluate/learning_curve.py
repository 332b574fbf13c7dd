"""How many labels ``trained`` needs: train it on growing, seeded samples of documents and measure its agreement
with the same coder on the labelled units left out, beside the human ceiling.

Every size is measured on the same held-out units (those outside the largest sample), so the points compare; the
samples are nested (one seeded order of documents, cut at each size). A size is the number of labelled units in
the sample: whole documents are added until it is reached.
"""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from ..agreement.coefficients import AgreementWarning
from ..agreement.summary import estimate
from ..errors import AgreementError, InputError

SIZES = (10, 20, 50, 100, 200, 500)
TEST_SHARE = 0.2
"""At least this share of the labelled units is left out for testing; larger sizes are dropped with a note."""
TARGET = 0.8
"""The share of the human ceiling the report looks for."""


def parse_sizes(text: str) -> list[int]:
    """``10,20,50`` -> [10, 20, 50] (sorted, unique, each >= 1)."""
    try:
        sizes = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        raise InputError(f"{text!r}: sizes are whole numbers separated by commas, e.g. 10,20,50", field="--sizes") from None
    if not sizes or sizes[0] < 1:
        raise InputError(f"{text!r}: give one or more sizes of 1 or more", field="--sizes")
    return sizes


def _est(statistic: str, data: Any, clusters: Sequence[str] | None, n_boot: int, ci_level: float, seed: int,
         **kw: Any) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AgreementWarning)
            return estimate(statistic, data, n_boot=n_boot, ci_level=ci_level, clusters=clusters, seed=seed, **kw).as_dict()
    except AgreementError as exc:
        return {"statistic": statistic, "value": None, "low": None, "high": None, "note": str(exc)}


def _sets(rows: np.ndarray, codes: Sequence[str]) -> list[frozenset | None]:
    return [None if np.isnan(r).any() else frozenset(c for c, v in zip(codes, r) if v) for r in rows]


def _single(sets: list[frozenset | None]) -> list[str | None] | None:
    if any(s is not None and len(s) > 1 for s in sets):
        return None
    return [None if s is None else (next(iter(s)) if s else "(none)") for s in sets]


def agreement(coders: list[np.ndarray], codes: Sequence[str], code: str | None, clusters: Sequence[str],
              n_boot: int, ci_level: float, seed: int) -> dict[str, Any]:
    """Kappa and alpha among coders (each units x codes, 1/0, NaN unseen): on one code (binary) or on code sets
    (alpha with the MASI distance; kappa where every unit holds at most one code). Two coders: Cohen's kappa; more:
    Fleiss' kappa."""
    kappa = "cohen_kappa" if len(coders) == 2 else "fleiss_kappa"
    if code is not None:
        j = list(codes).index(code)
        binary = np.vstack([c[:, j] for c in coders])
        return {"kappa": _est(kappa, binary, clusters, n_boot, ci_level, seed),
                "alpha": _est("krippendorff_alpha", binary, clusters, n_boot, ci_level, seed)}
    sets = [_sets(c, codes) for c in coders]
    single = [_single(s) for s in sets]
    return {"kappa": _est(kappa, single, clusters, n_boot, ci_level, seed) if all(s is not None for s in single) else
            {"statistic": kappa, "value": None, "note": "units hold several codes: kappa is given per code"},
            "alpha": _est("krippendorff_alpha", sets, clusters, n_boot, ci_level, seed, level="masi")}


def _headline(agree: dict[str, Any]) -> float | None:
    """The figure compared with the ceiling: kappa where it is defined, else alpha."""
    k = agree["kappa"].get("value")
    return k if k is not None else agree["alpha"].get("value")


def learning_curve(project: Any, train_with: str, *, sizes: Sequence[int] = SIZES, code: str | None = None,
                   seed: int = 0, n_boot: int = 1000, ci_level: float = 0.95, folds: int = 5,
                   method: str = "platt", embedder: Any = None) -> dict[str, Any]:
    """Train ``trained`` on nested seeded samples of ``train_with``'s labelled documents and measure agreement with
    ``train_with`` on the labelled units outside the largest sample, beside the humans' agreement there.
    ``embedder``: anything with the :class:`assistcode.similarity.Embedder` ``embed`` method (default: a new one)."""
    from ..similarity import Embedder
    from ..trained import label_matrix, train_and_score
    from .coding import from_store

    codebook = project.codebook()
    codes = [c.id for c in codebook.codes]
    if code is not None and code not in codes:
        raise InputError(f"no code {code!r} in the codebook", field="--code", hint="codes: " + ", ".join(codes))
    segments = project.segments()
    labels_all = label_matrix(project.db, train_with, codebook, [s.id for s in segments])
    keep = np.flatnonzero(~np.isnan(labels_all).any(axis=1))
    segments = [segments[i] for i in keep]
    labels = labels_all[keep]
    groups = np.array([s.document_id for s in segments])
    total = len(segments)
    notes: list[str] = []
    usable = [n for n in sorted(set(sizes)) if n <= (1 - TEST_SHARE) * total]
    dropped = sorted(set(sizes) - set(usable))
    if dropped:
        notes.append(f"sizes {', '.join(map(str, dropped))} left out: {train_with} labelled {total} units and at least "
                     f"{TEST_SHARE:.0%} of them are kept for testing")
    if not usable:
        raise InputError(f"{train_with} labelled {total} units: too few for sizes {', '.join(map(str, sizes))}",
                         field="--sizes", hint=f"give sizes up to {int((1 - TEST_SHARE) * total)}")
    rng = np.random.default_rng(seed)
    docs = list(dict.fromkeys(groups))
    order = [docs[i] for i in rng.permutation(len(docs))]
    per_doc = {d: int((groups == d).sum()) for d in docs}
    cumulative = np.cumsum([per_doc[d] for d in order])

    def sample(n: int) -> np.ndarray:
        cut = int(np.searchsorted(cumulative, n)) + 1
        return np.isin(groups, order[:cut])

    test = ~sample(usable[-1])
    if not test.any():
        raise InputError("no labelled unit is left out of the largest sample", field="--sizes")
    x = (embedder or Embedder()).embed([s.text for s in segments])
    clusters = [str(g) for g in groups[test]]
    ref = labels[test]
    humans = [r[0] for r in project.db.execute("SELECT name FROM coders WHERE kind = 'human' ORDER BY name")]
    ceiling = None
    if len(humans) >= 2:
        data = from_store(project.db, humans, codebook)
        index = {u: i for i, u in enumerate(data.units)}
        rows = []
        for h in humans:
            m = np.full((int(test.sum()), len(codes)), np.nan)
            row = data.row(h)
            for t, seg in enumerate(np.array([s.id for s in segments])[test]):
                u = index.get(seg)
                if u is not None and row[u] is not None:
                    m[t] = [c in row[u] for c in codes]
            rows.append(m)
        ceiling = {"coders": humans, **agreement(rows, codes, code, clusters, n_boot, ci_level, seed)}
    else:
        notes.append(f"{len(humans)} human coder: no human ceiling to compare with")
    points = []
    for n in usable:
        chosen = sample(n)
        y = np.where(chosen[:, None], labels, np.nan)
        fit = train_and_score(x, y, groups, targets=test, method=method, folds=folds, seed=seed,
                              exclusive=bool(getattr(codebook, "exclusive", False)), label_source=train_with)
        model = np.where(test[:, None], fit.cal.decisions.astype(float), np.nan)[test]
        per_code = {}
        for j, c in enumerate(codes):
            if code is None or c == code:
                per_code[c] = _est("cohen_kappa", np.vstack([model[:, j], ref[:, j]]), clusters, n_boot, ci_level, seed)
        points.append({"size": n, "labels": int(chosen.sum()), "documents": len(set(groups[chosen])),
                       "positives": {c: int(labels[chosen, j].sum()) for j, c in enumerate(codes)
                                     if code is None or c == code},
                       "fallbacks": {codes[int(j)]: k for j, k in fit.fallbacks.items()},
                       **agreement([model, ref], codes, code, clusters, n_boot, ci_level, seed), "per_code": per_code})
    target = None
    reached = None
    if ceiling is not None and _headline(ceiling) is not None:
        target = TARGET * _headline(ceiling)
        reached = next((p["size"] for p in points if (_headline(p) if _headline(p) is not None else -np.inf) >= target),
                       None)
    return {"train_with": train_with, "code": code, "seed": seed, "method": method, "labelled_units": total,
            "test_units": int(test.sum()), "test_documents": len(set(groups[test])),
            "statistic": "kappa (alpha where kappa is undefined)", "ceiling": ceiling, "target": target,
            "reached_target_at": reached, "target_share": TARGET, "points": points, "notes": notes}


def to_lines(result: dict[str, Any]) -> list[str]:
    """The curve as a terminal table."""
    def fmt(e: dict[str, Any] | None) -> str:
        if not e or e.get("value") is None:
            return "-"
        lo, hi = e.get("low"), e.get("high")
        return f"{e['value']:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else "")

    what = f"code {result['code']!r}" if result["code"] else "all codes"
    out = [f"Learning curve of trained on {result['train_with']} ({what}); tested on {result['test_units']} units of "
           f"{result['test_documents']} documents left out of every sample",
           f"{'labels':>7} {'documents':>9}  {'kappa':22} {'alpha':22}"]
    for p in result["points"]:
        out.append(f"{p['labels']:>7} {p['documents']:>9}  {fmt(p['kappa']):22} {fmt(p['alpha']):22}")
    c = result["ceiling"]
    if c:
        out.append(f"{'humans':>7} {'':>9}  {fmt(c['kappa']):22} {fmt(c['alpha']):22}  (ceiling: {', '.join(c['coders'])})")
        if result["reached_target_at"] is not None:
            out.append(f"{result['reached_target_at']} labels reached {result['target_share']:.0%} of the ceiling "
                       f"({result['target']:.2f}).")
        elif result["target"] is not None:
            out.append(f"No size reached {result['target_share']:.0%} of the ceiling ({result['target']:.2f}).")
    out.extend(f"note: {n}" for n in result["notes"])
    return out
