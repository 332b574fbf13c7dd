"""Unitizing alphas: the published worked examples (the oracle), a reference implementation on random data,
properties (hypothesis), the document bootstrap against brute force, and bad input."""
import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistcode.agreement.coefficients import AgreementWarning
from assistcode.agreement.unitizing import (
    SpanCoding, SpanError, _Bootstrap, _cross_total, prepare_spans, _statistics, gamma, unitizing_alpha,
    unitizing_bootstrap, unitizing_intervals,
)
from assistcode.errors import AgreementError

from ..conftest import need


def spans_of(rows, doc="d"):
    return [SpanCoding(doc, s, e, str(coder), code) for coder, code, s, e in rows]


# Krippendorff (2004, Content Analysis, 2nd ed., p. 254; reproduced in DKPro Statistics' tests): a continuum
# from 150 to 450, two observers, codes c and k; shifted here to start at 0.
KRIPP_2004 = spans_of([
    ("i", "c", 75, 145), ("i", "c", 220, 250), ("j", "c", 70, 150), ("j", "c", 205, 225), ("j", "c", 250, 270),
    ("i", "k", 30, 90), ("i", "k", 150, 200), ("j", "k", 30, 90), ("j", "k", 150, 200),
])


@pytest.mark.filterwarnings("ignore::assistcode.agreement.coefficients.AgreementWarning")
def test_krippendorff_2004_worked_example():
    r = unitizing_alpha(KRIPP_2004, {"d": 300})
    do_c, de_c = r.u_disagreement["c"]
    do_k, de_k = r.u_disagreement["k"]
    assert (round(do_c, 4), round(de_c, 4), round(r.u_alpha_by_code["c"], 4)) == (0.0144, 0.0532, 0.7286)
    assert (round(do_k, 4), round(de_k, 4), r.u_alpha_by_code["k"]) == (0.0, 0.0490, 1.0)
    # the book pools the rounded figures: 1 - .0144 / (.0532 + .0490) = .8591
    assert round(1 - round(do_c, 4) / (round(de_c, 4) + round(de_k, 4)), 4) == 0.8591
    assert r.u_alpha == pytest.approx(0.8591, abs=5e-4)
    assert r.u_alpha == pytest.approx(1 - (do_c + do_k) / (de_c + de_k), rel=1e-12)


def kripp_1995(stretch: int):
    """Krippendorff (1995: 57), four pairs of observers on a continuum of 24 (B's Jill marks adjacent units)."""
    def unit(b, length, coder, code):
        return (coder, code, b * stretch, (b + length) * stretch)
    examples = {
        "A": [unit(2, 8, 0, "A"), unit(14, 6, 0, "A"), unit(4, 4, 1, "A"), unit(15, 2, 1, "A")],
        "B": [unit(0, 18, 0, "B")] + [unit(b, n, 1, "B") for b, n in [(0, 2), (2, 1), (3, 1), (4, 1), (5, 1),
                                                                       (6, 3), (9, 1)]],
        "C": [unit(b, n, 0, "C") for b, n in [(2, 6), (10, 2), (14, 4), (20, 2)]]
        + [unit(b, n, 1, "C") for b, n in [(0, 2), (4, 4), (10, 4), (16, 2), (20, 2)]],
        "D": [unit(b, n, 0, "D") for b, n in [(0, 2), (2, 8), (10, 4), (14, 6), (20, 4)]]
        + [unit(b, n, 1, "D") for b, n in [(0, 4), (4, 4), (8, 7), (15, 2), (17, 7)]],
    }
    return {k: unitizing_alpha(spans_of(v), {"d": 24 * stretch}) for k, v in examples.items()}


@pytest.mark.filterwarnings("ignore::assistcode.agreement.coefficients.AgreementWarning")
def test_krippendorff_1995_observed_disagreements_exact():
    got = {k: round(r.u_disagreement[k][0], 5) for k, r in kripp_1995(1).items()}
    assert got == {"A": 0.03125, "B": 2.26736, "C": 0.02778, "D": 0.38715}


