"""Overlap measures: character kappa against scikit-learn and statsmodels on the characters written out, span F1
and LLMCode's IoU / Hausdorff on worked cases."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistcode.agreement.overlap import character_kappa, modified_hausdorff, quote_overlap, span_f1
from assistcode.agreement.unitizing import SpanCoding, SpanError

from ..conftest import need

LENGTHS = {"d1": 40, "d2": 25}

span_lists = st.lists(st.tuples(st.sampled_from(["x", "y", "z"]), st.sampled_from(["a", "b"]),
                                st.sampled_from(["d1", "d2"]), st.integers(0, 24), st.integers(1, 15)),
                      min_size=1, max_size=20)


def build(rows):
    return [SpanCoding(d, s, min(s + n, LENGTHS[d]), coder, code) for coder, code, d, s, n in rows]


def characters(spans, coders, code):
    """coders x characters, 1 where the coder put ``code`` on the character (documents end to end)."""
    out = []
    for coder in coders:
        row = []
        for d in sorted(LENGTHS):
            marks = np.zeros(LENGTHS[d], int)
            for s in spans:
                if (s.coder, s.document, s.code) == (coder, d, code):
                    marks[s.start:s.end] = 1
            row.append(marks)
        out.append(np.concatenate(row))
    return np.array(out)


@settings(max_examples=50, deadline=None)
@given(span_lists)
def test_character_kappa_two_coders_is_cohen(rows):
    sk = need("sklearn.metrics")
    spans = build(rows)
    got = character_kappa(spans, LENGTHS, coders=["x", "y"], codes=["a", "b"])
    for code in "ab":
        x, y = characters(spans, ["x", "y"], code)
        if len(set(x) | set(y)) < 2:
            assert math.isnan(got[code])
            continue
        with np.errstate(all="ignore"):
            want = sk.cohen_kappa_score(x, y)
        assert (math.isnan(got[code]) and math.isnan(want)) or got[code] == pytest.approx(want, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(span_lists)
def test_character_kappa_three_coders_is_fleiss(rows):
    irr = need("statsmodels.stats.inter_rater")
    spans = build(rows)
    got = character_kappa(spans, LENGTHS, coders=["x", "y", "z"], codes=["a", "b"])
    for code in "ab":
        marks = characters(spans, ["x", "y", "z"], code)
        counts = np.stack([3 - marks.sum(axis=0), marks.sum(axis=0)], axis=1)
        if counts[:, 1].sum() in (0, counts.sum()):
            assert math.isnan(got[code])
            continue
        assert got[code] == pytest.approx(irr.fleiss_kappa(counts), abs=1e-12)


def test_span_f1_matches_one_to_one_at_the_threshold():
    spans = [SpanCoding("d", 0, 10, "h", "a"), SpanCoding("d", 10, 20, "h", "a"), SpanCoding("d", 40, 50, "h", "a"),
             SpanCoding("d", 50, 60, "h", "b"),
             SpanCoding("d", 0, 20, "m", "a"),   # IoU .5 with each of h's first two (adjacent, two units): one only
             SpanCoding("d", 44, 54, "m", "a"),  # IoU 6/14 = .43 with h's third
             SpanCoding("e", 50, 60, "m", "b")]  # another document: no match
    at_half = span_f1(spans, reference="h", candidate="m", iou=0.5)
    assert at_half["a"] == {"precision": 1 / 2, "recall": 1 / 3, "f1": 2 / 5, "tp": 1, "n_reference": 3,
                            "n_candidate": 2}
    assert at_half["b"]["tp"] == 0 and at_half["b"]["f1"] == 0.0
    loose = span_f1(spans, reference="h", candidate="m", iou=0.4)["a"]
    assert (loose["tp"], loose["precision"]) == (2, 1.0)
    assert span_f1(spans, reference="h", candidate="m", iou=0.0)["a"]["tp"] == 2
    same = [SpanCoding("d", 0, 10, "h", "a"), SpanCoding("d", 0, 10, "m", "a")]
    assert span_f1(same, reference="h", candidate="m", iou=1.0)["a"]["tp"] == 1
    assert span_f1(same[:1] + [SpanCoding("d", 0, 9, "m", "a")], reference="h", candidate="m", iou=1.0)["a"]["tp"] == 0
    # overlapping spans of one coder and code are one unit
    merged = span_f1(same + [SpanCoding("d", 5, 12, "m", "a")], reference="h", candidate="m", iou=0.8)["a"]
    assert (merged["n_candidate"], merged["tp"]) == (1, 1)
    with pytest.raises(SpanError, match="bad offsets 5..2"):
        span_f1([SpanCoding("d", 5, 2, "h", "a")], reference="h", candidate="m")


def test_quote_overlap_is_llmcodes_iou_and_hausdorff():
    spans = [SpanCoding("d", 0, 10, "h", "visuals"), SpanCoding("d", 5, 15, "m", "visuals"),
             SpanCoding("d", 5, 15, "m", "story"), SpanCoding("e", 2, 4, "h", "story")]
    vectors = {"visuals": [1.0, 0.0], "story": [0.6, 0.8]}
    out = quote_overlap(spans, {"d": 20, "e": 10, "f": 5}, reference="h", candidate="m",
                        embed=lambda names: np.array([vectors[n] for n in names]))
    assert out["iou"] == {"d": 5 / 15, "e": 0.0, "f": 1.0}  # nothing highlighted by either: 1, as LLMCode
    assert out["mean_iou"] == pytest.approx((1 / 3 + 0 + 1) / 3)
    # d: h {visuals} vs m {visuals, story}: (0 + 0 + (1 - .6)) / 3; e: m has no codes -> NaN; f: both empty -> 0
    assert out["hausdorff"]["d"] == pytest.approx(0.4 / 3)
    assert math.isnan(out["hausdorff"]["e"]) and out["hausdorff"]["f"] == 0.0
    assert out["mean_hausdorff"] == pytest.approx(0.4 / 6)
    # with the texts, only word characters count (LLMCode strips spaces and punctuation before comparing)
    text = "ab, cd. efghijklmnopq"
    words = quote_overlap(spans, {"d": 20}, reference="h", candidate="m", texts={"d": text})
    assert words["iou"]["d"] == pytest.approx(3 / 11)  # union: 15 characters, 4 not word ones; overlap: d, e, f
    assert quote_overlap(spans, {"d": 20}, reference="h", candidate="m")["hausdorff"] is None


def test_modified_hausdorff_is_symmetric_and_zero_on_equal_sets():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    assert modified_hausdorff(a, b) == pytest.approx(modified_hausdorff(b, a))
    assert modified_hausdorff(a, a * 3) == 0.0
    assert modified_hausdorff(a, b) > 0
