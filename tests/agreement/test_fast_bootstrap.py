"""The fast bootstrap (statistics summed per document, every resample in one product, alpha's expected disagreement
as a documents x documents form) against the straightforward computation: each resample's units gathered and the
coefficient computed from scratch by the public function, on small seeded random data, for every statistic."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from assistcode.agreement import (
    AgreementWarning, brennan_prediger, cohen_kappa, fleiss_kappa, gwet_ac1, krippendorff_alpha, pabak,
    percent_agreement, scott_pi, set_distance, weighted_kappa,
)
from assistcode.agreement import estimators as est
from assistcode.agreement._data import coerce, coerce_sets
from assistcode.agreement.coefficients import alpha_estimator, delta_for, set_distances
from assistcode.agreement.summary import estimator_for
from assistcode.agreement.uncertainty import _groups, _weights, bootstrap_interval, jackknife, replicates

B = 60
CATS = [0, 1, 2, 3]

PLAIN = {
    "percent_agreement": lambda d: percent_agreement(d, categories=CATS),
    "fleiss_kappa": lambda d: fleiss_kappa(d, categories=CATS),
    "gwet_ac1": lambda d: gwet_ac1(d, categories=CATS),
    "brennan_prediger": lambda d: brennan_prediger(d, categories=CATS),
    "cohen_kappa": lambda d: cohen_kappa(d, categories=CATS),
    "scott_pi": lambda d: scott_pi(d, categories=CATS),
    "weighted_kappa": lambda d: weighted_kappa(d, "quadratic", categories=CATS),
    "pabak": pabak,
}
TWO_CODER = {"cohen_kappa", "scott_pi", "weighted_kappa", "pabak"}
LEVELS = ("nominal", "ordinal", "interval", "ratio")


def ratings(coders: int, units: int, seed: int, k: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, units)
    data = np.where(rng.random((coders, units)) < 0.7, truth, rng.integers(0, k, (coders, units))).astype(float)
    data[rng.random(data.shape) < 0.15] = np.nan
    return data


def code_sets(coders: int, units: int, seed: int, n_codes: int = 6) -> list[list[frozenset | None]]:
    rng = np.random.default_rng(seed)
    out = []
    truth = [frozenset(np.flatnonzero(rng.random(n_codes) < 0.3).tolist()) for _ in range(units)]
    for _ in range(coders):
        row: list[frozenset | None] = []
        for t in truth:
            if rng.random() < 0.1:
                row.append(None)
            else:
                row.append(frozenset(c for c in range(n_codes) if (c in t) == (rng.random() < 0.85)))
        out.append(row)
    return out


def take(data, idx):  # noqa: ANN001, ANN201
    return data[:, idx] if isinstance(data, np.ndarray) else [[row[i] for i in idx] for row in data]


def straightforward(estimator: est.Estimator, data, plain, clusters, seed: int):  # noqa: ANN001, ANN201
    """Each resample's units gathered (the same draws the package makes with this seed) and the coefficient
    computed from scratch."""
    rows = estimator.rows
    original = estimator.units if estimator.units is not None else np.arange(rows)
    ids, n = None, 0
    if clusters is not None:
        ids = np.unique(np.asarray(clusters)[original], return_inverse=True)[1]
        n = ids.max() + 1
    weights = _weights(np.random.default_rng(seed), rows, B, ids, n).astype(int)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AgreementWarning)
        for w in weights:
            idx = np.repeat(original, w)
            try:
                out.append(plain(take(data, idx)))
            except Exception:  # a resample the coefficient refuses (no unit rated by both): undefined
                out.append(np.nan)
    return np.array(out)


def leave_one_out(data, plain, clusters, units):  # noqa: ANN001, ANN201
    groups = units if clusters is None else np.asarray(clusters)[units]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AgreementWarning)
        for g in np.unique(groups) if clusters is not None else groups:
            keep = units[groups != g] if clusters is not None else np.delete(units, np.flatnonzero(units == g))
            out.append(plain(take(data, keep)))
    return np.array(out)


def cases():  # noqa: ANN201
    for name in PLAIN:
        coders = 2 if name in TWO_CODER else 3
        yield name, coders, {}
    for level in LEVELS:
        yield f"krippendorff_alpha:{level}", 3, {"level": level}
    for level in ("masi", "jaccard"):
        yield f"krippendorff_alpha:{level}", 3, {"level": level}


@pytest.mark.parametrize("clustered", [True, False], ids=["by document", "by unit"])
@pytest.mark.parametrize("name,coders,kw", list(cases()), ids=[c[0] for c in cases()])
def test_replicates_and_jackknife_equal_recomputing_each_resample(name: str, coders: int, kw: dict, clustered: bool) -> None:
    units = 48
    clusters = np.repeat(np.arange(12), 4) if clustered else None
    statistic = name.split(":")[0]
    if kw.get("level") in ("masi", "jaccard"):
        data = code_sets(coders, units, seed=len(name))
        e = alpha_estimator(data, kw["level"])
        plain = lambda d: krippendorff_alpha(d, kw["level"])  # noqa: E731
    elif statistic == "krippendorff_alpha":
        data = ratings(coders, units, seed=len(name))
        e = alpha_estimator(data, kw["level"])
        plain = lambda d: krippendorff_alpha(d, kw["level"])  # noqa: E731
    else:
        data = ratings(coders, units, seed=len(name))
        e = estimator_for(statistic, data, categories=CATS, weights="quadratic")
        plain = PLAIN[statistic]
    fast = replicates(e, B, clusters, seed=5)
    slow = straightforward(e, data, plain, clusters, seed=5)
    assert np.isfinite(slow).sum() > B // 2
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-12)
    kept = e.units if e.units is not None else np.arange(e.rows)
    np.testing.assert_allclose(jackknife(e, clusters), leave_one_out(data, plain, clusters, kept), rtol=1e-10, atol=1e-12)


def test_the_documents_form_route_is_taken_and_agrees() -> None:
    """Many distinct code sets and few documents: alpha's expected disagreement goes through the documents x
    documents form (not the sets x sets distances) and gives the same resamples and leave-one-out values."""
    data = code_sets(3, 60, seed=11, n_codes=12)
    docs = np.repeat(np.arange(6), 10)
    e = alpha_estimator(data, "masi")
    assert _groups(e, docs).use_gram and e.quadratic.k > 6
    plain = lambda d: krippendorff_alpha(d, "masi")  # noqa: E731
    np.testing.assert_allclose(replicates(e, B, docs, seed=2), straightforward(e, data, plain, docs, seed=2),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jackknife(e, docs), leave_one_out(data, plain, docs, np.arange(60)), rtol=1e-10)


@pytest.mark.parametrize("level", ["nominal", "interval", "ratio", "masi", "jaccard"])
def test_compact_alpha_equals_the_coincidence_matrix(level: str) -> None:
    """The k + 1 statistics per unit give the coefficient the coincidence matrix gives, and the same weighted sums."""
    if level in ("masi", "jaccard"):
        data = code_sets(4, 50, seed=3)
        codes, sets = coerce_sets(data)
        full = est.alpha(codes, len(sets), delta_for(level, sets=sets))
    else:
        data = ratings(4, 50, seed=3) + 1
        r = coerce(data)
        codes, full = r.codes, est.alpha(r.codes, r.k, delta_for(level, r))
    fast = alpha_estimator(data, level)
    assert fast.quadratic is not None and full.quadratic is None
    assert fast.value() == pytest.approx(full.value(), rel=1e-13)
    w = _weights(np.random.default_rng(1), codes.shape[1], 30, None, 0)
    np.testing.assert_allclose(fast.weighted(w), full.weighted(w), rtol=1e-12)


def test_shared_draws_are_the_seeds_draws() -> None:
    """Draws kept for an int seed are the ones a generator with that seed makes (the interval does not depend on
    whether another coefficient drew first)."""
    data = ratings(3, 40, seed=1)
    docs = np.repeat(np.arange(10), 4)
    e = est.fleiss(coerce(data))
    first = replicates(e, 200, docs, seed=7)
    np.testing.assert_array_equal(first, replicates(e, 200, docs, seed=7))
    np.testing.assert_array_equal(first, replicates(e, 200, docs, seed=np.random.default_rng(7)))
    assert bootstrap_interval(e, n_boot=200, clusters=docs, seed=7).se == pytest.approx(np.nanstd(first, ddof=1))


def test_fast_set_coding_equals_the_checked_loop() -> None:
    sets = code_sets(3, 80, seed=4)
    as_lists = [[None if s is None else sorted(s) for s in row] for row in sets]  # lists take the checked loop
    codes_fast, found_fast = coerce_sets(sets)
    codes_loop, found_loop = coerce_sets(as_lists)
    np.testing.assert_array_equal(codes_fast, codes_loop)
    assert found_fast == found_loop


def test_set_distances_are_set_distance() -> None:
    rng = np.random.default_rng(0)
    sets = [frozenset(rng.choice(70, size=rng.integers(0, 6), replace=False).tolist()) for _ in range(120)]
    sets += [frozenset(), frozenset(range(66))]  # two words of bits; a set larger than the lookup table
    idx = np.arange(len(sets))
    for level in ("masi", "jaccard"):
        d = set_distances(sets, level)(idx[:, None], idx[None, :])
        expected = np.array([[set_distance(a, b, level) for b in sets] for a in sets])
        np.testing.assert_array_equal(d, expected)
