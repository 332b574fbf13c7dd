import numpy as np
import pytest

from assistcode.calibration import (best_threshold, brier, calibrate, expected_calibration_error, fit_isotonic,
                                    group_folds, reliability)
from assistcode.errors import InputError


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _logit(p):
    return np.log(p / (1 - p))


# -- Brier, ECE, reliability on examples computed by hand ------------------------------------------------------------

def test_brier_by_hand():
    # (0.9-1)^2 + (0.2-0)^2 + (0.6-0)^2 + (0.4-1)^2 = 0.01 + 0.04 + 0.36 + 0.36 = 0.77; / 4 = 0.1925
    assert brier([0.9, 0.2, 0.6, 0.4], [1, 0, 0, 1]) == pytest.approx(0.1925)
    # an unlabelled pair (NaN outcome) is left out: same figure
    assert brier([0.9, 0.2, 0.6, 0.4, 0.7], [1, 0, 0, 1, np.nan]) == pytest.approx(0.1925)
    assert brier([1.0, 0.0], [1, 0]) == 0.0


def test_ece_by_hand():
    prob = [0.05, 0.15, 0.15, 0.95, 0.95, 0.95, 0.95]
    outcome = [0, 1, 0, 1, 1, 1, 0]
    # bin [0, 0.1): 1 pair, mean 0.05, frequency 0   -> |0.05 - 0| = 0.05, weight 1/7
    # bin [0.1, 0.2): 2 pairs, mean 0.15, freq 0.5    -> 0.35, weight 2/7
    # bin [0.9, 1.0]: 4 pairs, mean 0.95, freq 0.75   -> 0.20, weight 4/7
    # ECE = (1 * 0.05 + 2 * 0.35 + 4 * 0.20) / 7 = 1.55 / 7
    assert expected_calibration_error(prob, outcome) == pytest.approx(1.55 / 7)
    table = reliability(prob, outcome)
    assert len(table) == 10 and [r["n"] for r in table] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 4]
    assert table[1] == {"lower": 0.1, "upper": 0.2, "n": 2, "mean_prob": pytest.approx(0.15), "frequency": 0.5}
    assert table[2]["mean_prob"] is None and table[2]["frequency"] is None


def test_ece_bin_edges():
    # 0.0 falls in the first bin, 1.0 in the last (closed), 0.1 in the second
    table = reliability([0.0, 1.0, 0.1], [0, 1, 1])
    assert table[0]["n"] == 1 and table[9]["n"] == 1 and table[1]["n"] == 1
    # perfectly calibrated bins: ECE 0; all wrong and sure: ECE 1
    assert expected_calibration_error([0.0, 1.0], [0, 1]) == 0.0
    assert expected_calibration_error([0.0, 1.0], [1, 0]) == 1.0
    # 2 bins: [0, 0.5): 0.2 vs 0 -> 0.2 ; [0.5, 1]: 0.8 vs 0.5 -> 0.3 ; (0.2 + 2 * 0.3) / 3
    assert expected_calibration_error([0.2, 0.8, 0.8], [0, 1, 0], bins=2) == pytest.approx(0.8 / 3)


# -- cross-fitting ---------------------------------------------------------------------------------------------------

def _data(n=60, k=2, seed=0):
    rng = np.random.default_rng(seed)
    raw = rng.random((n, k))
    labels = (raw + rng.normal(0, 0.25, (n, k)) > 0.55).astype(float)
    groups = [f"doc{i // 3}" for i in range(n)]  # three units per document
    return raw, labels, groups


