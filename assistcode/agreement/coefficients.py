"""The public agreement coefficients: pure functions of a coders x units matrix.

``data`` is coders x units: a sequence (list, tuple, NumPy array, or a DataFrame with one row per coder) of
equal-length sequences; ``None`` or NaN means the coder did not rate that unit. Values are ints, floats or
strings. Each function returns a float; where the coefficient is undefined it returns NaN and warns why.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from ..errors import AgreementError
from . import estimators as est
from ._data import NoRatings, Ratings, coerce, coerce_sets

LEVELS = ("nominal", "ordinal", "interval", "ratio", "masi", "jaccard")


class AgreementWarning(UserWarning):
    """A coefficient that is undefined or fragile for this data."""


def _defined(value: float, name: str, why: str) -> float:
    if np.isfinite(value):
        return value
    warnings.warn(f"{name} is undefined here: {why}; returning NaN", AgreementWarning, stacklevel=3)
    return float("nan")


_CHANCE_IS_ONE = "expected (chance) agreement is 1, as when every rating falls in a single category"
_ONE_CATEGORY = "there is only one category (q = 1)"
_NO_SPREAD = "expected disagreement is 0: every pairable value is the same"
NO_RATINGS = "every rating is missing (None or NaN)"

UNDEFINED_WHY = {
    "cohen_kappa": _CHANCE_IS_ONE, "scott_pi": _CHANCE_IS_ONE, "weighted_kappa": _CHANCE_IS_ONE,
    "fleiss_kappa": _CHANCE_IS_ONE, "gwet_ac1": _ONE_CATEGORY, "brennan_prediger": _ONE_CATEGORY,
    "krippendorff_alpha": _NO_SPREAD,
}
"""Why each coefficient can be undefined on data that has ratings (percent agreement and PABAK always are)."""

F = TypeVar("F", bound=Callable[..., float])


def _nan_without_ratings(fn: F) -> F:
    """Data with no rating at all: NaN and a warning, like any other undefined coefficient."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> float:
        try:
            return fn(*args, **kwargs)
        except NoRatings:
            warnings.warn(f"{fn.__name__} is undefined here: {NO_RATINGS}; returning NaN", AgreementWarning,
                          stacklevel=2)
            return float("nan")

    return wrapper  # type: ignore[return-value]


@_nan_without_ratings
def percent_agreement(data: Any, categories: Sequence[Any] | None = None) -> float:
    """Mean pairwise agreement over units with at least two ratings: for each unit, the share of ordered coder
    pairs that agree; then the mean over those units.

    >>> percent_agreement([[1, 1, 2], [1, 2, 2], [1, 2, None]])
    0.7777777777777777
    """
    return est.percent(coerce(data, categories)).value()


@_nan_without_ratings
def cohen_kappa(data: Any, categories: Sequence[Any] | None = None) -> float:
    """Cohen's (1960) kappa for exactly two coders; units missing either rating are dropped.

    >>> round(cohen_kappa([["a", "a", "b", "b"], ["a", "b", "b", "b"]]), 6)
    0.5
    """
    return _defined(est.cohen(coerce(data, categories)).value(), "cohen_kappa", _CHANCE_IS_ONE)


@_nan_without_ratings
def scott_pi(data: Any, categories: Sequence[Any] | None = None) -> float:
    """Scott's (1955) pi for exactly two coders (chance from the pooled marginals); units missing either rating
    are dropped."""
    return _defined(est.scott(coerce(data, categories)).value(), "scott_pi", _CHANCE_IS_ONE)


@_nan_without_ratings
def weighted_kappa(data: Any, weights: str = "linear", categories: Sequence[Any] | None = None) -> float:
    """Cohen's (1968) weighted kappa for exactly two coders; units missing either rating are dropped.

    Weights come from the numeric category values, declared but unused categories included:
    linear ``1 - |i - j| / (max - min)``, quadratic ``1 - (i - j)**2 / (max - min)**2``.
    """
    r = coerce(data, categories)
    return _defined(est.weighted(r, weights).value(), "weighted_kappa", _CHANCE_IS_ONE)