@pytest.mark.filterwarnings("ignore::assistcode.agreement.coefficients.AgreementWarning")
def test_krippendorff_1995_alphas_on_a_fine_continuum():
    """The 1995 paper's alphas are for a continuous line; on a fine grid the 2004 formula comes within .02 of
    them (the 1995 expected disagreement has a small error, as DKPro Statistics also notes)."""
    got = {k: r.u_alpha for k, r in kripp_1995(50_000).items()}
    published = {"A": 0.553, "B": -0.926, "C": 0.679, "D": 0.066}
    for k, v in published.items():
        assert got[k] == pytest.approx(v, abs=0.02), k


def random_partition_spans(rng, n_coders, length, codes, exclusive=True):
    rows = []
    for i in range(n_coders):
        pos = 0
        while pos < length:
            n = int(rng.integers(1, 15))
            if rng.random() < 0.5:
                rows.append((f"c{i}", codes[int(rng.integers(len(codes)))], pos, min(length, pos + n)))
            pos += n + (int(rng.integers(0, 3)) if exclusive else -int(rng.integers(0, n)))
    return rows


@pytest.mark.filterwarnings("ignore::assistcode.agreement.coefficients.AgreementWarning")
def test_matches_krippendorff_unitized_alpha_on_random_data():
    """krippendorff-unitized-alpha (the 2016 coincidence form over gap + values) equals Cu_alpha, and, with one
    code against the gap, |uα for that code; its segments are given here as a half-open partition."""
    ref = need("krippendorff_unitized_alpha.krippendorffs_unitized_alpha")
    rng = np.random.default_rng(16)

    def partition(rows, length):
        out, pos = [], 0
        for _, code, s, e in sorted(rows, key=lambda r: r[2]):
            if s > pos:
                out.append(ref.Segment(ref.EMPTY_TAG, pos, s))
            out.append(ref.Segment(code, s, e))
            pos = e
        if pos < length:
            out.append(ref.Segment(ref.EMPTY_TAG, pos, length))
        return out

    for _ in range(20):
        length, m, codes = int(rng.integers(30, 120)), int(rng.integers(2, 5)), ["a", "b", "c"]
        rows = random_partition_spans(rng, m, length, codes)
        r = unitizing_alpha(spans_of(rows), {"d": length}, coders=[f"c{i}" for i in range(m)], codes=codes)
        by_coder = {f"c{i}": [x for x in rows if x[0] == f"c{i}"] for i in range(m)}
        want = ref.KrippendorffUnitizedAlpha({k: partition(v, length) for k, v in by_coder.items()}).result
        assert r.Cu_alpha == pytest.approx(want, rel=1e-9, abs=1e-12)
        for code in codes:
            if any(x[1] == code for x in rows):
                only = {k: partition([x for x in v if x[1] == code], length) for k, v in by_coder.items()}
                want = ref.KrippendorffUnitizedAlpha(only).result
                assert r.binary[code] == pytest.approx(want, rel=1e-9, abs=1e-12)


# ------------------------------------------------------------------------------------------- properties

span_rows = st.lists(st.tuples(st.sampled_from(["x", "y", "z"]), st.sampled_from(["a", "b"]),
                               st.sampled_from(["d1", "d2", "d3"]), st.integers(0, 60), st.integers(1, 25)),
                     min_size=1, max_size=25)
LENGTHS = {"d1": 70, "d2": 50, "d3": 90}


def build(rows):
    return [SpanCoding(doc, min(s, LENGTHS[doc] - 1), min(s + n, LENGTHS[doc]), coder, code)
            for coder, code, doc, s, n in rows]


def values(r):
    out = {"u_alpha": r.u_alpha, "cu_alpha": r.cu_alpha, "Cu_alpha": r.Cu_alpha}
    out.update({f"u:{k}": v for k, v in r.u_alpha_by_code.items()})
    out.update({f"b:{k}": v for k, v in r.binary.items()})
    return out


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all((math.isnan(a[k]) and math.isnan(b[k])) or
                                        math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-12) for k in a)


@settings(max_examples=60, deadline=None)
@given(span_rows)
def test_perfect_agreement_is_one(rows):
    one = build([("x",) + r[1:] for r in rows])
    spans = one + [s._replace(coder=c) for s in one for c in ("y", "z")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AgreementWarning)
        r = unitizing_alpha(spans, LENGTHS)
    for k, v in values(r).items():
        assert math.isnan(v) or v == pytest.approx(1.0, abs=1e-12), k
    assert r.u_alpha == pytest.approx(1.0) and r.Cu_alpha == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(span_rows, st.permutations(["x", "y", "z"]), st.permutations(["d1", "d2", "d3"]))