@pytest.mark.parametrize("method", ["threshold", "platt", "isotonic"])
def test_a_units_own_label_never_calibrates_it(method):
    raw, labels, groups = _data()
    labels[50:] = np.nan  # unlabelled units
    base = calibrate(raw, method=method, labels=labels, groups=groups, folds=5, seed=1)
    changed_others = 0
    for unit in range(0, 50, 7):
        flipped = labels.copy()
        flipped[unit, 0] = 1 - flipped[unit, 0]
        again = calibrate(raw, method=method, labels=flipped, groups=groups, folds=5, seed=1)
        assert again.prob[unit, 0] == base.prob[unit, 0]
        assert again.threshold[unit, 0] == base.threshold[unit, 0]
        # nor does the label of another labelled unit of the same document
        for mate in range(3 * (unit // 3), min(3 * (unit // 3) + 3, 50)):
            assert again.prob[mate, 0] == base.prob[mate, 0] and again.threshold[mate, 0] == base.threshold[mate, 0]
        changed_others += int((again.prob[:, 0] != base.prob[:, 0]).any() or (again.threshold[:, 0] != base.threshold[:, 0]).any())
    assert changed_others > 0  # the labels do calibrate the other folds
    # unlabelled units share the map fitted on all labels
    assert np.all(base.threshold[50:, 0] == base.threshold[50, 0])
    assert base.manifest["unlabelled_units"] == 10 and base.manifest["labelled_units"] == 50


def test_fold_assignment_never_splits_a_document():
    groups = [f"d{i % 7}" for i in range(40)] + ["lonely"]
    fold = group_folds(groups, 5, seed=3)
    for g in set(groups):
        assert len({fold[i] for i, x in enumerate(groups) if x == g}) == 1
    assert set(fold) == set(range(5))
    assert np.array_equal(group_folds(groups, 5, seed=3), fold)  # deterministic
    # the fold of a document does not depend on the order of the units
    order = np.random.default_rng(0).permutation(len(groups))
    refold = group_folds([groups[i] for i in order], 5, seed=3)
    assert all(refold[r] == fold[i] for r, i in enumerate(order))
    assert set(group_folds(["a", "a", "b"], 5, seed=0)) == {0, 1}  # fewer documents than folds
    with pytest.raises(InputError, match="2 folds"):
        group_folds(groups, 1, seed=0)


def test_threshold_is_f1_optimal():
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    y = np.array([0, 0, 1, 0, 1, 1])
    # t=0.3: predicts 4, 3 true -> F1 = 6/7 ; t=0.5: 2 of 2, 3 true -> 4/5 ; t=0.2 -> 6/8
    assert best_threshold(s, y, 0.5) == 0.3
    assert best_threshold(s, np.zeros(6), 0.42) == 0.42


def test_isotonic_pools_adjacent_violators():
    fmap = fit_isotonic(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1]))
    # 0 | 1, 0 pooled to 0.5 | 1
    assert np.allclose(fmap(np.array([0.1, 0.2, 0.3, 0.4])), [0, 0.5, 0.5, 1])
    assert fmap(np.array([0.0]))[0] == 0 and fmap(np.array([0.9]))[0] == 1  # constant beyond the ends


