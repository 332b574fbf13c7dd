"""One call for a coefficient with its uncertainty: :func:`estimate` -> :class:`Estimate`."""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import AgreementError
from . import estimators as est
from ._data import NoRatings, Ratings, coerce
from .coefficients import NO_RATINGS, UNDEFINED_WHY, AgreementWarning, alpha_estimator
from .uncertainty import bootstrap_interval, gwet_se, kappa_se, pabak_se

STATISTICS = ("percent_agreement", "cohen_kappa", "weighted_kappa", "scott_pi", "pabak", "fleiss_kappa",
              "gwet_ac1", "brennan_prediger", "krippendorff_alpha")

CONVENTIONS = {
    "percent_agreement": "mean pairwise agreement over units rated twice or more",
    "cohen_kappa": "two coders; units missing either rating dropped",
    "weighted_kappa": "two coders; weights from the category values",
    "scott_pi": "two coders; chance from pooled marginals",
    "pabak": "two coders; 2*po - 1",
    "fleiss_kappa": "Gwet's generalisation for missing ratings",
    "gwet_ac1": "Gwet (2014), missing ratings allowed",
    "brennan_prediger": "chance = 1/q",
    "krippendorff_alpha": "coincidence matrix, Krippendorff (2011)",
}
ANALYTIC = {
    "percent_agreement": "Gwet (2014)", "fleiss_kappa": "Gwet (2014)", "gwet_ac1": "Gwet (2014)",
    "brennan_prediger": "Gwet (2014)", "cohen_kappa": "Fleiss, Cohen & Everitt (1969)",
    "weighted_kappa": "Fleiss, Cohen & Everitt (1969)", "pabak": "binomial",
}


@dataclass(frozen=True)
class Estimate:
    """A coefficient, its bootstrap interval, and what it was computed on."""

    statistic: str
    value: float
    low: float
    high: float
    level: float
    ci_method: str
    n_boot: int
    clustered: bool
    se_boot: float
    se: float | None
    """Analytic standard error, where a standard formula exists."""
    se_method: str | None
    n_units: int
    """Units that enter the coefficient (for two-coder statistics: rated by both)."""
    n_coders: int
    convention: str
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def estimator_for(statistic: str, data: Any, *, level: str = "nominal", weights: str = "linear",
                  categories: Sequence[Any] | None = None, ratings: Ratings | None = None) -> est.Estimator:
    if statistic == "krippendorff_alpha":
        return alpha_estimator(data, level, categories)
    r = ratings if ratings is not None else coerce(data, categories)
    q = len(categories) if categories is not None else r.k
    builders = {
        "percent_agreement": lambda: est.percent(r),
        "cohen_kappa": lambda: est.cohen(r),
        "weighted_kappa": lambda: est.weighted(r, weights),
        "scott_pi": lambda: est.scott(r),
        "pabak": lambda: est.pabak(r),
        "fleiss_kappa": lambda: est.fleiss(r),
        "gwet_ac1": lambda: est.ac1(r, q),
        "brennan_prediger": lambda: est.brennan_prediger(r, q),
    }
    if statistic not in builders:
        raise AgreementError(f"unknown statistic {statistic!r}", hint="one of " + ", ".join(STATISTICS))
    return builders[statistic]()


def _analytic(statistic: str, r: Ratings, weights: str, categories: Sequence[Any] | None) -> float | None:
    if statistic not in ANALYTIC:
        return None
    with np.errstate(all="ignore"):
        if statistic in ("cohen_kappa", "weighted_kappa"):
            w = est.kappa_weights(r, weights) if statistic == "weighted_kappa" else None
            return kappa_se(r, w)
        if statistic == "pabak":
            return pabak_se(r)
        q = len(categories) if categories is not None else r.k
        return gwet_se(r, statistic, q)


def estimate(statistic: str, data: Any, *, level: str = "nominal", weights: str = "linear",
             categories: Sequence[Any] | None = None, n_boot: int = 1000, ci_level: float = 0.95,
             ci_method: str = "bca", clusters: Sequence[Any] | None = None, seed: int | None = 0) -> Estimate:
    """The coefficient with a bootstrap interval over units (clustered when ``clusters`` gives each unit's
    cluster, e.g. its document) and an analytic standard error where one exists."""
    n_coders = len(data) if not hasattr(data, "shape") else data.shape[0]
    convention = CONVENTIONS.get(statistic, "") + (f"; level {level}" if statistic == "krippendorff_alpha" else "")
    nan = float("nan")
    try:
        # coerced once, for the coefficient and its analytic standard error (alpha coerces its own way: sets, levels)
        r = coerce(data, categories) if statistic != "krippendorff_alpha" else None
        e = estimator_for(statistic, data, level=level, weights=weights, categories=categories, ratings=r)
    except NoRatings:
        if statistic not in STATISTICS:
            raise AgreementError(f"unknown statistic {statistic!r}", hint="one of " + ", ".join(STATISTICS)) from None
        warnings.warn(f"{statistic} is undefined here: {NO_RATINGS}; returning NaN", AgreementWarning, stacklevel=2)
        return Estimate(statistic, nan, nan, nan, ci_level, ci_method, n_boot, clusters is not None, nan, None,
                        ANALYTIC.get(statistic), 0, n_coders, convention, f"undefined: {NO_RATINGS}")
    value = e.value()
    if n_boot > 0:
        iv = bootstrap_interval(e, n_boot=n_boot, level=ci_level, method=ci_method,
                                clusters=None if clusters is None else np.asarray(clusters), seed=seed)
        low, high, se_boot, undefined = iv.low, iv.high, iv.se, iv.n_undefined
    else:
        low = high = se_boot = float("nan")
        undefined = 0
    se = _analytic(statistic, r, weights, categories) if r is not None else None
    note = f"{undefined} of {n_boot} resamples undefined" if undefined else ""
    if not np.isfinite(value):
        why = UNDEFINED_WHY.get(statistic, "the coefficient cannot be computed on this data")
        warnings.warn(f"{statistic} is undefined here: {why}; returning NaN", AgreementWarning, stacklevel=2)
        note = f"undefined: {why}"
    return Estimate(statistic, value if np.isfinite(value) else float("nan"), low, high, ci_level, ci_method, n_boot,
                    clusters is not None, se_boot, se, ANALYTIC.get(statistic), e.n_units, n_coders,
                    convention, note)