def test_symmetric_in_coders_and_invariant_to_document_order(rows, coders, docs):
    spans = build(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AgreementWarning)
        base = values(unitizing_alpha(spans, LENGTHS, coders=["x", "y", "z"]))
        renamed = {"x": coders[0], "y": coders[1], "z": coders[2]}
        swapped = values(unitizing_alpha([s._replace(coder=renamed[s.coder]) for s in spans], LENGTHS,
                                         coders=coders))
        # documents renamed so that they sort (and so are laid end to end) in another order
        order = {d: f"{i}{d}" for i, d in enumerate(docs)}
        moved = values(unitizing_alpha([s._replace(document=order[s.document]) for s in spans],
                                       {order[d]: n for d, n in LENGTHS.items()}, coders=["x", "y", "z"]))
    assert same(base, swapped)
    assert same(base, moved)


# ------------------------------------------------------------------------------------------- bootstrap


def test_a_resample_equals_the_duplicated_data():
    """A bootstrap replicate (document weights) equals the coefficients of the resampled data written out, the
    1995 unit-gap term (units of one document against gaps of any) included."""
    rng = np.random.default_rng(3)
    lengths = {f"d{i}": int(rng.integers(40, 90)) for i in range(6)}
    rows = []
    for d, n in lengths.items():
        rows += [SpanCoding(d, s, e, coder, code) for coder, code, s, e in
                 random_partition_spans(rng, 3, n, ["a", "b"], exclusive=bool(rng.random() < 0.5))]
    boot = _Bootstrap.build(rows, lengths, None, ["a", "b"])
    for w in [np.array([[2, 0, 1, 0, 3, 0]], dtype=float)] + [  # documents sorted: d0..d5
            np.bincount(rng.integers(0, 6, 6), minlength=6)[None, :].astype(float) for _ in range(3)]:
        check_replicate(boot, rows, lengths, w)
    # all ones is the point estimate, and the weighted unit-gap term is the direct sum
    ones = boot.replicates(np.ones((1, 6)))
    point = unitizing_alpha(rows, lengths, codes=["a", "b"])
    assert ones["u_alpha"][0] == pytest.approx(point.u_alpha, rel=1e-12)
    assert [term.weighted(np.ones((1, 6)))[0] for term in boot.cross] == pytest.approx(
        list(_cross_total(boot.stats)[0]), rel=1e-12)


def check_replicate(boot, rows, lengths, w):
    got = boot.replicates(w)
    written, written_lengths = [], {}
    for i, d in enumerate(sorted(lengths)):
        for copy in range(int(w[0, i])):
            written_lengths[f"{d}#{copy}"] = lengths[d]
            written += [s._replace(document=f"{d}#{copy}") for s in rows if s.document == d]
    want = unitizing_alpha(written, written_lengths, coders=["c0", "c1", "c2"], codes=["a", "b"])
    assert got["u_alpha"][0] == pytest.approx(want.u_alpha, rel=1e-9)
    assert got["Cu_alpha"][0] == pytest.approx(want.Cu_alpha, rel=1e-9)
    assert got["cu_alpha"][0] == pytest.approx(want.cu_alpha, rel=1e-9)
    for c in "ab":
        assert got[f"binary:{c}"][0] == pytest.approx(want.binary[c], rel=1e-9)
        assert got[f"u_alpha:{c}"][0] == pytest.approx(want.u_alpha_by_code[c], rel=1e-9)


def test_intervals_resample_documents():
    rng = np.random.default_rng(5)
    lengths = {f"d{i}": 80 for i in range(30)}
    rows = []
    for d in lengths:
        base = random_partition_spans(rng, 1, 80, ["a", "b"])
        for coder in ("p", "q"):  # q moves each boundary a little
            rows += [SpanCoding(d, min(e - 1, max(0, s + int(rng.integers(-2, 3)) * (coder == "q"))), e, coder,
                                code) for _, code, s, e in base]
    point = unitizing_alpha(rows, lengths)
    iv = unitizing_intervals(rows, lengths, n_boot=300, seed=1)
    assert set(iv) >= {"u_alpha", "cu_alpha", "Cu_alpha", "binary:a", "binary:b", "u_alpha:a"}
    for key, value in [("u_alpha", point.u_alpha), ("Cu_alpha", point.Cu_alpha), ("binary:a", point.binary["a"])]:
        low, high = iv[key]
        assert low < value < high and high - low < 0.2, key
    assert iv == unitizing_intervals(rows, lengths, n_boot=300, seed=1)
    # one document: every resample is that document
    single = {"d0": 80}
    reps = unitizing_bootstrap([s for s in rows if s.document == "d0"], single, n_boot=20)
    assert np.allclose(reps["Cu_alpha"], unitizing_alpha([s for s in rows if s.document == "d0"], single).Cu_alpha)


