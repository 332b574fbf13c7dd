"""Simpler, named overlap measures for span codings, beside the unitizing alphas.

- ``character_kappa``: every character is a unit, coded or not with each code; Cohen's kappa for two coders,
  Fleiss' kappa for more.
- ``span_f1``: a candidate span matches a reference span of the same code in the same document when their
  intersection over union reaches a threshold (one-to-one, best IoU first); precision, recall and F1 per code.
- ``quote_overlap``: LLMCode's comparison of a model's coded text with a human's (LLMCode, by Hämäläinen et al.:
  its ``runCodingEval``): per document, the IoU of the highlighted characters whatever their code (word characters
  only when the texts are given, as LLMCode strips the rest) and the modified Hausdorff distance between the
  embeddings of the two coders' code names.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import AgreementError
from .unitizing import SpanCoding, SpanError, prepare_spans, span_segments


def character_kappa(spans: Iterable[SpanCoding], lengths: Mapping[str, int], *, coders: Sequence[str] | None = None,
                    codes: Sequence[str] | None = None) -> dict[str, float]:
    """Per code, chance-corrected agreement on whether each character carries the code: Cohen's kappa for two
    coders, Fleiss' kappa for more. NaN where chance agreement is 1 (nobody, or everybody, used the code)."""
    s = prepare_spans(spans, lengths, coders, codes)
    seg = span_segments(s)
    ln = seg.length.astype(np.float64)
    total = ln.sum()
    m = s.m
    out = {}
    for c, code in enumerate(s.codes):
        P = seg.present[:, c, :].astype(np.float64)  # m x S
        with np.errstate(divide="ignore", invalid="ignore"):
            if m == 2:
                both, one, two = (ln * P[0] * P[1]).sum(), (ln * P[0]).sum(), (ln * P[1]).sum()
                po = (total - one - two + 2 * both) / total
                pe = (one * two + (total - one) * (total - two)) / total**2
            else:
                n = P.sum(axis=0)
                po = (ln * (n * (n - 1) + (m - n) * (m - n - 1))).sum() / (m * (m - 1) * total)
                p1 = (ln * n).sum() / (m * total)
                pe = p1**2 + (1 - p1) ** 2
            out[code] = float((po - pe) / (1 - pe)) if total > 0 and pe < 1 else float("nan")
    return out


def _by_coder(spans: Iterable[SpanCoding]) -> dict[tuple[str, str, str], list[tuple[int, int]]]:
    """(coder, document, code) -> merged spans, validated."""
    raw: dict[tuple[str, str, str], list[tuple[int, int]]] = defaultdict(list)
    for i, s in enumerate(spans):
        s = SpanCoding(*s)
        start, end = int(s.start), int(s.end)
        if start < 0 or end < start:
            raise SpanError(f"span {i} (document {s.document!r}, coder {s.coder!r}, code {s.code!r}): "
                            f"bad offsets {start}..{end}")
        if end > start:
            raw[(str(s.coder), str(s.document), str(s.code))].append((start, end))
    merged = {}
    for key, items in raw.items():
        items.sort()
        out = [list(items[0])]
        for a, b in items[1:]:
            if a < out[-1][1]:
                out[-1][1] = max(out[-1][1], b)
            else:
                out.append([a, b])
        merged[key] = [(a, b) for a, b in out]
    return merged


