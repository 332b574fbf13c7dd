"""BCa intervals checked against an independent computation on the same resamples, and the clustered bootstrap
checked to be clustered. Each test here fails under one of the mutations in ``eval/mutations.py`` (a sign flip of
the bias correction or the acceleration, the percentile interval in place of BCa, one side's jackknife in a paired
difference, ``estimate()`` losing its clusters, a halved PABAK standard error)."""
from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from assistcode.agreement import cohen_kappa, krippendorff_alpha, pabak
from assistcode.agreement import estimators as est
from assistcode.agreement._data import coerce
from assistcode.agreement.coefficients import alpha_estimator
from assistcode.agreement.summary import estimate
from assistcode.agreement.uncertainty import (
    _weights, bootstrap_interval, paired_difference, pabak_se, replicates,
)

NORMAL = NormalDist()
B = 2000


def skewed_pair(seed: int = 3, n: int = 50) -> np.ndarray:
    """Two coders agreeing on all but three of 50 units: kappa near 0.86, its bootstrap distribution skewed left
    (bias correction about -0.13, acceleration about -0.08), so BCa and percentile intervals differ clearly."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.3
    a = np.where(rng.random(n) < 0.97, truth, ~truth).astype(int)
    b = np.where(rng.random(n) < 0.93, truth, ~truth).astype(int)
    return np.vstack([a, b])


def efron_tibshirani_bca(theta: float, boots: np.ndarray, jack: np.ndarray, level: float = 0.95,
                         z0_sign: float = 1.0, a_sign: float = 1.0) -> tuple[float, float]:
    """BCa from Efron & Tibshirani (1993, eqs. 14.9-14.15), written out here rather than taken from the package:
    z0 = Phi^-1(share of replicates below theta), replicates equal to theta counted half (discrete statistics tie);
    a = sum(d^3) / (6 * sum(d^2)^1.5) with d = mean(jack) - jack; ends at Phi(z0 + (z0 + z) / (1 - a (z0 + z))).
    ``z0_sign``, ``a_sign``: -1 computes the wrong-signed variants (to show the data can tell them apart)."""
    share = (np.sum(boots < theta) + 0.5 * np.sum(boots == theta)) / len(boots)
    z0 = z0_sign * NORMAL.inv_cdf(share)
    d = jack.mean() - jack
    a = a_sign * float((d**3).sum() / (6 * (d**2).sum() ** 1.5))
    ends = []
    for p in ((1 - level) / 2, (1 + level) / 2):
        z = NORMAL.inv_cdf(p)
        ends.append(NORMAL.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))))
    low, high = np.quantile(boots, ends)
    return float(low), float(high)


def leave_one_out(fn, data: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:  # noqa: ANN001
    """The coefficient recomputed from scratch without each unit (or each group of units)."""
    if groups is None:
        return np.array([fn(np.delete(data, i, axis=1)) for i in range(data.shape[1])])
    return np.array([fn(data[:, groups != g]) for g in np.unique(groups)])


def test_bca_equals_efron_tibshirani_on_the_same_resamples() -> None:
    data = skewed_pair()
    e = est.cohen(coerce(data))
    theta = cohen_kappa(data)
    boots = replicates(e, B, None, 5)  # the resamples bootstrap_interval draws with the same seed
    jack = leave_one_out(cohen_kappa, data)
    expected = efron_tibshirani_bca(theta, boots, jack)
    iv = bootstrap_interval(e, n_boot=B, seed=5)
    assert iv.method == "bca" and (iv.low, iv.high) == pytest.approx(expected, abs=1e-12)
    # the data can tell every wrong variant apart from the right one, by far more than the tolerance above
    percentile = tuple(np.quantile(boots, [0.025, 0.975]))
    for wrong in (efron_tibshirani_bca(theta, boots, jack, z0_sign=-1), efron_tibshirani_bca(theta, boots, jack, a_sign=-1),
                  percentile):
        assert max(abs(wrong[0] - expected[0]), abs(wrong[1] - expected[1])) > 0.005, wrong
    pct = bootstrap_interval(e, n_boot=B, method="percentile", seed=5)
    assert (pct.low, pct.high) == pytest.approx(percentile, abs=1e-12)


def test_clustered_bca_leaves_out_whole_clusters() -> None:
    data = skewed_pair(n=60)
    docs = np.repeat(np.arange(12), 5)
    e = est.cohen(coerce(data))
    boots = replicates(e, B, docs, 9)
    expected = efron_tibshirani_bca(cohen_kappa(data), boots, leave_one_out(cohen_kappa, data, docs))
    iv = bootstrap_interval(e, n_boot=B, clusters=docs, seed=9)
    assert iv.clustered and (iv.low, iv.high) == pytest.approx(expected, abs=1e-12)


def test_paired_bca_uses_the_jackknife_of_the_difference() -> None:
    rng = np.random.default_rng(3)
    gold = rng.integers(0, 3, 80)
    a = np.where(rng.random(80) < 0.9, gold, (gold + 1) % 3)
    b = np.where(rng.random(80) < 0.6, gold, (gold + 2) % 3)
    d = paired_difference(alpha_estimator(np.vstack([a, gold])), alpha_estimator(np.vstack([b, gold])),
                          n_boot=B, seed=4)
    # the same unit draws, evaluated the slow way for each side
    w = _weights(np.random.default_rng(4), 80, B, None, 0)
    boots = alpha_estimator(np.vstack([a, gold])).weighted(w) - alpha_estimator(np.vstack([b, gold])).weighted(w)
    jack_a = leave_one_out(krippendorff_alpha, np.vstack([a, gold]))
    jack_b = leave_one_out(krippendorff_alpha, np.vstack([b, gold]))
    theta = krippendorff_alpha(np.vstack([a, gold])) - krippendorff_alpha(np.vstack([b, gold]))
    expected = efron_tibshirani_bca(theta, boots, jack_a - jack_b)
    assert d.method == "bca" and (d.low, d.high) == pytest.approx(expected, abs=1e-12)
    one_side = efron_tibshirani_bca(theta, boots, jack_a)
    assert max(abs(one_side[0] - expected[0]), abs(one_side[1] - expected[1])) > 0.002  # the data tell them apart


def clustered_data() -> tuple[np.ndarray, np.ndarray]:
    """20 documents of 10 units: the coders agree on every unit of half the documents and guess on the rest, so
    units of one document are strongly dependent and resampling documents must give a wider interval."""
    rng = np.random.default_rng(8)
    docs = np.repeat(np.arange(20), 10)
    easy = np.isin(docs, rng.permutation(20)[:10])
    a = rng.integers(0, 3, 200)
    b = np.where(easy, a, rng.integers(0, 3, 200))
    return np.vstack([a, b]), docs


def test_estimate_resamples_the_clusters_it_reports() -> None:
    data, docs = clustered_data()
    e = est.cohen(coerce(data))
    clustered = estimate("cohen_kappa", data, clusters=docs, n_boot=B, seed=2)
    plain = estimate("cohen_kappa", data, n_boot=B, seed=2)
    assert clustered.clustered and not plain.clustered
    by_hand = bootstrap_interval(e, n_boot=B, clusters=docs, seed=2)
    assert (clustered.low, clustered.high, clustered.se_boot) == pytest.approx((by_hand.low, by_hand.high, by_hand.se),
                                                                               abs=1e-12)
    assert clustered.high - clustered.low > 1.5 * (plain.high - plain.low)
    assert clustered.se_boot > 1.5 * plain.se_boot


def test_pabak_standard_error() -> None:
    """2 * sqrt(po (1 - po) / n): 40 of 50 units agree, po = 0.8, SE = 2 * sqrt(0.8 * 0.2 / 50) = 0.113137...;
    the bootstrap standard deviation of PABAK on the same data agrees to within 5%."""
    a = np.zeros(50, dtype=int)
    b = np.where(np.arange(50) < 40, 0, 1)
    data = np.vstack([a, b])
    assert pabak(data) == pytest.approx(0.6)
    se = pabak_se(coerce(data))
    assert se == pytest.approx(0.11313708498984761, rel=1e-12)
    boot_sd = np.std(replicates(est.pabak(coerce(data)), 4000, None, 0), ddof=1)
    assert se == pytest.approx(boot_sd, rel=0.05)
    assert estimate("pabak", data, n_boot=0).se == pytest.approx(se, rel=1e-12)