# ------------------------------------------------------------------------------------------- input


@pytest.mark.parametrize("span, message", [
    (SpanCoding("d", -1, 5, "x", "a"), "negative offset"),
    (SpanCoding("d", 8, 5, "x", "a"), "end 5 before start 8"),
    (SpanCoding("d", 31, 35, "x", "a"), "start 31 past the end of the document (length 30)"),
    (SpanCoding("nope", 1, 5, "x", "a"), "document has no length"),
])
def test_bad_spans_are_refused_with_where(span, message):
    ok = [SpanCoding("d", 0, 5, "y", "a")]
    with pytest.raises(SpanError, match=re.escape(message)) as err:
        unitizing_alpha(ok + [span], {"d": 30})
    assert "span 1" in str(err.value) and "coder 'x'" in str(err.value)


def test_clipping_merging_and_counts():
    spans = [SpanCoding("d", 0, 10, "x", "a"), SpanCoding("d", 5, 40, "x", "a"),  # overlap -> merged, clipped
             SpanCoding("d", 3, 3, "y", "a"), SpanCoding("d", 0, 10, "y", "a"), SpanCoding("d", 10, 30, "y", "a")]
    r = unitizing_alpha(spans, {"d": 30})
    assert (r.n_clipped, r.n_merged, r.n_empty, r.n_spans) == (1, 1, 1, 3)
    # adjacent units stay two units: x's one unit [0, 30) against y's [0, 10) + [10, 30) is not perfect agreement
    assert r.u_alpha < 1
    merged = unitizing_alpha([SpanCoding("d", 0, 30, "x", "a"), SpanCoding("d", 0, 30, "y", "a"),
                              SpanCoding("d", 30, 30, "y", "a")], {"d": 40})
    assert merged.u_alpha == pytest.approx(1.0)


def test_needs_two_coders_and_warns_when_undefined():
    with pytest.raises(AgreementError, match="at least 2 coders"):
        unitizing_alpha([SpanCoding("d", 0, 5, "x", "a")], {"d": 10})
    with pytest.warns(AgreementWarning, match="binary alpha\\[b\\]"):
        r = unitizing_alpha([SpanCoding("d", 0, 5, "x", "a"), SpanCoding("d", 0, 5, "y", "a")], {"d": 10},
                            codes=["a", "b"])
    assert math.isnan(r.binary["b"]) and r.binary["a"] == pytest.approx(1.0)


def test_statistics_are_per_document_sums():
    s = prepare_spans(KRIPP_2004, {"d": 300, "e": 0, "f": 20}, None, None)
    st = _statistics(s)
    assert st.b_S.shape == (3, 2) and st.b_S[1].sum() == 0 and st.b_S[2].sum() == 0
    assert st.b_S[0].tolist() == [70 + 30 + 80 + 20 + 20, 2 * (60 + 50)]


@pytest.mark.slow
def test_gamma_through_pygamma_agreement():
    need("pygamma_agreement")
    same_spans = [SpanCoding("d", s, e, c, k) for c in ("x", "y") for s, e, k in [(0, 10, "a"), (20, 30, "b")]]
    assert gamma(same_spans, {"d": 40}) == pytest.approx(1.0)
    shifted = same_spans[:2] + [SpanCoding("d", 3, 12, "y", "a"), SpanCoding("d", 20, 30, "y", "a")]
    g = gamma(shifted, {"d": 40})
    assert g < 1.0


