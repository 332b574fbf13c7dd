"""Uncertainty of agreement coefficients: bootstrap intervals (percentile and BCa) over units, optionally clustered
(e.g. by document), and analytic standard errors where a standard formula exists.

Analytic standard errors:
- Fleiss' kappa, Gwet's AC1, Brennan-Prediger and percent agreement: Gwet (2014, Handbook of Inter-Rater
  Reliability, 4th ed.), the linearised variance over subjects, without finite-population correction;
- Cohen's kappa and weighted kappa: Fleiss, Cohen & Everitt (1969), large-sample variance;
- PABAK: ``2 * sqrt(po * (1 - po) / n)``.
Scott's pi and Krippendorff's alpha have no standard closed form here: use the bootstrap (Krippendorff's advice).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import scipy.sparse as sp
from scipy.special import ndtr, ndtri

from ..errors import AgreementError
from . import estimators as est
from ._data import Ratings

_MAX_CELLS = 4_000_000  # weights per batch: B_batch * units


@dataclass(frozen=True)
class Interval:
    """A bootstrap confidence interval."""

    low: float
    high: float
    method: str
    level: float
    n_boot: int
    n_undefined: int
    """Replicates where the coefficient was undefined (e.g. a resample with one category): left out."""
    se: float
    """Standard deviation of the defined replicates."""
    clustered: bool


def _counts(rng: np.random.Generator, n: int, batch: int) -> np.ndarray:
    """How often each of ``n`` units (or clusters) is drawn in each of ``batch`` resamples: (batch, n)."""
    draws = rng.integers(0, n, size=(batch, n))
    offsets = (np.arange(batch) * n)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=batch * n).reshape(batch, n).astype(np.float64)


def _weights(rng: np.random.Generator, n_units: int, batch: int, clusters: np.ndarray | None, n_clusters: int) -> np.ndarray:
    """Unit weights of ``batch`` resamples: each unit's draws, or its cluster's."""
    if clusters is None:
        return _counts(rng, n_units, batch)
    return _counts(rng, n_clusters, batch)[:, clusters]


class _Groups:
    """An estimator's statistics summed per cluster (or per unit, unclustered): a resample's sums are then the draw
    counts of the groups times these group sums, one matrix product for a whole batch of resamples, and the
    jackknife leaves one group out of the total. A quadratic part (alpha's expected disagreement) is ``w' G w``
    with G the groups x groups form (computed once) where there are clusters; per unit it stays ``x' d x`` of the
    sums, since a units x units matrix would not fit."""

    def __init__(self, estimator: est.Estimator, ids: np.ndarray | None, n_groups: int) -> None:
        self.e = estimator
        stats = estimator.stats
        self.clustered = ids is not None
        if ids is not None:
            member = sp.csr_matrix((np.ones(len(ids)), (ids, np.arange(len(ids)))), shape=(n_groups, len(ids)))
            stats = (member @ stats).tocsr()
        self.stats = stats
        self.n = stats.shape[0]
        self._dense = stats.toarray() if self.n * stats.shape[1] <= _MAX_CELLS else None
        self._gram: np.ndarray | None = None
        quad = estimator.quadratic
        # w' G w costs groups^2 per resample, x' d x of the sums k^2: the groups' form only where k is larger
        self.use_gram = quad is not None and self.clustered and quad.k > self.n

    @property
    def gram(self) -> np.ndarray:
        quad = self.e.quadratic
        assert quad is not None
        if self._gram is None:
            self._gram = quad.gram(self.stats[:, quad.offset:quad.offset + quad.k])
        return self._gram

    def sums(self, counts: np.ndarray) -> np.ndarray:
        if self._dense is not None:
            return counts @ self._dense
        return np.asarray((self.stats.T @ counts.T).T)

    def values(self, counts: np.ndarray) -> np.ndarray:
        """The coefficient under each row of group counts (batch, groups) -> (batch,)."""
        sums = self.sums(counts)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.use_gram:
                assert self.e.finish_q is not None
                return self.e.finish_q(sums, ((counts @ self.gram) * counts).sum(1))
            return self.e.finish(sums)

    def leave_one_out(self) -> np.ndarray:
        total = self.e.sums()
        quad = self.e.quadratic
        if quad is not None:
            assert self.e.finish_q is not None
            rows = self.stats[:, quad.offset:quad.offset + quad.k]
            marginals = total[quad.offset:quad.offset + quad.k]
            own = np.diag(self.gram) if self.use_gram else quad.self_terms(rows)
            towards = quad.times(marginals)
            forms = towards @ marginals - 2 * np.asarray(rows @ towards).ravel() + own
        chunk = max(1, _MAX_CELLS // max(self.stats.shape[1], 1))
        out = np.empty(self.n)
        with np.errstate(divide="ignore", invalid="ignore"):
            for start in range(0, self.n, chunk):
                block = total[None, :] - self.stats[start:start + chunk].toarray()
                end = start + len(block)
                out[start:end] = (self.e.finish_q(block, forms[start:end]) if quad is not None  # type: ignore[misc]
                                  else self.e.finish(block))
        return out


def _groups(estimator: est.Estimator, clusters: np.ndarray | None) -> _Groups:
    ids, n = _cluster_index(estimator, clusters)
    return _Groups(estimator, ids, n)


_EVAL_CELLS = 16_000_000
"""Draw counts (or sums) evaluated at once: every resample of a bootstrap over 2,000 documents in one product."""
_DRAWS: dict[tuple[int, int, int, int], np.ndarray] = {}
"""The last few draws by (seed, resamples, groups, batch): an evaluation bootstraps many coefficients over the same
documents with the same seed, and they share the draws (as they always did, drawn once instead of each time)."""


def _counts_stream(rng: np.random.Generator, n: int, n_boot: int, batch: int) -> Iterator[np.ndarray]:
    """The draw counts of ``n_boot`` resamples in chunks of whole batches. Batches keep the sizes the unit-weight
    version drew in (so a seed gives the resamples it always gave); chunks group them for one product each."""
    per_chunk = max(batch, (_EVAL_CELLS // max(n, 1)) // batch * batch)
    for start in range(0, n_boot, per_chunk):
        stop = min(n_boot, start + per_chunk)
        yield np.concatenate([_counts(rng, n, min(batch, stop - b)) for b in range(start, stop, batch)])


def _draws(seed: int | np.random.Generator | None, n: int, n_boot: int, batch: int) -> Iterator[np.ndarray]:
    if not isinstance(seed, (int, np.integer)) or n * n_boot > _EVAL_CELLS:
        yield from _counts_stream(np.random.default_rng(seed), n, n_boot, batch)
        return
    key = (int(seed), n, n_boot, batch)
    if key not in _DRAWS:
        if len(_DRAWS) >= 4:
            _DRAWS.pop(next(iter(_DRAWS)))
        _DRAWS[key] = np.concatenate(list(_counts_stream(np.random.default_rng(seed), n, n_boot, batch)))
        _DRAWS[key].setflags(write=False)
    yield _DRAWS[key]


def _draw(groups: _Groups, estimator: est.Estimator, n_boot: int, seed: int | np.random.Generator | None) -> np.ndarray:
    """``n_boot`` values from one stream of draws, a chunk of resamples per product over groups."""
    batch = max(1, min(n_boot, _MAX_CELLS // max(estimator.rows, 1)))
    width = groups.stats.shape[1]
    out = np.empty(n_boot)
    start = 0
    for counts in _draws(seed, groups.n, n_boot, batch):
        step = max(1, _EVAL_CELLS // max(width, groups.n, 1))
        for i in range(0, len(counts), step):
            part = counts[i:i + step]
            out[start:start + len(part)] = groups.values(part)
            start += len(part)
    return out


def replicates(estimator: est.Estimator, n_boot: int = 1000, clusters: np.ndarray | None = None,
               seed: int | np.random.Generator | None = None) -> np.ndarray:
    """``n_boot`` bootstrap values of the coefficient (NaN where undefined)."""
    return _draw(_groups(estimator, clusters), estimator, n_boot, seed)


def _cluster_index(estimator: est.Estimator, clusters: np.ndarray | None) -> tuple[np.ndarray | None, int]:
    if clusters is None:
        return None, estimator.rows
    clusters = np.asarray(clusters)
    if estimator.units is not None:
        clusters = clusters[estimator.units]
    if len(clusters) != estimator.rows:
        raise AgreementError(f"clusters has {len(clusters)} entries for {estimator.rows} units")
    labels, ids = np.unique(clusters, return_inverse=True)
    return ids, len(labels)


def jackknife(estimator: est.Estimator, clusters: np.ndarray | None = None) -> np.ndarray:
    """Leave-one-out values: one unit (or one cluster) at a time."""
    return _groups(estimator, clusters).leave_one_out()


def _check_options(level: float, method: str) -> None:
    if not 0 < level < 1:
        raise AgreementError(f"confidence level {level} is not between 0 and 1", field="level")
    if method not in ("percentile", "bca"):
        raise AgreementError(f"unknown interval method {method!r}", field="method", hint="'percentile' or 'bca'")


def bootstrap_interval(estimator: est.Estimator, *, n_boot: int = 1000, level: float = 0.95, method: str = "bca",
                       clusters: np.ndarray | None = None, seed: int | np.random.Generator | None = None) -> Interval:
    """Percentile or BCa (Efron 1987) bootstrap interval over units (or clusters of units)."""
    _check_options(level, method)
    theta = estimator.value()
    groups = _groups(estimator, clusters)
    boots = _draw(groups, estimator, n_boot, seed)
    ok = boots[np.isfinite(boots)]
    undefined = n_boot - len(ok)
    if len(ok) < 2 or not np.isfinite(theta):
        return Interval(float("nan"), float("nan"), method, level, n_boot, undefined, float("nan"), clusters is not None)
    jack = groups.leave_one_out() if method == "bca" else None
    low, high = bounds(theta, ok, jack, level, method)
    return Interval(low, high, method, level, n_boot, undefined, float(ok.std(ddof=1)), clusters is not None)


def bounds(theta: float, boots: np.ndarray, jack: np.ndarray | None, level: float, method: str) -> tuple[float, float]:
    """The interval's ends from the defined replicates ``boots``: their ``(1 - level) / 2`` and ``(1 + level) / 2``
    quantiles (percentile), or BCa's adjusted quantiles (bias correction from ``theta``, acceleration from the
    jackknife values ``jack``). One place for both, so a coverage study can take both from the same resamples."""
    probs = np.array([(1 - level) / 2, 1 - (1 - level) / 2])
    if method == "bca":
        if jack is None:
            raise AgreementError("a BCa interval needs the jackknife values")
        probs = _bca_probs(theta, boots, jack, probs)
    low, high = np.quantile(boots, probs)
    return float(low), float(high)


@dataclass(frozen=True)
class PairedDifference:
    """``a - b`` of one coefficient measured twice on the same units (two models against one gold), with a paired
    bootstrap interval: every replicate draws the same units for both."""

    value: float
    low: float
    high: float
    se: float
    method: str
    level: float
    n_boot: int
    n_undefined: int
    n_units: int

    @property
    def distinguishable(self) -> bool:
        """The interval excludes zero."""
        return bool(np.isfinite(self.low) and (self.low > 0 or self.high < 0))


def paired_difference(a: est.Estimator, b: est.Estimator, *, n_boot: int = 1000, level: float = 0.95,
                      method: str = "bca", clusters: np.ndarray | None = None,
                      seed: int | np.random.Generator | None = None) -> PairedDifference:
    """Bootstrap the difference of two estimators over the same units (each must keep every unit: pass units that
    all three coders rated). Percentile or BCa, with the jackknife of the difference for the acceleration."""
    _check_options(level, method)
    n = a.stats.shape[0]
    if b.stats.shape[0] != n or a.units is not None or b.units is not None:
        raise AgreementError("a paired difference needs both coefficients on the same units",
                             hint="keep the units every coder rated")
    groups_a, groups_b = _groups(a, clusters), _groups(b, clusters)
    theta = a.value() - b.value()
    batch = max(1, min(n_boot, _MAX_CELLS // max(n, 1)))
    boots = np.empty(n_boot)
    start = 0
    for counts in _draws(seed, groups_a.n, n_boot, batch):
        boots[start:start + len(counts)] = groups_a.values(counts) - groups_b.values(counts)
        start += len(counts)
    ok = boots[np.isfinite(boots)]
    nan = float("nan")
    if len(ok) < 2 or not np.isfinite(theta):
        return PairedDifference(theta, nan, nan, nan, method, level, n_boot, n_boot - len(ok), n)
    jack = jackknife(a, clusters) - jackknife(b, clusters) if method == "bca" else None
    low, high = bounds(theta, ok, jack, level, method)
    return PairedDifference(float(theta), low, high, float(ok.std(ddof=1)), method, level, n_boot,
                            n_boot - len(ok), n)


def _bca_probs(theta: float, boots: np.ndarray, jack: np.ndarray, probs: np.ndarray) -> np.ndarray:
    share = (np.sum(boots < theta) + 0.5 * np.sum(boots == theta)) / len(boots)
    if share <= 0 or share >= 1:
        return probs  # the bias correction is infinite: fall back to the percentile interval
    z0 = ndtri(share)
    jack = jack[np.isfinite(jack)]
    if jack.size < 2:  # no acceleration can be estimated: bias-corrected percentile only
        jack = np.zeros(2)
    diff = jack.mean() - jack
    denom = 6 * (diff**2).sum() ** 1.5
    a = (diff**3).sum() / denom if denom > 0 else 0.0
    z = ndtri(probs)
    return ndtr(z0 + (z0 + z) / (1 - a * (z0 + z)))


# -- analytic standard errors ---------------------------------------------------------------------------------------
def _gwet_parts(r: Ratings) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float, np.ndarray]:
    counts, r_u = est.category_counts(r)
    keep = r_u >= 1
    n_uk = counts.toarray()[keep]
    r_u = r_u[keep]
    n = len(r_u)
    two = r_u >= 2
    n2 = two.sum()
    den = r_u * (r_u - 1)
    pa_u = np.where(two, ((n_uk * (n_uk - 1)).sum(1)) / np.where(den == 0, 1, den), 0.0)
    pa = pa_u[two].sum() / n2
    pi = (n_uk / r_u[:, None]).sum(0) / n
    return n_uk, r_u, pa_u, pa, n / n2, pi


def gwet_se(r: Ratings, statistic: str, q: int | None = None) -> float:
    """Gwet's (2014) standard error of fleiss_kappa, gwet_ac1, brennan_prediger or percent_agreement."""
    n_uk, r_u, pa_u, pa, scale, pi = _gwet_parts(r)
    n = len(r_u)
    two = (r_u >= 2).astype(float)
    q = q if q is not None else r.k
    if statistic == "percent_agreement":
        value_u = scale * pa_u * two
        value = pa
        corrected = value_u
    else:
        if statistic == "fleiss_kappa":
            pe = float((pi**2).sum())
            pe_u = (n_uk @ pi) / r_u
        elif statistic == "gwet_ac1":
            pe = float((pi * (1 - pi)).sum() / (q - 1))
            pe_u = (n_uk @ (1 - pi)) / r_u / (q - 1)
        elif statistic == "brennan_prediger":
            pe = 1.0 / q
            pe_u = np.full(n, pe)
        else:
            raise AgreementError(f"no Gwet standard error for {statistic}")
        value = (pa - pe) / (1 - pe)
        value_u = scale * (pa_u - pe * two) / (1 - pe)
        corrected = value_u - 2 * (1 - value) * (pe_u - pe) / (1 - pe)
    return float(np.sqrt(((corrected - value) ** 2).sum() / (n * (n - 1))))


def kappa_se(r: Ratings, weights: np.ndarray | None = None) -> float:
    """Fleiss, Cohen & Everitt (1969) large-sample standard error of (weighted) kappa for two coders."""
    x, y, _ = est.paired_ratings(r, "kappa")
    k = r.k
    w = np.eye(k) if weights is None else weights
    p = np.bincount(x * k + y, minlength=k * k).reshape(k, k) / len(x)
    rows, cols = p.sum(1), p.sum(0)
    po = (w * p).sum()
    pe = rows @ w @ cols
    kappa = (po - pe) / (1 - pe)
    w_row = w @ cols  # mean weight of row category i against the column marginals
    w_col = rows @ w
    inner = w - (w_row[:, None] + w_col[None, :]) * (1 - kappa)
    var = ((p * inner**2).sum() - (kappa - pe * (1 - kappa)) ** 2) / (len(x) * (1 - pe) ** 2)
    return float(np.sqrt(max(var, 0.0)))  # rounding can leave -1e-17 where the variance is 0


def pabak_se(r: Ratings) -> float:
    x, y, _ = est.paired_ratings(r, "pabak")
    po = float((x == y).mean())
    return float(2 * np.sqrt(po * (1 - po) / len(x)))
