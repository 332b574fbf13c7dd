"""Cross-checks against reference implementations on randomised data (hypothesis), to 1e-12 relative.

Each reference for what it implements, avoiding its known defects: irrCAC (Fleiss with missing ratings, AC1,
Brennan-Prediger, percent agreement, their standard errors), krippendorff (alpha, all levels, missing data),
statsmodels (classic Fleiss on complete data, Cohen's kappa and its standard error, weighted kappa with values),
scikit-learn (Cohen's kappa; weighted only with equally spaced labels, since it weights by label index),
nltk (alpha, Scott's pi and Cohen's kappa on complete data; MASI alpha through nltk's algorithm).
"""
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from assistcode.agreement import (
    brennan_prediger, cohen_kappa, fleiss_kappa, gwet_ac1, krippendorff_alpha, pabak, percent_agreement, scott_pi,
    set_distance, weighted_kappa,
)
from assistcode.agreement._data import coerce
from assistcode.agreement.uncertainty import gwet_se, kappa_se

from ..conftest import need

REL = 1e-12


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=REL)


@st.composite
def matrices(draw, min_coders=2, max_coders=5, missing=True, k=4):
    coders = draw(st.integers(min_coders, max_coders))
    units = draw(st.integers(3, 25))
    cats = draw(st.integers(2, k))
    cells = st.one_of(st.none(), st.integers(1, cats)) if missing else st.integers(1, cats)
    data = [[draw(cells) for _ in range(units)] for _ in range(coders)]
    arr = np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float)
    pairable = (~np.isnan(arr)).sum(0) >= 2
    assume(pairable.any())
    values = arr[:, pairable]
    assume(len(np.unique(values[~np.isnan(values)])) >= 2)  # defined coefficients only
    return data


def units_frame(data):
    """irrCAC wants subjects x raters."""
    return pd.DataFrame(np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float).T)


@settings(max_examples=150, deadline=None)
@given(matrices())
@pytest.mark.filterwarnings("ignore:.*value is trying to be set on a copy")
def test_against_irrcac(data):
    frame = units_frame(data)
    assume(frame.notna().any(axis=1).sum() >= 2)  # irrCAC's variance divides by n(n - 1)
    # categories given explicitly: under pandas 3, irrCAC's own inference (stack().unique()) counts NaN as a category
    cats = sorted(set(frame.stack().dropna().tolist()))
    irr = need("irrCAC.raw")
    cac = irr.CAC(frame, categories=cats, digits=18)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_fleiss = cac.fleiss()["est"]
        ref_ac1 = cac.gwet()["est"]
        ref_bp = cac.bp()["est"]
    r = coerce(data)
    if np.isfinite(ref_fleiss["coefficient_value"]):
        assert close(fleiss_kappa(data), ref_fleiss["coefficient_value"])
        assert close(gwet_se(r, "fleiss_kappa"), ref_fleiss["se"]) or ref_fleiss["se"] == 1e-15
    assert close(gwet_ac1(data), ref_ac1["coefficient_value"])
    assert close(brennan_prediger(data), ref_bp["coefficient_value"])
    assert close(percent_agreement(data), ref_ac1["pa"])
    if ref_ac1["se"] != 1e-15:
        assert close(gwet_se(r, "gwet_ac1"), ref_ac1["se"])
        assert close(gwet_se(r, "brennan_prediger"), ref_bp["se"])


@settings(max_examples=150, deadline=None)
@given(matrices(k=5), st.sampled_from(["nominal", "ordinal", "interval", "ratio"]))
def test_alpha_against_krippendorff(data, level):
    arr = np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float)
    expected = need("krippendorff").alpha(reliability_data=arr, level_of_measurement=level)
    assert close(krippendorff_alpha(data, level), expected)


@settings(max_examples=100, deadline=None)
@given(matrices(missing=False))
def test_complete_data_against_statsmodels_and_nltk(data):
    AnnotationTask = need("nltk.metrics.agreement").AnnotationTask
    inter_rater = need("statsmodels.stats.inter_rater")
    aggregate_raters, sm_fleiss = inter_rater.aggregate_raters, inter_rater.fleiss_kappa

    table, _ = aggregate_raters(np.array(data).T)
    assert close(fleiss_kappa(data), sm_fleiss(table, method="fleiss"))
    triples = [(str(c), str(u), v) for c, row in enumerate(data) for u, v in enumerate(row)]
    assert close(krippendorff_alpha(data), AnnotationTask(triples).alpha())