@_nan_without_ratings
def pabak(data: Any) -> float:
    """Prevalence- and bias-adjusted kappa (Byrt, Bishop & Carlin 1993) for exactly two coders: ``2 * po - 1``,
    which is Brennan-Prediger with q = 2. Units missing either rating are dropped."""
    return est.pabak(coerce(data)).value()


@_nan_without_ratings
def fleiss_kappa(data: Any, categories: Sequence[Any] | None = None) -> float:
    """Fleiss' (1971) kappa for any number of coders. With missing ratings it follows Gwet's generalisation
    (Handbook of Inter-Rater Reliability, 4th ed.): observed agreement over units rated two or more times, category
    shares averaged over units rated at least once. On complete data it equals classic Fleiss (1971)."""
    return _defined(est.fleiss(coerce(data, categories)).value(), "fleiss_kappa", _CHANCE_IS_ONE)


def _q(r: Ratings, categories: Sequence[Any] | None) -> int:
    return len(categories) if categories is not None else r.k


@_nan_without_ratings
def gwet_ac1(data: Any, categories: Sequence[Any] | None = None) -> float:
    """Gwet's (2008) AC1 for any number of coders, with missing ratings as in Gwet (2014).
    q, the number of categories, comes from ``categories`` when given, otherwise from the values observed."""
    r = coerce(data, categories)
    q = _q(r, categories)
    return _defined(est.ac1(r, q).value(), "gwet_ac1", _ONE_CATEGORY)


@_nan_without_ratings
def brennan_prediger(data: Any, categories: Sequence[Any] | None = None) -> float:
    """Brennan & Prediger's (1981) coefficient: chance agreement 1/q, q from ``categories`` when given,
    otherwise from the values observed; observed agreement as in Fleiss/Gwet."""
    r = coerce(data, categories)
    return _defined(est.brennan_prediger(r, _q(r, categories)).value(), "brennan_prediger", _ONE_CATEGORY)


def delta_for(level: str, r: Ratings | None = None, sets: list[frozenset] | None = None) -> est.Delta:
    """The distance function of a measurement level."""
    if level == "nominal":
        k = r.k  # type: ignore[union-attr]
        d = 1.0 - np.eye(k)
        return lambda n_k: d
    if level in ("interval", "ratio"):
        v = r.values()  # type: ignore[union-attr]
        if level == "interval":
            d = (v[:, None] - v[None, :]) ** 2
        else:
            if (v < 0).any():
                raise AgreementError("ratio alpha needs non-negative values", field="level")
            s = v[:, None] + v[None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                d = np.where(s == 0, 0.0, ((v[:, None] - v[None, :]) / np.where(s == 0, 1, s)) ** 2)
        return lambda n_k: d
    if level == "ordinal":
        k = r.k  # type: ignore[union-attr]
        idx = np.arange(k)
        lo, hi = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)

        def ordinal(n_k: np.ndarray) -> np.ndarray:
            cum = np.cumsum(n_k, axis=-1)
            between = cum[..., hi] - cum[..., lo] + n_k[..., lo]
            return (between - (n_k[..., :, None] + n_k[..., None, :]) / 2) ** 2

        return ordinal
    if level in ("masi", "jaccard"):
        assert sets is not None
        idx = np.arange(len(sets))
        d = set_distances(sets, level)(idx[:, None], idx[None, :]).reshape(len(sets), len(sets))
        return lambda n_k: d
    raise AgreementError(f"unknown level {level!r}", field="level", hint="one of " + ", ".join(LEVELS))


def set_distance(a: frozenset, b: frozenset, level: str = "masi") -> float:
    """Jaccard or MASI (Passonneau 2006) distance between two code sets; the distance of two empty sets is 0.

    MASI = 1 - J * M with M = 1 for equal sets, 2/3 when one contains the other, 1/3 when they overlap otherwise,
    0 when disjoint.
    """
    if a == b:
        return 0.0
    union = len(a | b)
    inter = len(a & b)
    jaccard = inter / union
    if level == "jaccard":
        return 1.0 - jaccard
    if inter == 0:
        m = 0.0
    elif a <= b or b <= a:
        m = 2 / 3
    else:
        m = 1 / 3
    return 1.0 - jaccard * m


