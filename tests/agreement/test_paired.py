"""The paired bootstrap of a difference in agreement, checked against a direct resampling loop."""
from __future__ import annotations

import numpy as np
import pytest

from assistcode.agreement.coefficients import alpha_estimator, krippendorff_alpha
from assistcode.agreement.uncertainty import _weights, paired_difference
from assistcode.errors import AgreementError


def coders(seed: int = 3, n: int = 120):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 3, n)
    a = np.where(rng.random(n) < 0.85, gold, (gold + 1) % 3)
    b = np.where(rng.random(n) < 0.6, gold, (gold + 2) % 3)
    return gold, a, b


def test_percentile_interval_equals_a_direct_resampling_loop() -> None:
    gold, a, b = coders()
    d = paired_difference(alpha_estimator(np.vstack([a, gold])), alpha_estimator(np.vstack([b, gold])),
                          n_boot=400, method="percentile", seed=11)
    # the same draws, resampled the slow way: repeat each unit as often as it was drawn, then compute alpha
    w = _weights(np.random.default_rng(11), len(gold), 400, None, 0).astype(int)
    diffs = []
    for row in w:
        idx = np.repeat(np.arange(len(gold)), row)
        diffs.append(krippendorff_alpha(np.vstack([a[idx], gold[idx]])) - krippendorff_alpha(np.vstack([b[idx], gold[idx]])))
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    assert (d.low, d.high) == pytest.approx((lo, hi), abs=1e-12)
    assert d.value == pytest.approx(krippendorff_alpha(np.vstack([a, gold])) - krippendorff_alpha(np.vstack([b, gold])))
    assert d.distinguishable and d.low > 0


def test_identical_coders_differ_by_exactly_zero() -> None:
    gold, a, _ = coders()
    e = alpha_estimator(np.vstack([a, gold]))
    d = paired_difference(e, alpha_estimator(np.vstack([a, gold])), n_boot=200, seed=0)
    assert (d.value, d.low, d.high) == (0.0, 0.0, 0.0) and not d.distinguishable


def test_pairing_narrows_the_interval() -> None:
    """Two similar coders: the paired interval is far narrower than one built from independent resamples."""
    gold, a, _ = coders(n=300)
    rng = np.random.default_rng(5)
    b = np.where(rng.random(len(a)) < 0.95, a, (a + 1) % 3)
    ea, eb = alpha_estimator(np.vstack([a, gold])), alpha_estimator(np.vstack([b, gold]))
    paired = paired_difference(ea, eb, n_boot=500, seed=1)
    from assistcode.agreement.uncertainty import replicates

    unpaired = replicates(ea, 500, seed=2) - replicates(eb, 500, seed=3)
    assert paired.high - paired.low < 0.5 * np.subtract(*np.quantile(unpaired, [0.975, 0.025]))


def test_units_must_match() -> None:
    gold, a, b = coders()
    with pytest.raises(AgreementError, match="same units"):
        paired_difference(alpha_estimator(np.vstack([a, gold])), alpha_estimator(np.vstack([b[:50], gold[:50]])))
