import importlib.util

import numpy as np
import pytest

from assistcode.agreement import cohen_kappa, fleiss_kappa, krippendorff_alpha
from assistcode.agreement._data import coerce
from assistcode.agreement import estimators as est
from assistcode.agreement.summary import estimate
from assistcode.agreement.uncertainty import bootstrap_interval, jackknife, replicates

from ..conftest import REPO
from .test_published import KRIPPENDORFF_2011


def test_weighted_sums_reproduce_the_coefficient_on_resampled_data():
    rng = np.random.default_rng(3)
    data = rng.integers(0, 4, size=(3, 40)).astype(float)
    data[rng.random(data.shape) < 0.2] = np.nan
    e = est.fleiss(coerce(data))
    idx = rng.integers(0, 40, size=40)
    weights = np.bincount(idx, minlength=40)[None, :].astype(float)
    assert e.weighted(weights)[0] == pytest.approx(fleiss_kappa(data[:, idx]), rel=1e-12)
    a = est.alpha(coerce(data).codes, coerce(data).k, lambda n: 1 - np.eye(4))
    assert a.weighted(weights)[0] == pytest.approx(krippendorff_alpha(data[:, idx]), rel=1e-12)


def test_jackknife_leaves_one_unit_out():
    data = np.array(KRIPPENDORFF_2011, dtype=float)
    e = est.cohen(coerce(data[:2]))
    jack = jackknife(e)
    kept = e.units
    for i in range(3):
        assert jack[i] == pytest.approx(cohen_kappa(np.delete(data[:2], kept[i], axis=1)), rel=1e-12)


def test_seeded_and_clustered():
    data = KRIPPENDORFF_2011
    a = estimate("krippendorff_alpha", data, n_boot=300, seed=7)
    b = estimate("krippendorff_alpha", data, n_boot=300, seed=7)
    other = estimate("krippendorff_alpha", data, n_boot=300, seed=8)
    assert (a.low, a.high, a.se_boot) == (b.low, b.high, b.se_boot)  # the same seed, the same interval
    assert (a.low, a.high) != (other.low, other.high)  # the seed is used
    assert a.value == pytest.approx(0.743, abs=5e-4) and a.low < a.value <= a.high <= 1.0 and a.low < 0.6
    e = est.fleiss(coerce(data))
    singletons = np.arange(12)  # each unit its own cluster: the same draws as the unit bootstrap
    assert np.allclose(replicates(e, 200, None, 1), replicates(e, 200, singletons, 1), equal_nan=True)
    clustered = bootstrap_interval(e, n_boot=500, clusters=np.repeat(np.arange(3), 4), seed=1)
    plain = bootstrap_interval(e, n_boot=500, seed=1)
    assert clustered.clustered and clustered.se != plain.se


def test_undefined_resamples_are_counted():
    data = [[1, 1, 1, 2], [1, 1, 1, 2]]
    iv = bootstrap_interval(est.cohen(coerce(data)), n_boot=400, seed=0)
    assert iv.n_undefined > 0  # resamples holding only category 1
    assert iv.low <= 1.0 <= iv.high + 1e-12


def test_estimate_reports_n_and_conventions():
    e = estimate("cohen_kappa", KRIPPENDORFF_2011[:2], n_boot=200)
    assert e.n_units == 9 and e.n_coders == 2 and "dropped" in e.convention and e.se_method.startswith("Fleiss")
    e = estimate("krippendorff_alpha", KRIPPENDORFF_2011, n_boot=200)
    assert e.n_units == 11 and e.se is None


def test_bca_coverage_simulation():
    """The simulation in eval/: 1,000 replications, coverage of the 95% interval within [0.93, 0.97]."""
    spec = importlib.util.spec_from_file_location("coverage", REPO / "eval" / "coverage.py")
    coverage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(coverage)
    result = coverage.simulate(1000, 200, 0.3, 0.9, 0.85, 1000, "bca", 2026)
    for name, value in result["coverage"].items():
        assert 0.93 <= value <= 0.97, (name, value)
