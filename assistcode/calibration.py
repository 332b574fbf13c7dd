"""Calibration: turning a provider's per-code scores into probabilities and decisions that can be checked.

Methods (``method=``):

- ``none``: the raw score, rescaled from its bounds to [0, 1] (a probability stays as it is), and one default threshold.
- ``contextual``: Zhao et al. 2021, "Calibrate Before Use": the bias measured on content-free inputs is divided out.
  Per-code yes/no scores: ``p' = (p / p_cf) / (p / p_cf + (1 - p) / (1 - p_cf))``, so a segment that looks like the
  content-free input gets 0.5. Exclusive codebooks (one question, the codes as options): ``W = diag(p_cf)^-1``,
  ``p' = W p`` renormalised over the codes to the unit's own code mass: the share of "none" (``1 - sum p``) stays,
  since "none" is the right answer to a content-free input and no bias. Note that a per-code yes/no question is a
  detection ("is X here?"), where "no" is the right answer to a content-free input too: contextual calibration then
  pushes every answer towards yes, so measure it before using it (eval/bench).
- ``threshold``: per-code thresholds that maximise F1 on labels, on the label-free probabilities.
- ``platt``: a logistic map of logit(label-free probability) to a probability, plus a per-code F1 threshold.
- ``isotonic``: a monotone (pool-adjacent-violators) map, plus a per-code F1 threshold.

The labelled methods are cross-fitted by document: the labelled units' documents are split into folds
(:func:`group_folds`, a document never split), and a unit's map and threshold are fitted on the other folds only,
never on its own label. Units with no label use a map fitted on all labels. Where the training part of a fold has
fewer than :data:`MIN_CLASS` positive or negative labels for a code, that code falls back in that fold to the
label-free calibration (contextual where content-free scores exist, else none), counted per code in the manifest.

Exclusive codebooks propose at most one code per unit: of the codes that pass their threshold, the most probable
(or, with ``exclusive_rank="score"``, the one the model's own label-free score ranks first); where none passes, no
code when "none" is allowed, else the best code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .errors import InputError

METHODS = ("none", "contextual", "threshold", "platt", "isotonic")
LABELLED = ("threshold", "platt", "isotonic")
MIN_CLASS = 3
"""Fewest positive and negative training labels a code needs in a fold before its labels calibrate it."""
_EPS = 1e-6


@dataclass
class Calibration:
    """Calibrated probabilities and the decisions taken on them (all units x codes)."""

    prob: np.ndarray
    """Calibrated probabilities in [0, 1]."""
    threshold: np.ndarray
    """The threshold each unit's decision used, in probability units (cross-fitted: never fitted on its own label)."""
    decisions: np.ndarray
    """bool: the code is proposed for the unit."""
    method: str
    manifest: dict[str, Any] = field(default_factory=dict)
    """Method, folds, seed, the units and coder it rested on, per-code fallbacks counted."""


# -- checks -------------------------------------------------------------------------------------------------------

def _name(names: Sequence[str] | None, i: int, kind: str) -> str:
    return repr(names[i]) if names is not None and i < len(names) else f"{kind} {i}"


def check_scores(raw: np.ndarray, bounds: tuple[float, float] = (0.0, 1.0), *, unit_ids: Sequence[str] | None = None,
                 codes: Sequence[str] | None = None, what: str = "score") -> np.ndarray:
    """``raw`` as a float units x codes array; an InputError naming the first unit and code that is NaN or out of
    bounds."""
    arr = np.asarray(raw, dtype=float)
    if arr.ndim != 2:
        raise InputError(f"{what}s must be a units x codes matrix, got shape {arr.shape}")
    lo, hi = bounds
    bad = ~np.isfinite(arr) | (arr < lo) | (arr > hi)
    if bad.any():
        i, j = (int(x) for x in np.argwhere(bad)[0])
        value = float(arr[i, j])
        problem = "is missing (NaN)" if np.isnan(value) else f"{value:g} is outside [{lo:g}, {hi:g}]"
        raise InputError(f"{what} of {_name(unit_ids, i, 'unit')}, code {_name(codes, j, 'column')}: {problem}"
                         f" ({int(bad.sum())} such values)")
    return arr