def brute_force(spans, length, coders, codes):
    """The 2016 coincidences straight from their definition on one document, pair by pair of sections: c|uα and
    Cuα (a coder's value is the set of codes it put on a section; sections run between its own boundaries), and
    1995's observed disagreement per code summed over every pair of sections."""
    sections = {}
    for c in coders:
        own = [s for s in spans if s.coder == c]
        cuts = sorted({0, length} | {s.start for s in own} | {s.end for s in own})
        sections[c] = [(a, b, frozenset(s.code for s in own if s.start <= a and b <= s.end))
                       for a, b in zip(cuts, cuts[1:])]
    m = len(coders)
    o, corr, corr_star = {}, {}, {}
    for i in coders:
        for a, b, v in sections[i]:
            corr[v] = corr.get(v, 0) + ((b - a) ** 2 if v else b - a)
            if v:
                others = set()
                for j in coders:
                    if j != i:
                        others |= {x for a2, b2, v2 in sections[j] if v2 for x in range(max(a, a2), min(b, b2))}
                corr_star[v] = corr_star.get(v, 0) + len(others) ** 2
            for j in coders:
                if j == i:
                    continue
                for a2, b2, v2 in sections[j]:
                    n = min(b, b2) - max(a, a2)
                    if n > 0:
                        o[v, v2] = o.get((v, v2), 0) + n / (m - 1)

    def alpha(values, c):
        r = {v: sum(o.get((v, w), 0) for w in values) for v in values}
        tot, ctot = sum(r.values()), sum(c.get(v, 0) for v in values)
        diag = sum(o.get((v, v), 0) for v in values)
        try:
            exp_diag = sum(r[v] ** 2 - c.get(v, 0) for v in values) / (tot - ctot / tot)
            return 1 - (tot - diag) / (tot - exp_diag) if tot - exp_diag > 1e-12 else float("nan")
        except ZeroDivisionError:
            return float("nan")

    values = {v for v, _ in o} | {w for _, w in o}
    do_1995 = {}
    for code in codes:
        parts = {}
        for c in coders:
            units = sorted((s.start, s.end) for s in spans if s.coder == c and s.code == code)
            cuts = sorted({0, length} | {x for u in units for x in u})
            parts[c] = [(a, b, (a, b) in units) for a, b in zip(cuts, cuts[1:])]
        total = 0.0
        for i in coders:
            for j in coders:
                if i == j:
                    continue
                for a, b, u in parts[i]:
                    for a2, b2, u2 in parts[j]:
                        if u and u2 and min(b, b2) > max(a, a2):
                            total += (a - a2) ** 2 + (b - b2) ** 2
                        elif u and not u2 and a2 <= a and b <= b2:
                            total += (b - a) ** 2
                        elif u2 and not u and a <= a2 and b2 <= b:
                            total += (b2 - a2) ** 2
        do_1995[code] = total / (m * (m - 1) * length**2)
    return alpha({v for v in values if v}, corr_star), alpha(values, corr), do_1995


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["x", "y", "z"]), st.sampled_from(["a", "b"]), st.integers(0, 35),
                          st.integers(1, 12)), min_size=2, max_size=14))
def test_against_the_definitions_pair_by_pair(rows):
    """Overlapping codes of one coder included; adjacent units of one code are kept apart in both."""
    length = 40
    spans = [SpanCoding("d", s, min(s + n, length), c, k) for c, k, s, n in rows]
    merged = []  # the brute force takes units as given: merge overlaps of one coder and code first
    for key in {(s.coder, s.code) for s in spans}:
        for s in sorted((s for s in spans if (s.coder, s.code) == key), key=lambda s: s.start):
            if merged and (merged[-1].coder, merged[-1].code) == key and s.start < merged[-1].end:
                merged[-1] = merged[-1]._replace(end=max(merged[-1].end, s.end))
            else:
                merged.append(s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = unitizing_alpha(spans, {"d": length}, coders=["x", "y", "z"], codes=["a", "b"])
        cu, Cu, do = brute_force(merged, length, ["x", "y", "z"], ["a", "b"])
    for name, mine, want in [("cu", got.cu_alpha, cu), ("Cu", got.Cu_alpha, Cu)]:
        assert (math.isnan(mine) and not math.isfinite(want)) or mine == pytest.approx(want, rel=1e-9, abs=1e-12), name
    for code in "ab":
        assert got.u_disagreement[code][0] == pytest.approx(do[code], rel=1e-12, abs=1e-15)
