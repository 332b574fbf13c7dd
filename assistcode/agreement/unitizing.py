"""Krippendorff's alpha for unitizing: agreement on where codes begin and end, not only on which code a segment has.

Spans are ``SpanCoding(document, start, end, coder, code)``, offsets in code points, end exclusive. Every document in
``lengths`` is one continuum coded by every coder: where a coder has no span there is a gap. Documents are
concatenated, but no unit or gap crosses a document boundary.

Coefficients (all ``1 - Do / De``):

- ``u_alpha``: Krippendorff (1995, "On the reliability of unitizing continuous data", Sociological Methodology 25)
  in the form of Krippendorff (2004, Content Analysis, 2nd ed., sec. 11.6): per code, the squared differences of
  overlapping units' beginnings and ends, and the squared length of a unit that falls inside another coder's gap;
  ``u_alpha_by_code`` per code, ``u_alpha`` pools the codes (sum of Do over sum of De). Exact to the 2004 worked
  example; the 2016 paper replaced it because its expected disagreement misbehaves with more than two coders.
- The family of Krippendorff, Mathet, Bouvry & Widlöcher (2016, Quality & Quantity 50), on coincidences of
  intersection lengths between coders (a unit pairs with itself as a whole, a gap character by character):
  ``binary[code]`` is |uα for that code against everything else (ATLAS.ti's alpha-binary); ``cu_alpha`` is c|uα,
  the coding of the units where coders' units overlap (gaps left out; a unit's self-pairing counts only the length
  that other coders' units cover, as in Krippendorff 2019, sec. 12.6); ``Cu_alpha`` is uα over the gap and all
  codes at once, the overall coefficient (ATLAS.ti's Cu-α pools semantic domains, which assistcode does not have).
  The 2016 values are mutually exclusive; a coder who puts several codes on the same characters has their set as
  one value there, so {a, b} agrees with {a, b} only.

All statistics are sums over documents (``u_alpha``'s expected disagreement adds a term over pairs of a unit and a
gap, from any documents, which is a weighted sum over the gaps sorted by length), so a bootstrap resample of
documents is a weighted sum: ``unitizing_intervals`` does 1,000 in seconds.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..errors import AgreementError
from .coefficients import AgreementWarning

_MAX_CELLS = 4_000_000


class SpanCoding(NamedTuple):
    """One coder's code on a character range of a document (code points, end exclusive)."""

    document: str
    start: int
    end: int
    coder: str
    code: str


class SpanError(AgreementError):
    """A span that cannot be placed in its document: negative offset, end before start, start past the end."""