def _check_labels(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    lab = np.asarray(labels, dtype=float)
    if lab.shape != shape:
        raise InputError(f"labels have shape {lab.shape}, the scores {shape}")
    ok = np.isnan(lab) | (lab == 0) | (lab == 1)
    if not ok.all():
        i, j = (int(x) for x in np.argwhere(~ok)[0])
        raise InputError(f"label of unit {i}, code column {j} is {lab[i, j]!r}: labels are 1, 0 or NaN (not labelled)")
    return lab


# -- folds --------------------------------------------------------------------------------------------------------

def group_folds(groups: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """The fold index of each unit, by document: all units of one group (document) share a fold. Groups are shuffled
    with ``seed`` and dealt round-robin into ``min(folds, number of groups)`` folds."""
    if folds < 2:
        raise InputError(f"cross-fitting needs at least 2 folds, got {folds}")
    keys = [str(g) for g in groups]
    unique = sorted(set(keys))
    order = np.random.default_rng(seed).permutation(len(unique))
    k = min(folds, len(unique)) or 1
    fold_of = {unique[g]: rank % k for rank, g in enumerate(order)}
    return np.array([fold_of[g] for g in keys], dtype=int)


# -- label-free calibration -----------------------------------------------------------------------------------------

def _rescale(raw: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    lo, hi = bounds
    return np.clip((raw - lo) / (hi - lo), 0.0, 1.0) if (lo, hi) != (0.0, 1.0) else raw.copy()


def contextual(p: np.ndarray, p_cf: np.ndarray, *, exclusive: bool = False) -> np.ndarray:
    """Contextual calibration of probabilities ``p`` (units x codes) by the content-free probabilities ``p_cf``
    (mean over the content-free inputs, one per code)."""
    if not exclusive:
        cf = np.clip(p_cf, _EPS, 1 - _EPS)
        yes, no = p / cf, (1 - p) / (1 - cf)
        return yes / (yes + no)
    # Between the codes only: "none" is the right answer to a content-free input, so its share there is no bias;
    # each unit keeps its own mass of "none" (1 - sum p), and its code mass is shared out anew.
    mass = p.sum(axis=1, keepdims=True)
    options = p / np.clip(p_cf, _EPS, None)
    total = options.sum(axis=1, keepdims=True)
    return np.divide(options * mass, total, out=np.zeros_like(options), where=total > 0)


# -- labelled maps --------------------------------------------------------------------------------------------------

def best_threshold(s: np.ndarray, y: np.ndarray, default: float) -> float:
    """The threshold (one of the scores) that maximises F1 on (score, label) pairs, the lowest of equals;
    ``default`` with no positive. One sort: O(n log n)."""
    if len(y) == 0 or y.sum() == 0:
        return default
    order = np.argsort(-s, kind="stable")
    s_desc, tp = s[order], np.cumsum(y[order] == 1)
    last = np.append(s_desc[1:] != s_desc[:-1], True)  # the last unit of each run of equal scores
    f1 = 2 * tp[last] / (np.flatnonzero(last) + 1 + y.sum())
    return float(s_desc[last][np.flatnonzero(f1 == f1.max())[-1]])  # ties: the lowest such threshold


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -z))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


def fit_platt(p: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    """Platt scaling on logit(p): sigmoid(a * logit(p) + b), fitted by Newton's method on Platt's smoothed targets
    (``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)``), which keep the map finite on separable labels. The map never
    decreases: where the fitted slope is negative, it is the smoothed base rate, rising imperceptibly with the score."""
    x = _logit(p)
    pos = float(y.sum())
    neg = len(y) - pos
    t = np.where(y == 1, (pos + 1) / (pos + 2), 1 / (neg + 2))
    def loss(a: float, b: float) -> float:
        z = a * x + b
        return float((np.logaddexp(0, z) - t * z).sum())

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(100):
        q = _sigmoid(a * x + b)
        w = q * (1 - q) + 1e-12
        grad = np.array([((q - t) * x).sum(), (q - t).sum()])
        hess = np.array([[(w * x * x).sum() + 1e-6, (w * x).sum()], [(w * x).sum(), w.sum() + 1e-6]])
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-8 and loss(a - scale * step[0], b - scale * step[1]) > current:
            scale /= 2  # backtracking keeps every step downhill
        a, b = a - scale * step[0], b - scale * step[1]
        previous, current = current, loss(a, b)
        if previous - current < 1e-10:
            break
    if a < _EPS:  # a score that falls as the label rises, on these labels: the smoothed base rate, and a slope
        # just above 0 so that the score's ranking, hence the threshold's decisions, stay as the threshold method's
        a = _EPS
        b = float(np.log(t.mean() / (1 - t.mean()))) - a * float(x.mean())
    return lambda s: _sigmoid(a * _logit(s) + b)


def fit_isotonic(p: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    """A non-decreasing map of p to the frequency of the label (pool adjacent violators), interpolated linearly
    between the fitted points and constant beyond them."""
    xs, inverse = np.unique(p, return_inverse=True)
    sums = np.bincount(inverse, weights=y.astype(float))
    counts = np.bincount(inverse).astype(float)
    blocks: list[list[float]] = []  # [sum, count, number of xs]
    for s, c in zip(sums, counts):
        blocks.append([s, c, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            s2, c2, n2 = blocks.pop()
            blocks[-1][0] += s2
            blocks[-1][1] += c2
            blocks[-1][2] += n2
    fitted = np.repeat([b[0] / b[1] for b in blocks], [int(b[2]) for b in blocks])
    return lambda s: np.interp(s, xs, fitted)


# -- calibrate ------------------------------------------------------------------------------------------------------

def _decide(prob: np.ndarray, threshold: np.ndarray, exclusive: bool, allow_none: bool,
            rank: np.ndarray | None = None) -> np.ndarray:
    """Codes whose probability passes their threshold; for exclusive codebooks only the best of them by ``rank``
    (default: the probability), or where none passes and "none" is not allowed, the best of all."""
    passes = prob >= threshold
    if not exclusive:
        return passes
    out = np.zeros_like(passes)
    if prob.shape[1] == 0:
        return out
    rank = prob if rank is None else rank
    masked = np.where(passes, rank, -np.inf)
    for i in range(prob.shape[0]):
        if passes[i].any():
            out[i, int(np.argmax(masked[i]))] = True
        elif not allow_none:
            out[i, int(np.argmax(rank[i]))] = True
    return out


def calibrate(raw: np.ndarray, *, method: str = "none", labels: np.ndarray | None = None,
              groups: Sequence[str] | None = None, content_free: np.ndarray | None = None,
              exclusive: bool = False, allow_none: bool = True, default_threshold: float = 0.5, folds: int = 5,
              seed: int = 0, label_source: str | None = None, bounds: tuple[float, float] = (0.0, 1.0),
              codes: Sequence[str] | None = None, unit_ids: Sequence[str] | None = None,
              exclusive_rank: str = "prob") -> Calibration:
    """Calibrate ``raw`` (units x codes scores within ``bounds``; a cosine provider passes ``(-1, 1)``).

    ``labels``: units x codes, 1/0, NaN where not labelled (needed by threshold, platt, isotonic); ``groups``: the
    document of each unit (folds never split one; default: each unit its own); ``content_free``: m x codes raw scores
    of content-free inputs (needed by contextual). ``default_threshold`` is in the raw score's units and applies
    wherever labels do not set a threshold. ``codes`` and ``unit_ids`` name columns and rows in errors and the
    manifest. ``exclusive_rank``: which of several passing codes an exclusive codebook keeps, the most probable
    (``prob``) or the best by the label-free score (``score``: the model's own ranking, after contextual calibration
    where it applies; steadier where per-code maps rest on few labels).
    """
    if method not in METHODS:
        raise InputError(f"unknown calibration {method!r}: choose one of {', '.join(METHODS)}")
    if exclusive_rank not in ("prob", "score"):
        raise InputError(f"exclusive_rank {exclusive_rank!r}: prob or score")
    score = check_scores(raw, bounds, unit_ids=unit_ids, codes=codes)
    n, k = score.shape
    if codes is not None and len(codes) != k:
        raise InputError(f"{len(codes)} code names for {k} score columns")
    names = list(codes) if codes is not None else [str(j) for j in range(k)]
    lo, hi = bounds
    if not lo <= default_threshold <= hi:
        raise InputError(f"default threshold {default_threshold} is outside the scores' range [{lo:g}, {hi:g}]")
    base = _rescale(score, bounds)
    default = float(_rescale(np.array([[default_threshold]]), bounds)[0, 0])
    cf_count = 0
    if content_free is not None:
        cf = check_scores(np.atleast_2d(content_free), bounds, codes=codes, what="content-free score")
        if cf.shape[1] != k or cf.shape[0] == 0:
            raise InputError(f"content-free scores have shape {cf.shape}: need one row or more of {k} codes")
        cf_count = cf.shape[0]
        base = contextual(base, _rescale(cf, bounds).mean(axis=0), exclusive=exclusive)
    elif method == "contextual":
        raise InputError("contextual calibration needs the scores of content-free inputs; none were measured for this run")
    label_free = "contextual" if cf_count else "none"
    manifest: dict[str, Any] = {"method": method, "label_free": label_free, "content_free_inputs": cf_count,
                                "exclusive": exclusive, "allow_none": allow_none,
                                "default_threshold": default_threshold, "bounds": list(bounds), "units": n}
    prob = base.copy()
    threshold = np.full((n, k), default)
    if method in LABELLED:
        if labels is None:
            raise InputError(f"calibration {method!r} needs labels: name a coder to calibrate with (--calibrate-with)")
        lab = _check_labels(labels, score.shape)
        groups = [str(i) for i in range(n)] if groups is None else [str(g) for g in groups]
        if len(groups) != n:
            raise InputError(f"{len(groups)} documents given for {n} units")
        prob, threshold, fold_info = _cross_fit(base, lab, groups, method, default, folds, seed, names)
        manifest.update(fold_info)
        manifest.update({"folds_requested": folds, "seed": seed, "label_source": label_source})
    decisions = _decide(prob, threshold, exclusive, allow_none, base if exclusive_rank == "score" else None)
    if exclusive:
        manifest["exclusive_rank"] = exclusive_rank
    manifest["proposed"] = int(decisions.sum())
    return Calibration(prob=np.clip(prob, 0.0, 1.0), threshold=threshold, decisions=decisions, method=method,
                       manifest=manifest)


def _fit(method: str, s: np.ndarray, y: np.ndarray, default: float):  # type: ignore[no-untyped-def]
    """The (map, threshold) fitted on training scores and labels; None where the labels are too few."""
    pos = int(y.sum())
    if pos < MIN_CLASS or len(y) - pos < MIN_CLASS:
        return None
    if method == "threshold":
        return (lambda v: v), best_threshold(s, y, default)
    fmap = fit_platt(s, y) if method == "platt" else fit_isotonic(s, y)
    return fmap, best_threshold(fmap(s), y, default)


def _cross_fit(base: np.ndarray, lab: np.ndarray, groups: list[str], method: str, default: float, folds: int,
               seed: int, names: list[str]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    n, k = base.shape
    labelled = np.flatnonzero(~np.isnan(lab).all(axis=1))
    unlabelled = np.flatnonzero(np.isnan(lab).all(axis=1))
    fold = np.full(n, -1)
    if len(labelled):
        fold[labelled] = group_folds([groups[i] for i in labelled], folds, seed)
    n_folds = int(fold.max()) + 1 if len(labelled) else 0
    prob, threshold = base.copy(), np.full((n, k), default)
    fallbacks = {c: 0 for c in names}
    fallback_units = {c: 0 for c in names}
    thresholds_all: dict[str, float | None] = {}
    for j, code in enumerate(names):
        has = ~np.isnan(lab[:, j])
        parts = [(np.flatnonzero(fold == f), has & (fold != f) & (fold >= 0)) for f in range(n_folds)]
        if len(unlabelled):
            parts.append((unlabelled, has))
        for target, train in parts:
            if not len(target):
                continue
            fitted = _fit(method, base[train, j], lab[train, j], default)
            if fitted is None:
                fallbacks[code] += 1
                fallback_units[code] += len(target)
                continue
            fmap, t = fitted
            prob[target, j] = fmap(base[target, j])
            threshold[target, j] = t
        whole = _fit(method, base[has, j], lab[has, j], default)
        thresholds_all[code] = None if whole is None else round(float(whole[1]), 6)
    fold_of_doc = {groups[i]: int(fold[i]) for i in labelled}
    info = {"folds": n_folds, "labelled_units": int(len(labelled)),
            "labelled_documents": len(fold_of_doc), "unlabelled_units": int(len(unlabelled)),
            "fallbacks": {c: v for c, v in fallbacks.items() if v},
            "fallback_units": {c: v for c, v in fallback_units.items() if v},
            "thresholds_on_all_labels": thresholds_all}
    return prob, threshold, info


# -- checking probabilities -----------------------------------------------------------------------------------------

def _pairs(prob: Any, outcome: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(prob, dtype=float).ravel()
    o = np.asarray(outcome, dtype=float).ravel()
    if p.shape != o.shape:
        raise InputError(f"{p.size} probabilities for {o.size} outcomes")
    keep = ~np.isnan(p) & ~np.isnan(o)
    return p[keep], o[keep]


def brier(prob: Any, outcome: Any) -> float:
    """Mean squared difference between probability and outcome (1/0); NaN pairs left out; NaN when none is left."""
    p, o = _pairs(prob, outcome)
    return float(np.mean((p - o) ** 2)) if len(p) else float("nan")


def _bin_of(p: np.ndarray, bins: int) -> np.ndarray:
    return np.minimum((p * bins).astype(int), bins - 1)  # [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]


def reliability(prob: Any, outcome: Any, bins: int = 10) -> list[dict[str, Any]]:
    """Per equal-width bin of [0, 1]: lower, upper, n, mean_prob and frequency of the outcome (None when empty)."""
    p, o = _pairs(prob, outcome)
    which = _bin_of(p, bins)
    out = []
    for b in range(bins):
        sel = which == b
        m = int(sel.sum())
        out.append({"lower": b / bins, "upper": (b + 1) / bins, "n": m,
                    "mean_prob": float(p[sel].mean()) if m else None, "frequency": float(o[sel].mean()) if m else None})
    return out


def expected_calibration_error(prob: Any, outcome: Any, bins: int = 10) -> float:
    """Sum over equal-width bins of (share of the pairs in the bin) x |mean probability - frequency of the outcome|."""
    p, _ = _pairs(prob, outcome)
    if not len(p):
        return float("nan")
    return float(sum(r["n"] / len(p) * abs(r["mean_prob"] - r["frequency"]) for r in reliability(prob, outcome, bins)
                     if r["n"]))