@st.composite
def pairs(draw, k=5):
    units = draw(st.integers(4, 40))
    cats = draw(st.integers(2, k))
    cell = st.integers(0, cats - 1)
    a = [draw(cell) for _ in range(units)]
    b = [draw(cell) for _ in range(units)]
    assume(len(set(a) | set(b)) >= 2)
    return [a, b], list(range(cats))


@settings(max_examples=150, deadline=None)
@given(pairs())
def test_two_coders_against_sklearn_statsmodels_nltk(pair):
    AnnotationTask = need("nltk.metrics.agreement").AnnotationTask
    cohen_kappa_score = need("sklearn.metrics").cohen_kappa_score
    inter_rater = need("statsmodels.stats.inter_rater")
    cohens_kappa, to_table = inter_rater.cohens_kappa, inter_rater.to_table

    data, cats = pair
    a, b = data
    assert close(cohen_kappa(data), cohen_kappa_score(a, b))
    # equally spaced labels 0..k-1, so scikit-learn's index weights equal value weights
    for w in ("linear", "quadratic"):
        assert close(weighted_kappa(data, w, categories=cats), cohen_kappa_score(a, b, labels=cats, weights=w))
    table = to_table(np.array(data).T, bins=len(cats))[0]
    res = cohens_kappa(table)
    assert close(cohen_kappa(data), res.kappa)
    # compare variances: where the variance is 0, rounding leaves +-1e-17, whose square root is 1e-9
    se = kappa_se(coerce(data, cats))
    assert close(se**2, res.var_kappa)
    values = np.array(cats, dtype=float) ** 2  # unequal spacing: statsmodels weights by the values given
    spaced = [[int(v) for v in values[a]], [int(v) for v in values[b]]]
    assert close(weighted_kappa(spaced, "linear", categories=[int(v) for v in values]),
                 cohens_kappa(table, weights=values, wt="linear", return_results=False))
    task = AnnotationTask([(c, str(u), v) for c, row in zip("ab", data) for u, v in enumerate(row)])
    assert close(scott_pi(data), task.pi())
    assert close(cohen_kappa(data), task.kappa())
    assert close(pabak(data), 2 * np.mean(np.array(a) == np.array(b)) - 1)


@st.composite
def set_matrices(draw, missing=True):
    coders = draw(st.integers(2, 4))
    units = draw(st.integers(3, 15))
    code_set = st.frozensets(st.sampled_from("abcd"), max_size=3)
    cell = st.one_of(st.none(), code_set) if missing else code_set
    data = [[draw(cell) for _ in range(units)] for _ in range(coders)]
    pairable = [sum(row[u] is not None for row in data) >= 2 for u in range(units)]
    assume(any(pairable))
    values = {row[u] for row in data for u in range(units) if pairable[u] and row[u] is not None}
    assume(len(values) >= 2)
    return data


@settings(max_examples=100, deadline=None)
@given(set_matrices(), st.sampled_from(["masi", "jaccard"]))
def test_set_alpha_against_nltk_algorithm(data, level):
    """nltk's alpha algorithm with our distance (nltk's masi_distance divides by zero on empty sets)."""
    AnnotationTask = need("nltk.metrics.agreement").AnnotationTask

    triples = [(str(c), str(u), v) for c, row in enumerate(data) for u, v in enumerate(row) if v is not None]
    task = AnnotationTask(triples, distance=lambda x, y: set_distance(x, y, level))
    expected = task.alpha()
    assert close(krippendorff_alpha(data, level), expected)


def test_masi_against_nltk_except_empty_sets():
    from itertools import combinations, product

    distance = need("nltk.metrics.distance")
    jaccard_distance, masi_distance = distance.jaccard_distance, distance.masi_distance

    sets = [frozenset(c) for n in range(1, 4) for c in combinations("abcd", n)]
    for a, b in product(sets, sets):
        assert close(set_distance(a, b, "masi"), masi_distance(a, b))
        assert close(set_distance(a, b, "jaccard"), jaccard_distance(a, b))
    with pytest.raises(ZeroDivisionError):  # nltk's defect on empty sets, which mean "no code applies"
        masi_distance(frozenset(), frozenset())
    assert set_distance(frozenset(), frozenset()) == 0.0