def set_distances(sets: Sequence[frozenset], level: str = "masi") -> est.Distance:
    """:func:`set_distance` between code sets by index, elementwise over arrays of indices (the same floats):
    each set a bit mask over the codes, so thousands of distinct sets cost no Python loop per pair."""
    members = {m: i for i, m in enumerate(dict.fromkeys(m for s in sets for m in s))}
    words = max(1, -(-len(members) // 64))
    masks = np.zeros((len(sets), words), dtype=np.uint64)
    for i, s in enumerate(sets):
        for m in s:
            bit = members[m]
            masks[i, bit // 64] |= np.uint64(1) << np.uint64(bit % 64)
    sizes = np.array([len(s) for s in sets], dtype=np.int64)

    def by_sizes(size_a: np.ndarray, size_b: np.ndarray, inter: np.ndarray) -> np.ndarray:
        """The distance of two sets from their sizes and the size of their intersection (all it depends on)."""
        union = size_a + size_b - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            jaccard = inter / union
        if level == "jaccard":
            d = 1.0 - jaccard
        else:
            m = np.where(inter == 0, 0.0, np.where(inter == np.minimum(size_a, size_b), 2 / 3, 1 / 3))
            d = 1.0 - jaccard * m
        return np.where((inter == size_a) & (inter == size_b), 0.0, d)

    def overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if words == 1:
            return np.bitwise_count(masks[a, 0] & masks[b, 0])
        return sum(np.bitwise_count(masks[a, w] & masks[b, w]).astype(np.int64) for w in range(words))

    span = int(sizes.max()) + 1 if len(sets) else 1
    if span > 64:  # sets of many codes: the formula on every pair
        return lambda a, b: by_sizes(sizes[a], sizes[b], overlap(a, b).astype(np.int64))
    grid = np.indices((span, span, span)).reshape(3, -1)
    table = by_sizes(grid[0], grid[1], grid[2])  # every (size, size, intersection), looked up per pair
    key = sizes * span * span

    def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return table[key[a] + sizes[b] * span + overlap(a, b)]

    return distance


def distance_for(level: str, r: Ratings | None = None, sets: list[frozenset] | None = None) -> est.Distance | None:
    """Pairwise distances of a level whose distances do not depend on the marginals (all but ordinal)."""
    if level == "ordinal":
        return None
    if level in ("masi", "jaccard"):
        assert sets is not None
        return set_distances(sets, level)
    d = delta_for(level, r)(np.zeros(0))
    return lambda a, b: d[a, b]


def alpha_estimator(data: Any, level: str = "nominal", categories: Sequence[Any] | None = None) -> est.Estimator:
    if level not in LEVELS:
        raise AgreementError(f"unknown level {level!r}", field="level", hint="one of " + ", ".join(LEVELS))
    if level in ("masi", "jaccard"):
        codes, sets = coerce_sets(data)
        return est.alpha_fixed(codes, len(sets), set_distances(sets, level))
    r = coerce(data, categories)
    distance = distance_for(level, r)
    if distance is not None:
        return est.alpha_fixed(r.codes, r.k, distance)
    return est.alpha(r.codes, r.k, delta_for(level, r))


@_nan_without_ratings
def krippendorff_alpha(data: Any, level: str = "nominal", categories: Sequence[Any] | None = None) -> float:
    """Krippendorff's alpha by the coincidence-matrix formulation (Krippendorff 2011).

    Units with fewer than two values drop out. Levels: nominal, ordinal (distances from the pairable-value
    marginals, in category order), interval, ratio (``((c - k) / (c + k))**2``), and for set-valued cells masi
    (Passonneau 2006, unsquared) and jaccard, where the empty set means "coded, no code applies".

    Krippendorff (2011), 4 coders x 12 units (``None`` = missing):

    >>> data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    ...         [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    ...         [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    ...         [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]]
    >>> [round(krippendorff_alpha(data, level), 3) for level in ("nominal", "ordinal", "interval", "ratio")]
    [0.743, 0.815, 0.849, 0.797]
    """
    value = alpha_estimator(data, level, categories).value()
    return _defined(value, "krippendorff_alpha", _NO_SPREAD)