@dataclass
class UnitizingResult:
    """The unitizing coefficients for one set of span codings (NaN where a coefficient is undefined)."""

    u_alpha: float
    """Krippendorff (1995/2004) uα, the codes pooled."""
    u_alpha_by_code: dict[str, float]
    u_disagreement: dict[str, tuple[float, float]]
    """Per code, 1995's observed and expected disagreement (Do, De)."""
    binary: dict[str, float]
    """|uα per code (2016; ATLAS.ti's alpha-binary): that code against everything else."""
    cu_alpha: float
    """c|uα (2016): agreement on the codes of overlapping units, gaps left out."""
    Cu_alpha: float
    """uα over the gap and all codes at once (2016): the overall coefficient."""
    n_documents: int
    n_spans: int
    """Spans used, after dropping empty ones and merging overlaps."""
    coders: list[str]
    codes: list[str]
    n_clipped: int = 0
    """Spans whose end ran past the document and was clipped to it."""
    n_merged: int = 0
    """Overlapping spans of the same code by the same coder merged into one unit."""
    n_empty: int = 0
    """Zero-length spans dropped."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------- input


@dataclass
class _Spans:
    """Validated spans as arrays, merged into units; positions are global (document offset + position)."""

    docs: list[str]
    lengths: np.ndarray  # per document
    offsets: np.ndarray  # per document, plus the total at the end
    coders: list[str]
    codes: list[str]
    doc: np.ndarray  # per unit
    start: np.ndarray
    end: np.ndarray
    coder: np.ndarray
    code: np.ndarray
    n_clipped: int = 0
    n_merged: int = 0
    n_empty: int = 0

    @property
    def m(self) -> int:
        return len(self.coders)

    @property
    def total(self) -> int:
        return int(self.offsets[-1])


def prepare_spans(spans: Iterable[SpanCoding], lengths: Mapping[str, int], coders: Sequence[str] | None,
             codes: Sequence[str] | None, *, min_coders: int = 2) -> _Spans:
    docs = sorted(lengths)
    doc_index = {d: i for i, d in enumerate(docs)}
    lens = np.array([int(lengths[d]) for d in docs], dtype=np.int64)
    if (lens < 0).any():
        bad = docs[int(np.argmax(lens < 0))]
        raise SpanError(f"document {bad!r}: negative length {lengths[bad]}")
    rows = []
    n_clipped = n_empty = 0
    for i, (document, start, end, coder, code) in enumerate(spans):
        where = f"span {i} (document {document!r}, coder {coder!r}, code {code!r})"
        d = doc_index.get(document)
        if d is None:
            raise SpanError(f"{where}: document has no length (not in lengths)")
        length = int(lens[d])
        start, end = int(start), int(end)
        if start < 0 or end < 0:
            raise SpanError(f"{where}: negative offset {start}..{end}")
        if end < start:
            raise SpanError(f"{where}: end {end} before start {start}")
        if start > length:
            raise SpanError(f"{where}: start {start} past the end of the document (length {length})")
        if end > length:
            end, n_clipped = length, n_clipped + 1
        if end == start:
            n_empty += 1
            continue
        rows.append((d, start, end, str(coder), str(code)))
    coder_list = list(coders) if coders is not None else sorted({r[3] for r in rows})
    if len(set(coder_list)) != len(coder_list):
        raise AgreementError(f"coders repeat: {coder_list}")
    if len(coder_list) < min_coders:
        raise AgreementError(f"unitizing agreement needs at least {min_coders} coders; got {len(coder_list)}")
    coder_index = {c: i for i, c in enumerate(coder_list)}
    rows = [r for r in rows if r[3] in coder_index]
    code_list = list(codes) if codes is not None else sorted({r[4] for r in rows})
    code_index = {c: i for i, c in enumerate(code_list)}
    rows = [r for r in rows if r[4] in code_index]
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    if rows:
        d = np.array([r[0] for r in rows], dtype=np.int64)
        st = np.array([r[1] for r in rows], dtype=np.int64) + offsets[d]
        en = np.array([r[2] for r in rows], dtype=np.int64) + offsets[d]
        cd = np.array([coder_index[r[3]] for r in rows], dtype=np.int64)
        cc = np.array([code_index[r[4]] for r in rows], dtype=np.int64)
    else:
        d = st = en = cd = cc = np.zeros(0, dtype=np.int64)
    out = _Spans(docs, lens, offsets, coder_list, code_list, d, st, en, cd, cc, n_clipped=n_clipped,
                 n_empty=n_empty)
    _merge_overlaps(out)
    return out


def _merge_overlaps(s: _Spans) -> None:
    """Merge overlapping spans of one coder and code into one unit (adjacent ones stay two units)."""
    n = len(s.start)
    if n == 0:
        return
    group = s.coder * len(s.codes) + s.code
    order = np.lexsort((s.end, s.start, group))
    g, st, en, d = group[order], s.start[order], s.end[order], s.doc[order]
    width = s.total + 1
    running = np.maximum.accumulate(g * width + en)  # groups ascend, so a running max never leaks across groups
    prev_end = np.empty(n, dtype=np.int64)
    prev_end[0] = -1
    prev_end[1:] = running[:-1] - g[1:] * width
    new = np.ones(n, dtype=bool)
    new[1:] = (g[1:] != g[:-1]) | (st[1:] >= prev_end[1:])
    first = np.flatnonzero(new)
    s.n_merged = n - len(first)
    s.start, s.end = st[first], np.maximum.reduceat(en, first)
    s.doc, s.coder, s.code = d[first], s.coder[order][first], s.code[order][first]


# ------------------------------------------------------------------------------- per-document statistics


@dataclass
class _Segments:
    """The continuum cut at every unit boundary and document edge: within a segment nothing changes."""

    start: np.ndarray
    length: np.ndarray
    doc: np.ndarray
    present: np.ndarray  # coders x codes x segments, 0/1
    bounds: np.ndarray


def span_segments(s: _Spans) -> _Segments:
    bounds = np.unique(np.concatenate([s.start, s.end, s.offsets]))
    seg_start, seg_len = bounds[:-1], np.diff(bounds)
    seg_doc = np.searchsorted(s.offsets, seg_start, side="right") - 1
    n_seg = len(seg_start)
    diff = np.zeros((s.m, len(s.codes), n_seg + 1), dtype=np.int32)
    lo, hi = np.searchsorted(bounds, s.start), np.searchsorted(bounds, s.end)
    np.add.at(diff, (s.coder, s.code, lo), 1)
    np.add.at(diff, (s.coder, s.code, hi), -1)
    present = np.cumsum(diff, axis=2)[:, :, :n_seg].astype(np.int8)
    return _Segments(seg_start, seg_len, seg_doc, present, bounds)


def _per_doc(doc: np.ndarray, values: np.ndarray, n_docs: int) -> np.ndarray:
    """Sum ``values`` (n, or n x k) by document -> (n_docs, k)."""
    values = values.reshape(len(doc), -1).astype(np.float64)
    return np.stack([np.bincount(doc, weights=values[:, j], minlength=n_docs) for j in range(values.shape[1])],
                    axis=1)


@dataclass
class _Stats:
    """Per-document sufficient statistics: every coefficient is a function of their (weighted) sums."""

    n_docs: int
    m: int
    codes: list[str]
    length: np.ndarray  # D
    # 2016 binary per code: S = sum of unit lengths, X = ordered pairs (c, not c), Q = sum of squared unit lengths
    b_S: np.ndarray  # D x C
    b_X: np.ndarray
    b_Q: np.ndarray
    # 2016 uα over gap + code sets: row sums r (D x V), trace T (D), corrections (D x V); value 0 is the gap
    all_r: np.ndarray
    all_T: np.ndarray
    all_corr: np.ndarray
    # 2016 c|uα, codes only
    cu_r: np.ndarray
    cu_T: np.ndarray
    cu_corr: np.ndarray
    # 1995: Do numerator (ordered pairs), number of units, sum (2l^3-3l^2+l)/3, sum l(l-1) per code; the
    # unit-gap term is kept as its pieces (units and gaps with their documents) for the quadratic form
    k_do: np.ndarray  # D x C
    k_n: np.ndarray
    k_a: np.ndarray
    k_sq: np.ndarray
    k_units: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # per code: (lengths, docs)
    k_gaps: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


def _statistics(s: _Spans) -> _Stats:
    m, n_codes, n_docs = s.m, len(s.codes), len(s.docs)
    seg = span_segments(s)
    ln = seg.length.astype(np.float64)
    P = seg.present  # m x C x S
    n = P.sum(axis=0, dtype=np.int64)  # C x S: coders with the code
    ulen = (s.end - s.start).astype(np.float64)

    # |uα per code
    b_S = _per_doc(seg.doc, (ln * n).T, n_docs)
    b_X = _per_doc(seg.doc, (ln * n * (m - n)).T, n_docs)
    b_Q = np.zeros((n_docs, n_codes))
    np.add.at(b_Q, (s.doc, s.code), ulen**2)

    # uα over the gap and the codes, and c|uα: a coder's value at a place is the set of codes it put there (the
    # empty set is the gap), so two codes on the same characters are one value and never disagree with each other.
    # A coder's sections run between its own boundaries (unit ends, document edges): adjacent units stay apart.
    n_seg = len(ln)
    if n_codes <= 62:  # a bit per code: one integer per coder and segment
        keys = np.concatenate([[0], (P.astype(np.int64) << np.arange(n_codes)[None, :, None]).sum(axis=1).ravel()])
        _, value = np.unique(keys, return_inverse=True)
    else:
        rows = np.concatenate([np.zeros((1, n_codes), np.int8), P.transpose(0, 2, 1).reshape(m * n_seg, n_codes)])
        _, value = np.unique(rows, axis=0, return_inverse=True)
    value = value.reshape(-1)[1:].reshape(m, n_seg)  # 0 is the gap: the empty set sorts first
    n_values = int(value.max()) + 1 if value.size else 1
    n_val = np.zeros((n_values, n_seg))
    np.add.at(n_val, (value, np.broadcast_to(np.arange(n_seg), value.shape)), 1.0)
    all_r = _per_doc(seg.doc, (ln * n_val).T, n_docs)
    all_T = _per_doc(seg.doc, ln * (n_val * (n_val - 1)).sum(axis=0) / (m - 1), n_docs)[:, 0]
    coded = n_val[1:]
    n_coded = coded.sum(axis=0)
    cu_r = _per_doc(seg.doc, (ln * coded * (n_coded - 1) / (m - 1)).T, n_docs)
    cu_T = _per_doc(seg.doc, ln * (coded * (coded - 1)).sum(axis=0) / (m - 1), n_docs)[:, 0]

    own_edge = np.zeros((m, n_seg + 1), dtype=bool)
    own_edge[:, np.searchsorted(seg.bounds, s.offsets)] = True
    own_edge[s.coder, np.searchsorted(seg.bounds, s.start)] = True
    own_edge[s.coder, np.searchsorted(seg.bounds, s.end)] = True
    section = np.cumsum(own_edge[:, :n_seg].ravel()) - 1  # coder-major, so sections never span coders
    sec_len = np.bincount(section, weights=np.tile(ln, m))
    first = np.flatnonzero(own_edge[:, :n_seg].ravel())
    sec_value = value.ravel()[first]
    sec_doc = np.tile(seg.doc, m)[first]
    all_corr = np.zeros((n_docs, n_values))
    np.add.at(all_corr, (sec_doc, sec_value), np.where(sec_value == 0, sec_len, sec_len**2))
    others = (n_coded[None, :] - (value > 0)) > 0  # m x S: some other coder has a unit here
    pairable = np.bincount(section, weights=(ln[None, :] * others).ravel(), minlength=len(sec_len))
    cu_corr = np.zeros((n_docs, n_values))
    np.add.at(cu_corr, (sec_doc, sec_value), np.where(sec_value == 0, 0.0, pairable**2))
    cu_corr = cu_corr[:, 1:]

    st = _Stats(n_docs, m, list(s.codes), s.lengths.astype(np.float64), b_S, b_X, b_Q, all_r, all_T, all_corr,
                cu_r, cu_T, cu_corr, *_krippendorff_1995(s))
    return st


def _gaps(s: _Spans, coder: int, code: int) -> tuple[np.ndarray, np.ndarray]:
    """The gaps (start, end) of one coder for one code: the continuum outside its units, cut at document edges."""
    sel = (s.coder == coder) & (s.code == code)
    edges = s.offsets
    st = np.concatenate([s.start[sel], edges[:-1], edges[1:]])
    en = np.concatenate([s.end[sel], edges[:-1], edges[1:]])
    order = np.lexsort((en, st))
    st, en = st[order], en[order]
    g_start, g_end = en[:-1], st[1:]
    keep = g_end > g_start
    return g_start[keep], g_end[keep]


def _krippendorff_1995(s: _Spans):
    m, n_codes, n_docs = s.m, len(s.codes), len(s.docs)
    k_do = np.zeros((n_docs, n_codes))
    k_n = np.zeros((n_docs, n_codes))
    k_a = np.zeros((n_docs, n_codes))
    k_sq = np.zeros((n_docs, n_codes))
    units, gaps = [], []
    for c in range(n_codes):
        sections = []
        all_gaps, gap_docs = [], []
        for i in range(m):
            sel = (s.coder == i) & (s.code == c)
            gs, ge = _gaps(s, i, c)
            all_gaps.append(ge - gs)
            gap_docs.append(np.searchsorted(s.offsets, gs, side="right") - 1)
            st = np.concatenate([s.start[sel], gs])
            en = np.concatenate([s.end[sel], ge])
            unit = np.concatenate([np.ones(sel.sum(), bool), np.zeros(len(gs), bool)])
            order = np.argsort(st, kind="stable")
            sections.append((st[order], en[order], unit[order]))
        for i in range(m):
            for j in range(i + 1, m):
                (si, ei, ui), (sj, ej, uj) = sections[i], sections[j]
                points = np.union1d(si, sj)
                points = points[points < s.total]
                a = np.searchsorted(si, points, side="right") - 1
                b = np.searchsorted(sj, points, side="right") - 1
                bi, ki, bj, kj = si[a].astype(float), ei[a].astype(float), sj[b].astype(float), ej[b].astype(float)
                both = ui[a] & uj[b]
                d2 = np.where(both, (bi - bj) ** 2 + (ki - kj) ** 2, 0.0)
                inside_j = ui[a] & ~uj[b] & (bj <= bi) & (ki <= kj)  # i's unit lies in j's gap
                inside_i = ~ui[a] & uj[b] & (bi <= bj) & (kj <= ki)
                d2 += np.where(inside_j, (ki - bi) ** 2, 0.0) + np.where(inside_i, (kj - bj) ** 2, 0.0)
                doc = np.searchsorted(s.offsets, points, side="right") - 1
                k_do[:, c] += 2 * np.bincount(doc, weights=d2, minlength=n_docs)  # ordered pairs
        sel = s.code == c
        lu = (s.end[sel] - s.start[sel]).astype(np.float64)
        du = s.doc[sel]
        k_n[:, c] = np.bincount(du, minlength=n_docs)
        k_a[:, c] = np.bincount(du, weights=(2 * lu**3 - 3 * lu**2 + lu) / 3, minlength=n_docs)
        k_sq[:, c] = np.bincount(du, weights=lu * (lu - 1), minlength=n_docs)
        gl = np.concatenate(all_gaps).astype(np.float64)
        gd = np.concatenate(gap_docs)
        units.append((lu, du))
        gaps.append((gl, gd.astype(np.int64)))
    return k_do, k_n, k_a, k_sq, units, gaps


def _unit_gap_sum(unit_len: np.ndarray, gap_len: np.ndarray) -> np.ndarray:
    """For each unit length l: l^2 * sum over gaps g with g >= l of (g - l + 1)."""
    g = np.sort(gap_len)
    suffix = np.concatenate([np.cumsum(g[::-1])[::-1], [0.0]])
    idx = np.searchsorted(g, unit_len, side="left")
    count = len(g) - idx
    return unit_len**2 * (suffix[idx] - (unit_len - 1) * count)


# ----------------------------------------------------------------------------------------------- formulas


def _ratio(do: np.ndarray, de: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """1 - do / de; NaN where the expected disagreement is nil (below rounding, relative to ``scale``)."""
    ok = de > 1e-12 * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, 1.0 - do / np.where(ok, de, 1.0), np.nan)


def _coincidence_alpha(r: np.ndarray, trace: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """2016 alpha from summed row sums r (... x V), trace and self-pairing corrections (... x V)."""
    tot = r.sum(axis=-1)
    ctot = corr.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = tot - ctot / tot
        exp_trace = ((r**2).sum(axis=-1) - ctot) / denom
    # no pairable expectation (every unit pairs only with itself) leaves the coefficient undefined
    return np.where(denom > 1e-12 * tot, _ratio(tot - trace, tot - exp_trace, tot), np.nan)


def _alphas(st: _Stats, w: np.ndarray, cross: np.ndarray) -> dict[str, np.ndarray]:
    """Every coefficient for document weights ``w`` (B x D); ``cross`` (B x C) is 1995's unit-gap term."""
    m = st.m
    L = w @ st.length  # B
    out: dict[str, np.ndarray] = {}
    # 1995 / 2004
    do_num, n_u, a, sq = w @ st.k_do, w @ st.k_n, w @ st.k_a, w @ st.k_sq
    Lc = L[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        do = do_num / (m * (m - 1) * Lc**2)
        de = (2 / Lc) * ((n_u - 1) * a + cross) / (m * Lc * (m * Lc - 1) - sq)
    de = np.where(n_u > 0, de, 0.0)
    out["u_alpha"] = _ratio(do.sum(axis=1), de.sum(axis=1))
    out["_do"], out["_de"] = do, de
    for c, code in enumerate(st.codes):
        out[f"u_alpha:{code}"] = _ratio(do[:, c], de[:, c])
    # 2016 binary per code
    S, X, Q = w @ st.b_S, w @ st.b_X, w @ st.b_Q
    tot = m * Lc
    gap = tot - S
    with np.errstate(divide="ignore", invalid="ignore"):
        e = S * gap / (tot - (Q + gap) / tot)
    for c, code in enumerate(st.codes):
        out[f"binary:{code}"] = _ratio(X[:, c] / (m - 1), e[:, c], tot[:, 0])
    out["cu_alpha"] = _coincidence_alpha(w @ st.cu_r, w @ st.cu_T, w @ st.cu_corr)
    out["Cu_alpha"] = _coincidence_alpha(w @ st.all_r, w @ st.all_T, w @ st.all_corr)
    return out


def _cross_total(st: _Stats) -> np.ndarray:
    return np.array([[_unit_gap_sum(lu, gl).sum() for (lu, _), (gl, _) in zip(st.k_units, st.k_gaps)]])


@dataclass
class _UnitGap:
    """1995's unit-gap term of one code, ready for document weights: gaps sorted by length, and for each unit the
    first gap at least as long."""

    unit_len: np.ndarray
    unit_doc: np.ndarray
    gap_len: np.ndarray  # ascending
    gap_doc: np.ndarray
    first: np.ndarray

    @classmethod
    def of(cls, st: _Stats, c: int) -> _UnitGap:
        (lu, du), (gl, gd) = st.k_units[c], st.k_gaps[c]
        order = np.argsort(gl, kind="stable")
        return cls(lu, du, gl[order], gd[order], np.searchsorted(gl[order], lu, side="left"))

    def weighted(self, w: np.ndarray) -> np.ndarray:
        """sum over units u and gaps g (g >= u) of w[doc u] w[doc g] l_u^2 (l_g - l_u + 1), per row of ``w``."""
        if len(self.unit_len) == 0 or len(self.gap_len) == 0:
            return np.zeros(len(w))
        wg = w[:, self.gap_doc]  # B x G
        zero = np.zeros((len(w), 1))
        count = np.hstack([np.cumsum(wg[:, ::-1], axis=1)[:, ::-1], zero])  # weight of gaps from index k on
        total = np.hstack([np.cumsum((wg * self.gap_len)[:, ::-1], axis=1)[:, ::-1], zero])
        per_unit = total[:, self.first] - (self.unit_len - 1) * count[:, self.first]
        return (w[:, self.unit_doc] * self.unit_len**2 * per_unit).sum(axis=1)


# ----------------------------------------------------------------------------------------------- public API


def _warn_undefined(name: str) -> float:
    warnings.warn(f"{name} is undefined here (no expected disagreement: a code nobody used, or no gaps); "
                  "returning NaN", AgreementWarning, stacklevel=3)
    return float("nan")


def _value(name: str, v: float) -> float:
    return float(v) if np.isfinite(v) else _warn_undefined(name)


def unitizing_alpha(spans: Iterable[SpanCoding], lengths: Mapping[str, int], *, coders: Sequence[str] | None = None,
                    codes: Sequence[str] | None = None) -> UnitizingResult:
    """The unitizing alphas of ``spans`` over the documents in ``lengths`` (document -> length in code points).

    ``coders`` and ``codes`` restrict and order (default: those in the spans, sorted); a listed coder without spans
    in a document has coded it all as gap. Raises ``SpanError`` for a negative offset, an end before its start or a
    start past the document's end; an end past it is clipped (counted in ``n_clipped``)."""
    s = prepare_spans(spans, lengths, coders, codes)
    st = _statistics(s)
    vals = _alphas(st, np.ones((1, st.n_docs)), _cross_total(st))
    return UnitizingResult(
        u_alpha=_value("u_alpha", vals["u_alpha"][0]),
        u_alpha_by_code={c: _value(f"u_alpha[{c}]", vals[f"u_alpha:{c}"][0]) for c in s.codes},
        u_disagreement={c: (float(vals["_do"][0, i]), float(vals["_de"][0, i])) for i, c in enumerate(s.codes)},
        binary={c: _value(f"binary alpha[{c}]", vals[f"binary:{c}"][0]) for c in s.codes},
        cu_alpha=_value("cu_alpha", vals["cu_alpha"][0]),
        Cu_alpha=_value("Cu_alpha", vals["Cu_alpha"][0]),
        n_documents=len(s.docs), n_spans=len(s.start), coders=list(s.coders), codes=list(s.codes),
        n_clipped=s.n_clipped, n_merged=s.n_merged, n_empty=s.n_empty)


@dataclass
class _Bootstrap:
    """Per-document statistics ready for resampling."""

    stats: _Stats
    cross: list[_UnitGap]

    @classmethod
    def build(cls, spans, lengths, coders, codes) -> _Bootstrap:
        st = _statistics(prepare_spans(spans, lengths, coders, codes))
        return cls(st, [_UnitGap.of(st, c) for c in range(len(st.codes))])

    def replicates(self, w: np.ndarray) -> dict[str, np.ndarray]:
        w = w.astype(np.float64)
        cross = np.stack([term.weighted(w) for term in self.cross], axis=1) if self.cross else np.zeros((len(w), 0))
        return _alphas(self.stats, w, cross)


def unitizing_bootstrap(spans: Iterable[SpanCoding], lengths: Mapping[str, int], *, n_boot: int = 1000,
                        seed: int = 0, coders: Sequence[str] | None = None, codes: Sequence[str] | None = None,
                        batch: int = 250) -> dict[str, np.ndarray]:
    """``n_boot`` replicates of every coefficient, resampling documents with replacement (keys as in
    ``unitizing_intervals``); NaN where a resample leaves a coefficient undefined."""
    boot = _Bootstrap.build(spans, lengths, coders, codes)
    n_docs = boot.stats.n_docs
    widest = max([n_docs] + [len(term.gap_len) for term in boot.cross])
    batch = max(1, min(batch, _MAX_CELLS // widest))  # resamples x (documents or gaps) per array
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {}
    for b0 in range(0, n_boot, batch):
        idx = rng.integers(0, n_docs, size=(min(batch, n_boot - b0), n_docs))
        w = np.zeros((len(idx), n_docs))
        np.add.at(w, (np.repeat(np.arange(len(idx)), n_docs), idx.ravel()), 1.0)
        for k, v in boot.replicates(w).items():
            if k.startswith("_"):
                continue
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def unitizing_intervals(spans: Iterable[SpanCoding], lengths: Mapping[str, int], *, n_boot: int = 1000,
                        level: float = 0.95, seed: int = 0, coders: Sequence[str] | None = None,
                        codes: Sequence[str] | None = None) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals resampling documents. Keys: ``u_alpha``, ``u_alpha:<code>``, ``binary:<code>``,
    ``cu_alpha``, ``Cu_alpha``; (nan, nan) where fewer than half the resamples define the coefficient."""
    if not 0 < level < 1:
        raise AgreementError(f"level must be between 0 and 1; got {level}")
    reps = unitizing_bootstrap(spans, lengths, n_boot=n_boot, seed=seed, coders=coders, codes=codes)
    q = [(1 - level) / 2, (1 + level) / 2]
    out = {}
    for k, v in reps.items():
        ok = v[np.isfinite(v)]
        out[k] = (float("nan"), float("nan")) if len(ok) < max(1, n_boot // 2) else \
            tuple(float(x) for x in np.quantile(ok, q))
    return out


def gamma(spans: Iterable[SpanCoding], lengths: Mapping[str, int] | None = None, *,
          coders: Sequence[str] | None = None, codes: Sequence[str] | None = None, precision_level: float = 0.05,
          seed: int = 0) -> float | None:
    """Mathet et al.'s (2015) gamma through pygamma-agreement (the ``gamma`` extra), documents laid end to end as
    one continuum; None when pygamma-agreement is not installed. Slow: an alignment is solved per sample."""
    try:
        import pygamma_agreement as pa
        from pyannote.core import Segment
    except ImportError:
        return None
    spans = [SpanCoding(*s) for s in spans]
    if lengths is None:
        lengths = {}
        for s in spans:
            lengths[s.document] = max(lengths.get(s.document, 0), int(s.end))
    s = prepare_spans(spans, lengths, coders, codes)
    continuum = pa.Continuum()
    for st, en, cd, cc in zip(s.start, s.end, s.coder, s.code):
        continuum.add(s.coders[cd], Segment(float(st), float(en)), s.codes[cc])
    dissim = pa.CombinedCategoricalDissimilarity(alpha=1.0, beta=1.0)
    state = np.random.get_state()  # pygamma samples through numpy's global generator
    np.random.seed(seed)
    try:
        return float(continuum.compute_gamma(dissim, precision_level=precision_level).gamma)
    finally:
        np.random.set_state(state)