def span_f1(spans: Iterable[SpanCoding], *, reference: str, candidate: str, iou: float = 0.5,
            codes: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Per code: ``precision``, ``recall``, ``f1``, ``tp``, ``n_reference``, ``n_candidate`` of ``candidate``'s spans
    against ``reference``'s. A pair matches when IoU >= ``iou`` (and they overlap at all); each span matches at
    most once, the pairs with the highest IoU first. Overlapping spans of one coder and code are merged first."""
    if not 0 <= iou <= 1:
        raise AgreementError(f"iou must be between 0 and 1; got {iou}")
    by = _by_coder(spans)
    code_list = list(codes) if codes is not None else sorted({k[2] for k in by if k[0] in (reference, candidate)})
    docs = sorted({k[1] for k in by})
    out = {}
    for code in code_list:
        tp = n_ref = n_cand = 0
        for doc in docs:
            ref = np.array(by.get((reference, doc, code), []), dtype=np.float64).reshape(-1, 2)
            cand = np.array(by.get((candidate, doc, code), []), dtype=np.float64).reshape(-1, 2)
            n_ref, n_cand = n_ref + len(ref), n_cand + len(cand)
            if len(ref) == 0 or len(cand) == 0:
                continue
            inter = np.clip(np.minimum(ref[:, None, 1], cand[None, :, 1]) - np.maximum(ref[:, None, 0],
                                                                                      cand[None, :, 0]), 0, None)
            union = (ref[:, 1] - ref[:, 0])[:, None] + (cand[:, 1] - cand[:, 0])[None, :] - inter
            score = inter / union
            ok = (inter > 0) & (score >= iou)
            r_idx, c_idx = np.nonzero(ok)
            used_r, used_c = set(), set()
            for k in np.argsort(-score[r_idx, c_idx], kind="stable"):
                a, b = int(r_idx[k]), int(c_idx[k])
                if a not in used_r and b not in used_c:
                    used_r.add(a)
                    used_c.add(b)
            tp += len(used_r)
        precision = tp / n_cand if n_cand else float("nan")
        recall = tp / n_ref if n_ref else float("nan")
        f1 = 2 * tp / (n_ref + n_cand) if n_ref + n_cand else float("nan")
        out[code] = {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "n_reference": n_ref,
                     "n_candidate": n_cand}
    return out


def modified_hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    """LLMCode's modified Hausdorff distance between two sets of embedding vectors (rows): the mean, over the
    vectors of both sets, of the cosine distance to the nearest vector of the other set. 0 when both are empty,
    NaN when one is."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) == 0 and len(b) == 0:
        return 0.0
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    dist = 1.0 - a @ b.T
    value = (dist.min(axis=1).sum() + dist.min(axis=0).sum()) / (len(a) + len(b))
    return 0.0 if value < 1e-10 else float(value)


_WORD = re.compile(r"\w")


def quote_overlap(spans: Iterable[SpanCoding], lengths: Mapping[str, int], *, reference: str, candidate: str,
                  texts: Mapping[str, str] | None = None,
                  embed: Callable[[list[str]], np.ndarray] | None = None) -> dict:
    """LLMCode's comparison of ``candidate``'s coding with ``reference``'s, per document in ``lengths``:
    ``iou[doc]``, the intersection over union of the characters either highlights, any code (1 when neither
    highlights anything; only word characters count when ``texts`` are given); ``hausdorff[doc]``, the modified
    Hausdorff distance between the embeddings of their code names, one per span (needs ``embed``: a list of
    strings -> an array of rows); and the means over documents."""
    spans = [SpanCoding(*s) for s in spans]
    for i, s in enumerate(spans):
        if s.document in lengths and (s.start < 0 or s.end < s.start or s.start > lengths[s.document]):
            raise SpanError(f"span {i} (document {s.document!r}, coder {s.coder!r}, code {s.code!r}): "
                            f"bad offsets {s.start}..{s.end} for length {lengths[s.document]}")
    by_doc: dict[str, list[SpanCoding]] = defaultdict(list)
    for s in spans:
        if s.coder in (reference, candidate):
            by_doc[s.document].append(s)
    ious, codes = {}, {}
    for doc in sorted(lengths):
        n = int(lengths[doc])
        marks = {reference: np.zeros(n, bool), candidate: np.zeros(n, bool)}
        names: dict[str, list[str]] = {reference: [], candidate: []}
        for s in by_doc.get(doc, []):
            marks[s.coder][max(0, s.start):min(n, s.end)] = True
            names[s.coder].append(str(s.code))
        if texts is not None:
            word = np.array([bool(_WORD.match(ch)) for ch in texts[doc][:n]] + [False] * max(0, n - len(texts[doc])))
            marks = {k: v & word for k, v in marks.items()}
        union = int((marks[reference] | marks[candidate]).sum())
        inter = int((marks[reference] & marks[candidate]).sum())
        ious[doc] = 1.0 if union == 0 else inter / union
        codes[doc] = (names[reference], names[candidate])
    out: dict = {"iou": ious, "mean_iou": float(np.mean(list(ious.values()))) if ious else float("nan"),
                 "hausdorff": None, "mean_hausdorff": None}
    if embed is not None:
        vocab = sorted({c for a, b in codes.values() for c in (*a, *b)})
        vectors = dict(zip(vocab, np.asarray(embed(vocab), dtype=np.float64))) if vocab else {}
        dim = len(next(iter(vectors.values()))) if vectors else 0

        def rows(names: list[str]) -> np.ndarray:
            return np.array([vectors[c] for c in names]).reshape(len(names), dim)

        out["hausdorff"] = {d: modified_hausdorff(rows(a), rows(b)) for d, (a, b) in codes.items()}
        finite = [v for v in out["hausdorff"].values() if np.isfinite(v)]
        out["mean_hausdorff"] = float(np.mean(finite)) if finite else float("nan")
    return out
