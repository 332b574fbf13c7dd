"""Published worked examples."""
import math
import warnings

import numpy as np
import pytest

from assistcode.agreement import (
    AgreementWarning, brennan_prediger, cohen_kappa, fleiss_kappa, gwet_ac1, krippendorff_alpha, pabak,
    percent_agreement, scott_pi, weighted_kappa,
)
from assistcode.agreement._data import coerce
from assistcode.agreement.uncertainty import gwet_se
from assistcode.errors import AgreementError

N = None
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", 4 observers x 12 units. The same data are the
# 4 raters x 12 subjects example of Gwet's Handbook (4th ed.).
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]

# Fleiss (1971): 30 patients, 6 psychiatrists each, 5 diagnoses (as reconstructed in R irr::diagnoses).
DIAGNOSES = np.array([
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4], [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4], [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]).T


@pytest.mark.parametrize("level, published", [("nominal", .743), ("ordinal", .815), ("interval", .849), ("ratio", .797)])
def test_krippendorff_2011(level, published):
    assert round(krippendorff_alpha(KRIPPENDORFF_2011, level), 3) == published


def test_fleiss_1971():
    assert round(fleiss_kappa(DIAGNOSES), 3) == .430
    assert fleiss_kappa(DIAGNOSES) == pytest.approx(0.4302445, abs=5e-8)  # R irr::kappam.fleiss


def test_gwet_handbook_4_raters_12_subjects():
    """Gwet, Handbook of Inter-Rater Reliability (4th ed.): AC1 0.7754 (SE 0.1429), generalised Fleiss kappa
    0.7612 with missing ratings, Brennan-Prediger 0.7727, percent agreement 0.8182."""
    assert round(gwet_ac1(KRIPPENDORFF_2011), 4) == 0.7754
    assert round(fleiss_kappa(KRIPPENDORFF_2011), 4) == 0.7612
    assert round(brennan_prediger(KRIPPENDORFF_2011), 4) == 0.7727
    assert round(percent_agreement(KRIPPENDORFF_2011), 4) == 0.8182
    assert round(gwet_se(coerce(KRIPPENDORFF_2011), "gwet_ac1"), 4) == 0.1429


def test_cohen_1960_style_table():
    # 2x2 table [[45, 15], [25, 15]]: po = .60, pe = .54, kappa = .1304 (a standard textbook example)
    a = ["y"] * 45 + ["y"] * 15 + ["n"] * 25 + ["n"] * 15
    b = ["y"] * 45 + ["n"] * 15 + ["y"] * 25 + ["n"] * 15
    assert cohen_kappa([a, b]) == pytest.approx((0.60 - 0.54) / 0.46, rel=1e-12)
    assert pabak([a, b]) == pytest.approx(0.2, rel=1e-12)
    assert scott_pi([a, b]) == pytest.approx((0.60 - (0.65**2 + 0.35**2)) / (1 - (0.65**2 + 0.35**2)), rel=1e-12)


def test_weighted_kappa_uses_values_and_unused_categories():
    data = [[1, 2, 3, 1], [1, 3, 3, 2]]
    # with a declared but unused category 4, max - min = 3, so disagreements weigh less
    assert weighted_kappa(data, "linear", categories=[1, 2, 3, 4]) != weighted_kappa(data, "linear")
    # numeric order, not string order: 10 is the largest value
    assert weighted_kappa([[2, 10, 9], [2, 9, 10]], "quadratic") == pytest.approx(
        weighted_kappa([[0, 8, 7], [0, 7, 8]], "quadratic"), rel=1e-12)


def test_undefined_is_nan_with_a_reason():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert math.isnan(cohen_kappa([["a", "a"], ["a", "a"]]))
        assert math.isnan(krippendorff_alpha([[1, 1, 1], [1, 1, 1]]))
        assert math.isnan(gwet_ac1([[1, 1], [1, 1]]))
    assert [issubclass(w.category, AgreementWarning) for w in caught] == [True, True, True]
    assert "every rating falls in a single category" in str(caught[0].message)
    assert percent_agreement([[1, 1], [1, 1]]) == 1.0


@pytest.mark.parametrize(
    "data, message",
    [
        ([[1, 2, 3], [1, 2]], "ragged rows"),
        ([[1, 2, 3]], "at least two coders"),
        ([[1, None], [None, 2]], "no unit has ratings from two or more coders"),
        ([[1, "a"], [1, 2]], "mixed types in unit 1"),
    ],
)
def test_bad_input(data, message):
    with pytest.raises(AgreementError, match=message):
        krippendorff_alpha(data)


def test_nan_inside_a_set_and_non_sets():
    with pytest.raises(AgreementError, match="a set holds a missing value"):
        krippendorff_alpha([[{"a", float("nan")}, {"b"}], [{"a"}, {"b"}]], "masi")
    with pytest.raises(AgreementError, match="expected a set of codes"):
        krippendorff_alpha([["a", {"b"}], [{"a"}, {"b"}]], "masi")


def test_two_coder_statistics_refuse_three():
    with pytest.raises(AgreementError, match="exactly two coders; got 3"):
        cohen_kappa([[1, 2], [1, 2], [2, 1]])


def test_declared_categories():
    with pytest.raises(AgreementError, match="value 3 is not among the declared categories"):
        gwet_ac1([[1, 3], [1, 2]], categories=[1, 2])
    # q from the declared categories changes AC1 and Brennan-Prediger
    assert brennan_prediger([[1, 2, 1], [1, 2, 2]], categories=[1, 2, 3, 4]) > brennan_prediger([[1, 2, 1], [1, 2, 2]])


def test_masi_weights_and_empty_sets():
    from assistcode.agreement import set_distance

    a, b = frozenset("ab"), frozenset("a")
    assert set_distance(a, b) == pytest.approx(1 - 0.5 * 2 / 3)
    assert set_distance(frozenset("ab"), frozenset("bc")) == pytest.approx(1 - (1 / 3) * (1 / 3))
    assert set_distance(frozenset("a"), frozenset("b")) == 1.0
    assert set_distance(frozenset(), frozenset()) == 0.0
    assert set_distance(frozenset(), frozenset(), "jaccard") == 0.0
    assert set_distance(frozenset(), frozenset("a")) == 1.0
    # the empty set is a value, not missing
    assert krippendorff_alpha([[set(), {"a"}, {"a", "b"}], [set(), {"a"}, {"a"}]], "masi") < 1
    assert krippendorff_alpha([[set(), {"a"}, ["b", "a"]], [set(), {"a"}, {"a", "b"}]], "masi") == 1.0


def test_dataframe_input_one_row_per_coder():
    import pandas as pd

    frame = pd.DataFrame(KRIPPENDORFF_2011, index=["A", "B", "C", "D"])
    assert krippendorff_alpha(frame) == krippendorff_alpha(KRIPPENDORFF_2011)
    assert krippendorff_alpha(np.array(KRIPPENDORFF_2011, dtype=float)) == pytest.approx(krippendorff_alpha(KRIPPENDORFF_2011), rel=1e-15)
