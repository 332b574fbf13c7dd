"""Every coefficient as per-unit sufficient statistics plus a function of their sums.

A coefficient over units is ``finish(sum_u stats[u])``. The same two pieces give the point estimate (all weights
1), bootstrap replicates (weights = how often each unit was drawn) and jackknife values (sums less one unit's;
:func:`assistcode.agreement.uncertainty.jackknife`), so the
uncertainty is computed from exactly the code that computes the value.

``stats`` is a sparse units x m matrix; ``finish`` maps sums of shape (..., m) to values of shape (...).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Iterator

import numpy as np
import scipy.sparse as sp

from ..errors import AgreementError
from ._data import Ratings

Finish = Callable[[np.ndarray], np.ndarray]
Distance = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Distances between categories, elementwise over broadcastable arrays of category indices."""

_BLOCK_CELLS = 4_000_000
"""Entries of a distance matrix computed at once: a large one (thousands of code sets) is never held whole."""
_DENSE_CELLS = 50_000_000
"""Distance matrices up to this many entries (400 MB: about 7,000 distinct code sets) are computed once and kept
with their estimator (the point estimate, the documents form and the jackknife then share them)."""


@dataclass(frozen=True)
class Quadratic:
    """The part of a coefficient that is a quadratic form ``x' d x`` of its sums (alpha's expected disagreement:
    ``x`` the pairable-value marginals, columns ``offset:offset + k`` of the sums, ``d`` the k x k distances).

    A quadratic form of a weighted sum of groups is ``w' G w`` with ``G = R d R'`` over the groups' statistics R, so
    a bootstrap over documents costs one product with a documents x documents matrix, whatever k is."""

    k: int
    distance: Distance
    offset: int = 1

    @cached_property
    def _whole(self) -> np.ndarray | None:
        """d itself, where it is small enough to keep (up to _DENSE_CELLS entries)."""
        if self.k * self.k > _DENSE_CELLS:
            return None
        whole = np.empty((self.k, self.k))
        everything = np.arange(self.k)[None, :]
        step = max(1, _BLOCK_CELLS // max(self.k, 1))
        for start in range(0, self.k, step):  # blocks of whole rows: contiguous writes
            rows = np.arange(start, min(self.k, start + step))
            whole[rows] = self.distance(rows[:, None], everything)
        return whole

    def _blocks(self) -> Iterator[tuple[np.ndarray | slice, np.ndarray]]:
        if self._whole is not None:
            yield slice(None), self._whole
            return
        yield from self._computed()

    def _computed(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rows = np.arange(self.k)[:, None]
        step = max(1, _BLOCK_CELLS // max(self.k, 1))
        for start in range(0, self.k, step):
            cols = np.arange(start, min(self.k, start + step))
            yield cols, np.asarray(self.distance(rows, cols[None, :]), dtype=np.float64)

    def times(self, x: np.ndarray | sp.spmatrix) -> np.ndarray:
        """``x @ d`` for x of shape (..., k), dense or sparse (rows x k). The last vector's product is kept: the
        point estimate and the jackknife both need it of the same marginals."""
        if isinstance(x, np.ndarray) and x.ndim == 1:
            last = self.__dict__.get("_last")
            if last is not None and np.array_equal(last[0], x):
                return last[1]
            out = self._times(x)
            out.setflags(write=False)
            self.__dict__["_last"] = (x.copy(), out)
            return out
        return self._times(x)

    def _times(self, x: np.ndarray | sp.spmatrix) -> np.ndarray:
        out = np.empty(x.shape[:-1] + (self.k,) if not sp.issparse(x) else (x.shape[0], self.k))
        for cols, block in self._blocks():
            out[..., cols] = np.asarray(x @ block)
        return out

    def form(self, x: np.ndarray) -> np.ndarray:
        """``x' d x`` over the last axis."""
        return (self.times(x) * x).sum(-1)

    def gram(self, rows: sp.spmatrix) -> np.ndarray:
        """``R d R'`` for sparse statistics R (groups x k): groups x groups, dense."""
        return np.asarray((rows @ self.times(rows).T))

    def self_terms(self, rows: sp.spmatrix) -> np.ndarray:
        """The diagonal of ``R d R'`` from each row's own entries (rows with few entries: units)."""
        r = sp.csr_matrix(rows)
        r.sum_duplicates()
        length = np.diff(r.indptr)
        if int((length**2).sum()) > _BLOCK_CELLS:  # rows with many entries (documents): through the product
            return np.asarray(r.multiply(self.times(r)).sum(axis=1)).ravel()
        row = np.repeat(np.arange(r.shape[0]), length**2)
        first = np.repeat(r.indptr[:-1], length**2)
        within = np.arange(row.size) - np.repeat(np.concatenate([[0], np.cumsum(length**2)[:-1]]), length**2)
        width = np.repeat(length, length**2)
        p, q = first + within // np.maximum(width, 1), first + within % np.maximum(width, 1)
        values = r.data[p] * r.data[q] * np.asarray(self.distance(r.indices[p], r.indices[q]), dtype=np.float64)
        return np.bincount(row, weights=values, minlength=r.shape[0])


@dataclass(frozen=True)
class Estimator:
    """A coefficient ready to evaluate under any unit weights."""

    name: str
    build_stats: Callable[[], sp.csr_matrix]
    """Builds the per-unit statistics; called only when resampling needs them (the point estimate uses
    ``totals`` where given)."""
    finish: Finish
    totals: np.ndarray | None = None
    """The plain sums, where a faster (and exact) route than ``stats.sum(0)`` exists."""
    units: np.ndarray | None = None
    """Indices (into the caller's units) of the rows of ``stats``, where units were dropped."""
    n_units: int = 0
    """Units that enter the coefficient: those with two or more ratings."""
    n_rows: int | None = None
    """Rows of ``stats`` (known without building them)."""
    quadratic: Quadratic | None = None
    """Where ``finish`` needs a quadratic form of the sums: the form, and ``finish_q(sums, form)``, the rest."""
    finish_q: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None

    @cached_property
    def stats(self) -> sp.csr_matrix:
        return self.build_stats()

    @property
    def rows(self) -> int:
        return self.n_rows if self.n_rows is not None else self.stats.shape[0]

    def sums(self) -> np.ndarray:
        if self.totals is not None:
            return self.totals
        return np.asarray(self.stats.sum(axis=0)).ravel()

    def value(self) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(self.finish(self.sums()))

    def weighted(self, weights: np.ndarray) -> np.ndarray:
        """Values under each row of unit weights (shape (B, units)) -> (B,)."""
        sums = np.asarray((self.stats.T @ weights.T).T)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.finish(sums)


# -- two coders -----------------------------------------------------------------------------------------------------
def paired_ratings(r: Ratings, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if r.n_coders != 2:
        raise AgreementError(f"{name} takes exactly two coders; got {r.n_coders}",
                             hint="use fleiss_kappa, gwet_ac1 or krippendorff_alpha for more")
    x, y = r.codes
    if r.complete:
        return x, y, None
    both = (x >= 0) & (y >= 0)
    if both.all():
        return x, y, None
    keep = np.flatnonzero(both)
    if keep.size == 0:
        raise AgreementError(f"{name}: no unit was rated by both coders")
    return x[keep], y[keep], keep


def joint_estimator(r: Ratings, name: str, finish_joint: Callable[[np.ndarray], np.ndarray]) -> Estimator:
    """Two-coder statistics are functions of the joint table: per unit, a one-hot over its K x K cell."""
    x, y, keep = paired_ratings(r, name)
    k = r.k
    cell = x * k + y
    totals = np.bincount(cell, minlength=k * k).astype(np.float64)

    def stats() -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(len(cell)), (np.arange(len(cell)), cell)), shape=(len(cell), k * k))

    def finish(sums: np.ndarray) -> np.ndarray:
        joint = sums.reshape(sums.shape[:-1] + (k, k))
        n = joint.sum(axis=(-2, -1))
        return finish_joint(joint / n[..., None, None])

    return Estimator(name, stats, finish, totals, keep, len(cell), len(cell))


def _trace(p: np.ndarray) -> np.ndarray:
    return np.trace(p, axis1=-2, axis2=-1)


def cohen(r: Ratings) -> Estimator:
    def f(p: np.ndarray) -> np.ndarray:
        po = _trace(p)
        pe = (p.sum(-1) * p.sum(-2)).sum(-1)
        return (po - pe) / (1 - pe)

    return joint_estimator(r, "cohen_kappa", f)


def scott(r: Ratings) -> Estimator:
    def f(p: np.ndarray) -> np.ndarray:
        po = _trace(p)
        pi = (p.sum(-1) + p.sum(-2)) / 2
        pe = (pi**2).sum(-1)
        return (po - pe) / (1 - pe)

    return joint_estimator(r, "scott_pi", f)


def kappa_weights(r: Ratings, weights: str) -> np.ndarray:
    """Agreement weights from the numeric category values (declared but unused categories included)."""
    values = r.values()
    span = values.max() - values.min()
    if span == 0:
        return np.ones((r.k, r.k))
    diff = np.abs(values[:, None] - values[None, :]) / span
    if weights == "linear":
        return 1 - diff
    if weights == "quadratic":
        return 1 - diff**2
    raise AgreementError(f"unknown weights {weights!r}", field="weights", hint="'linear' or 'quadratic'")


def weighted(r: Ratings, weights: str) -> Estimator:
    w = kappa_weights(r, weights)

    def f(p: np.ndarray) -> np.ndarray:
        po = (p * w).sum((-2, -1))
        pe = np.einsum("...i,ij,...j->...", p.sum(-1), w, p.sum(-2))
        return (po - pe) / (1 - pe)

    return joint_estimator(r, "weighted_kappa", f)


def pabak(r: Ratings) -> Estimator:
    return joint_estimator(r, "pabak", lambda p: 2 * _trace(p) - 1)


# -- any number of coders: Fleiss, Gwet, Brennan-Prediger, percent agreement ---------------------------------------
def category_counts(r: Ratings) -> tuple[sp.csr_matrix, np.ndarray]:
    c, u = r.codes.shape
    valid = r.codes >= 0
    units = np.broadcast_to(np.arange(u), (c, u))[valid]
    counts = sp.csr_matrix((np.ones(units.size), (units, r.codes[valid])), shape=(u, r.k))
    counts.sum_duplicates()
    return counts, np.asarray(counts.sum(axis=1)).ravel()


def _exact_totals(r: Ratings) -> np.ndarray:
    """The sums of :func:`multi_estimator`'s per-unit statistics, computed per group of units with the same number
    of ratings from integer counts: fast (no units x categories table) and exact up to one division per group."""
    codes = r.codes
    present = codes >= 0
    r_u = present.sum(axis=0)
    agree = np.zeros(codes.shape[1], dtype=np.int64)  # agreeing unordered coder pairs per unit
    for i in range(codes.shape[0]):
        for j in range(i + 1, codes.shape[0]):
            agree += (codes[i] == codes[j]) & present[i]
    totals = np.zeros(3 + r.k)
    for m in np.unique(r_u):
        if m == 0:
            continue
        group = r_u == m
        counts = np.bincount(codes[:, group][present[:, group]], minlength=r.k)
        totals[2:2 + r.k] += counts / m
        totals[-1] += group.sum()
        if m >= 2:
            totals[0] += 2 * int(agree[group].sum()) / (m * (m - 1))
            totals[1] += group.sum()
    return totals


def multi_estimator(r: Ratings, name: str, finish_pa_pi: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Estimator:
    """Per unit: [pairwise agreement if rated twice or more, rated twice or more, n_uk / r_u, rated at all].

    ``pa`` is the mean pairwise agreement over units with two or more ratings; ``pi_k`` the mean share of
    category k over units with any rating (Gwet 2014, for missing ratings)."""

    def stats() -> sp.csr_matrix:
        counts, r_u = category_counts(r)
        two = (r_u >= 2).astype(np.float64)
        one = (r_u >= 1).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            agree = np.asarray(counts.multiply(counts).sum(axis=1)).ravel() - r_u
            a_u = np.where(two > 0, agree / (r_u * (r_u - 1)), 0.0)
            shares = sp.diags(np.where(r_u > 0, 1.0 / np.maximum(r_u, 1), 0.0)) @ counts
        return sp.hstack([sp.csr_matrix((a_u * two)[:, None]), sp.csr_matrix(two[:, None]), shares,
                          sp.csr_matrix(one[:, None])], format="csr")

    k = r.k

    def finish(sums: np.ndarray) -> np.ndarray:
        pa = sums[..., 0] / sums[..., 1]
        pi = sums[..., 2:2 + k] / sums[..., -1:]
        return finish_pa_pi(pa, pi)

    totals = _exact_totals(r)
    return Estimator(name, stats, finish, totals, None, int(totals[1]), r.codes.shape[1])


def percent(r: Ratings) -> Estimator:
    return multi_estimator(r, "percent_agreement", lambda pa, pi: pa)


def fleiss(r: Ratings) -> Estimator:
    def f(pa: np.ndarray, pi: np.ndarray) -> np.ndarray:
        pe = (pi**2).sum(-1)
        return (pa - pe) / (1 - pe)

    return multi_estimator(r, "fleiss_kappa", f)


def ac1(r: Ratings, q: int) -> Estimator:
    def f(pa: np.ndarray, pi: np.ndarray) -> np.ndarray:
        pe = (pi * (1 - pi)).sum(-1) / (q - 1) if q > 1 else np.ones_like(pa)
        return (pa - pe) / (1 - pe)

    return multi_estimator(r, "gwet_ac1", f)


def brennan_prediger(r: Ratings, q: int) -> Estimator:
    pe = 1.0 / q if q > 0 else 1.0
    return multi_estimator(r, "brennan_prediger", lambda pa, pi: (pa - pe) / (1 - pe))


# -- Krippendorff's alpha -----------------------------------------------------------------------------------------
Delta = Callable[[np.ndarray], np.ndarray]
"""Distance matrix from the pairable-value marginals n_k (ordinal needs them; the rest ignore them)."""


def _coincidence_entries(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit, cell, weight) of every ordered pair of values within a unit, weighted 1 / (m_u - 1)."""
    c, u = codes.shape
    m = (codes >= 0).sum(axis=0)
    weight = np.where(m >= 2, 1.0 / np.maximum(m - 1, 1), 0.0)
    rows, cols, vals = [], [], []
    for i in range(c):
        for j in range(c):
            if i == j:
                continue
            both = np.flatnonzero((codes[i] >= 0) & (codes[j] >= 0))
            rows.append(both)
            cols.append(codes[i, both] * k + codes[j, both])
            vals.append(weight[both])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def coincidence_totals(codes: np.ndarray, k: int) -> np.ndarray:
    """The coincidence matrix, flattened, summed per group of units with the same number of values (exact counts,
    one division per group)."""
    c, _ = codes.shape
    present = codes >= 0
    m = present.sum(axis=0)
    totals = np.zeros(k * k)
    for size in np.unique(m):
        if size < 2:
            continue
        group = codes[:, m == size]
        ok = group >= 0
        cells = [group[i][ok[i] & ok[j]] * k + group[j][ok[i] & ok[j]] for i in range(c) for j in range(c) if i != j]
        totals += np.bincount(np.concatenate(cells), minlength=k * k) / (size - 1)
    return totals


def coincidences(codes: np.ndarray, k: int) -> sp.csr_matrix:
    """Per unit with two or more values, its row of the coincidence matrix, flattened to K*K columns."""
    rows, cols, vals = _coincidence_entries(codes, k)
    stats = sp.csr_matrix((vals, (rows, cols)), shape=(codes.shape[1], k * k))
    stats.sum_duplicates()
    return stats


def alpha(codes: np.ndarray, k: int, delta: Delta, name: str = "krippendorff_alpha",
          distance: Distance | None = None) -> Estimator:
    """alpha = 1 - (n - 1) * sum(o * delta) / sum(n_c * n_k * delta) (Krippendorff 2011).

    Where the distances do not depend on the marginals (every level but ordinal), ``distance`` gives them
    pairwise and the per-unit statistics are compact (:func:`alpha_fixed`); else they are the unit's row of the
    coincidence matrix (K*K columns)."""
    if distance is not None:
        return alpha_fixed(codes, k, distance, name)
    def finish(sums: np.ndarray) -> np.ndarray:
        o = sums.reshape(sums.shape[:-1] + (k, k))
        n_k = o.sum(-1)
        n = n_k.sum(-1)
        d = delta(n_k)
        observed = (o * d).sum((-2, -1))
        expected = np.einsum("...i,...ij,...j->...", n_k, np.broadcast_to(d, o.shape), n_k)
        return 1 - (n - 1) * observed / expected

    pairable = int(((codes >= 0).sum(axis=0) >= 2).sum())
    return Estimator(name, lambda: coincidences(codes, k), finish, coincidence_totals(codes, k), None, pairable,
                     codes.shape[1])


def _pair_disagreement(codes: np.ndarray, distance: Distance) -> np.ndarray:
    """Per unit: the sum of distances over its unordered pairs of values."""
    c, u = codes.shape
    present = codes >= 0
    out = np.zeros(u)
    for i in range(c):
        for j in range(i + 1, c):
            both = np.flatnonzero(present[i] & present[j])
            out[both] += np.asarray(distance(codes[i, both], codes[j, both]), dtype=np.float64)
    return out


def alpha_fixed(codes: np.ndarray, k: int, distance: Distance, name: str = "krippendorff_alpha") -> Estimator:
    """Alpha with distances that do not depend on the marginals, from k + 1 statistics per unit instead of K*K:
    [observed disagreement D_u, pairable values n_uk]. The coefficient is
    ``1 - (n - 1) * sum(D) / (n_k' d n_k)`` with ``D_u = sum over ordered pairs of values d(c, k) / (m_u - 1)``,
    the same sums as the coincidence matrix's ``sum(o * d)`` and ``n_c * n_k * d``."""
    present = codes >= 0
    m = present.sum(axis=0)
    pairable = m >= 2
    pairs = _pair_disagreement(codes, distance)
    observed_u = np.where(pairable, 2 * pairs / np.maximum(m - 1, 1), 0.0)
    valid = present & pairable[None, :]
    n_k = np.bincount(codes[valid], minlength=k).astype(np.float64)
    observed = 0.0
    for size in np.unique(m[pairable]):  # one division per group of units with the same number of values
        observed += 2 * pairs[m == size].sum() / (size - 1)
    totals = np.concatenate([[observed], n_k])
    quadratic = Quadratic(k, distance)

    def stats() -> sp.csr_matrix:
        units = np.broadcast_to(np.arange(codes.shape[1]), codes.shape)[valid]
        disagree = np.flatnonzero(observed_u)
        rows = np.concatenate([units, disagree])
        cols = np.concatenate([codes[valid] + 1, np.zeros(disagree.size, dtype=np.int64)])
        vals = np.concatenate([np.ones(units.size), observed_u[disagree]])
        out = sp.csr_matrix((vals, (rows, cols)), shape=(codes.shape[1], k + 1))
        out.sum_duplicates()
        return out

    def finish_q(sums: np.ndarray, expected: np.ndarray) -> np.ndarray:
        n = sums[..., 1:].sum(-1)
        return 1 - (n - 1) * sums[..., 0] / expected

    def finish(sums: np.ndarray) -> np.ndarray:
        return finish_q(sums, quadratic.form(sums[..., 1:]))

    return Estimator(name, stats, finish, totals, None, int(pairable.sum()), codes.shape[1], quadratic, finish_q)