def test_platt_repairs_overconfidence():
    rng = np.random.default_rng(4)
    q = rng.uniform(0.05, 0.95, (3000, 1))
    outcome = (rng.random(q.shape) < q).astype(float)
    raw = _sigmoid(3 * _logit(q))  # overconfident
    groups = [str(i // 5) for i in range(len(q))]
    before = expected_calibration_error(raw, outcome)
    cal = calibrate(raw, method="platt", labels=outcome, groups=groups)
    after = expected_calibration_error(cal.prob, outcome)
    assert before > 0.08 and after < 0.03
    assert brier(cal.prob, outcome) < brier(raw, outcome)


# -- contextual calibration ------------------------------------------------------------------------------------------

def test_contextual_removes_a_per_code_bias():
    rng = np.random.default_rng(2)
    truth = rng.uniform(0.02, 0.98, (50, 3))
    bias = np.array([2.0, -1.0, 0.0])  # code 0 leans to yes, code 1 to no
    raw = _sigmoid(_logit(truth) + bias)
    content_free = _sigmoid(np.zeros((2, 3)) + bias)  # a content-free input is neutral (0.5) but for the bias
    cal = calibrate(raw, method="contextual", content_free=content_free)
    assert np.allclose(cal.prob, truth)
    assert np.array_equal(cal.decisions, truth >= 0.5)
    assert (raw[:, 0] >= 0.5).sum() > (truth[:, 0] >= 0.5).sum()  # the bias did change the raw decisions


def test_contextual_removes_an_option_bias():
    rng = np.random.default_rng(3)
    truth = rng.dirichlet([1, 1, 1], 40)
    w = np.array([3.0, 1.0, 0.2])  # the model favours the first option and rarely chooses the third
    raw = truth * w / (truth * w).sum(axis=1, keepdims=True)
    content_free = (w / w.sum())[None, :]
    cal = calibrate(raw, method="contextual", content_free=content_free, exclusive=True, allow_none=False,
                    default_threshold=0.0)
    assert np.allclose(cal.prob, truth)
    assert np.array_equal(cal.decisions.argmax(axis=1), truth.argmax(axis=1))
    assert cal.decisions.sum(axis=1).tolist() == [1] * 40
    assert (raw.argmax(axis=1) == 2).sum() < (truth.argmax(axis=1) == 2).sum()


def test_contextual_needs_content_free_scores():
    with pytest.raises(InputError, match="content-free"):
        calibrate(np.full((2, 2), 0.5), method="contextual")


# -- fallback, exclusive, bad input ---------------------------------------------------------------------------------

def test_too_few_labels_fall_back_and_are_counted():
    raw, labels, groups = _data()
    labels[:, 1] = 0
    labels[[0, 30], 1] = 1  # two positives: never 3 in a training part
    labels[55:] = np.nan
    cf = np.array([[0.3, 0.6]])
    cal = calibrate(raw, method="threshold", labels=labels, groups=groups, content_free=cf, codes=["a", "b"],
                    label_source="McKee")
    folds = cal.manifest["folds"]
    assert folds == 5
    assert cal.manifest["fallbacks"] == {"b": folds + 1}  # every fold and the all-labels map of unlabelled units
    assert cal.manifest["fallback_units"] == {"b": 60}
    assert cal.manifest["label_source"] == "McKee"
    # the fallback is the label-free (here contextual) calibration with the default threshold
    label_free = calibrate(raw, method="contextual", content_free=cf)
    assert np.allclose(cal.prob[:, 1], label_free.prob[:, 1]) and np.all(cal.threshold[:, 1] == 0.5)
    assert not np.allclose(cal.threshold[:, 0], 0.5)


def test_exclusive_takes_the_best_passing_code_or_none():
    raw = np.array([[0.6, 0.7, 0.1], [0.2, 0.3, 0.1], [0.55, 0.1, 0.2]])
    cal = calibrate(raw, exclusive=True, default_threshold=0.5)
    assert cal.decisions.tolist() == [[False, True, False], [False, False, False], [True, False, False]]
    forced = calibrate(raw, exclusive=True, allow_none=False, default_threshold=0.5)
    assert forced.decisions[1].tolist() == [False, True, False]
    assert calibrate(raw, default_threshold=0.5).decisions[0].tolist() == [True, True, False]


def test_bad_scores_are_refused_naming_segment_and_code():
    raw = np.full((4, 2), 0.5)
    raw[2, 1] = np.nan
    with pytest.raises(InputError, match=r"'s3', code 'abusive'.*NaN"):
        calibrate(raw, codes=["spam", "abusive"], unit_ids=["s1", "s2", "s3", "s4"])
    raw[2, 1] = 1.2
    with pytest.raises(InputError, match=r"unit 2, code column 1: 1.2 is outside \[0, 1\]"):
        calibrate(raw)
    with pytest.raises(InputError, match="content-free score"):
        calibrate(np.full((2, 2), 0.5), method="contextual", content_free=np.array([[0.5, -0.1]]))
    cos = np.array([[-0.5, 0.2], [0.9, 0.1]])  # a cosine provider
    cal = calibrate(cos, bounds=(-1, 1), default_threshold=0.35)
    assert np.allclose(cal.prob, (cos + 1) / 2) and cal.decisions.tolist() == [[False, False], [True, False]]
    with pytest.raises(InputError, match="unknown calibration"):
        calibrate(cos, method="magic", bounds=(-1, 1))
    with pytest.raises(InputError, match="needs labels"):
        calibrate(np.full((2, 2), 0.5), method="platt")
    with pytest.raises(InputError, match="labels are 1, 0 or NaN"):
        calibrate(np.full((2, 2), 0.5), method="threshold", labels=np.array([[1, 2], [0, 0]]))


def test_platt_never_reverses_the_ranking():
    from assistcode.calibration import fit_platt

    s = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    y = np.array([1, 1, 1, 0, 1, 0, 0, 0])  # on these few labels, the score falls as the label rises
    out = fit_platt(s, y)(s)
    assert np.allclose(out, 0.5, atol=1e-4)  # the smoothed base rate: (4+1)/(4+2) and 1/(4+2), averaged
    assert np.all(np.diff(out) > 0)  # still rising with the score: decisions keep the score's order
    rising = fit_platt(s, 1 - y)(s)
    assert np.all(np.diff(rising) > 0)


def test_exclusive_rank_by_probability_or_by_the_models_own_score():
    # two codes pass; the calibrated probabilities and the raw scores disagree on which is best
    raw = np.array([[0.9, 0.6]])
    cal = calibrate(raw, exclusive=True, default_threshold=0.5)
    assert cal.decisions.tolist() == [[True, False]]
    # a content-free input that favours code 0 strongly: contextual probabilities now rank code 1 first
    cf = np.array([[0.95, 0.5]])
    by_prob = calibrate(raw, method="contextual", content_free=cf, exclusive=True, default_threshold=0.0)
    assert by_prob.prob[0, 1] > by_prob.prob[0, 0] and by_prob.decisions.tolist() == [[False, True]]
    # ranking by the label-free score is the same here (contextual is the label-free score)
    by_score = calibrate(raw, method="contextual", content_free=cf, exclusive=True, default_threshold=0.0,
                         exclusive_rank="score")
    assert by_score.decisions.tolist() == [[False, True]] and by_score.manifest["exclusive_rank"] == "score"
    # a labelled map that reverses the order: per-code thresholds and maps make code 1 the most probable, while
    # the model's own score still ranks code 0 first
    rng = np.random.default_rng(5)
    n = 80
    s0, s1 = rng.uniform(0.5, 1, n), rng.uniform(0, 0.5, n)
    y0, y1 = (rng.random(n) < 0.2).astype(float), (rng.random(n) < 0.8).astype(float)
    scores, labels = np.column_stack([s0, s1]), np.column_stack([y0, y1])
    labels[-1] = np.nan  # an unlabelled unit with scores (0.9, 0.45)
    scores[-1] = [0.9, 0.45]
    prob_rank = calibrate(scores, method="platt", labels=labels, exclusive=True, allow_none=False)
    score_rank = calibrate(scores, method="platt", labels=labels, exclusive=True, allow_none=False,
                           exclusive_rank="score")
    assert prob_rank.decisions[-1].tolist() == [False, True]
    assert score_rank.decisions[-1].tolist() == [True, False]
    with pytest.raises(InputError, match="exclusive_rank"):
        calibrate(raw, exclusive=True, exclusive_rank="magic")


def test_platt_decides_as_the_threshold_method():
    # the map rises with the score, so its F1 threshold in probability splits the units where the score's does
    raw, labels, groups = _data(n=90, k=3, seed=7)
    labels[:, 2] = 0
    labels[::9, 2] = 1  # a rare code
    by_threshold = calibrate(raw, method="threshold", labels=labels, groups=groups)
    by_platt = calibrate(raw, method="platt", labels=labels, groups=groups)
    assert np.array_equal(by_threshold.decisions, by_platt.decisions)


def test_contextual_choice_keeps_each_units_share_of_none():
    # options A, B plus "none" (the rest): the content-free input says "none" mostly, and prefers A to B 3:1
    raw = np.array([[0.3, 0.1], [0.06, 0.02], [0.2, 0.2]])
    cf = np.array([[0.075, 0.025]])  # 0.9 "none"
    cal = calibrate(raw, method="contextual", content_free=cf, exclusive=True)
    # W = diag(1/0.075, 1/0.025): A:B becomes 0.3/0.075 : 0.1/0.025 = 4 : 4, shared out over the code mass 0.4
    assert np.allclose(cal.prob[0], [0.2, 0.2])
    assert np.allclose(cal.prob[1], [0.04, 0.04])
    # 0.2/0.075 : 0.2/0.025 = 1 : 3 of 0.4
    assert np.allclose(cal.prob[2], [0.1, 0.3])
    assert np.allclose(cal.prob.sum(axis=1), raw.sum(axis=1))  # "none" keeps its share


def test_best_threshold_matches_trying_every_score():
    rng = np.random.default_rng(11)
    for _ in range(50):
        n = int(rng.integers(1, 40))
        s = rng.integers(0, 8, n) / 8  # many ties
        y = (rng.random(n) < 0.4).astype(float)
        if y.sum() == 0:
            continue
        best, best_f1 = None, -1.0
        for t in np.unique(s):  # every candidate, lowest first; a later one must be strictly better
            pred = s >= t
            f1 = 2 * float((pred & (y == 1)).sum()) / (pred.sum() + y.sum())
            if f1 > best_f1:
                best, best_f1 = float(t), f1
        assert best_threshold(s, y, 0.5) == best
