"""The ``trained`` provider: per-code classifiers learnt from a coder's labels (a person, the humans' consensus, or the
settled review decisions) on the sentence embeddings of :mod:`assistcode.similarity`, optionally beside a scoring
run's per-code probabilities (``--features RUN``).

Each code gets an L2-regularised logistic regression with class-balanced weights on standardised features; its
``predict_proba`` is the run's raw score, which :mod:`assistcode.calibration` turns into a calibrated probability and
a decision (default ``platt``: class balancing shifts the raw probabilities towards the rare class, so they are
mapped back to frequencies; the F1 threshold, and so each decision, is the one ``threshold`` would take). No unit's own label ever scores it or sets its threshold: a labelled unit is scored by a model fitted on
the other folds (folds by document, :func:`assistcode.calibration.group_folds`), and its threshold is fitted on
scores cross-fitted again *inside* those folds; a unit nobody labelled is scored by the model fitted on all labels,
its threshold fitted on the labelled units' cross-fitted scores. A code whose training part has fewer than
:data:`MIN_CLASS` positive or negative labels falls back to its smoothed base rate there, counted per code.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .errors import InputError
from .ids import hash_json
from .model import Codebook, Segment
from .runs import store as rs
from .runs.engine import RunConfig, RunResult, corpus_fingerprint
from .model import REVIEWED

HEAD = "logreg"
MIN_CLASS = 3
"""A code's training part needs this many positive and this many negative labels, else it falls back."""
C = 0.01
"""Inverse regularisation strength of each per-code logistic regression."""


@dataclass
class TrainedScores:
    """Scores and decisions of ``trained`` for the target units of one fit."""

    raw: np.ndarray
    """units x codes: the classifier's probability (NaN outside the targets)."""
    cal: Any
    """The :class:`assistcode.calibration.Calibration` of the targets (NaN / False outside them)."""
    fallbacks: dict[str, int] = field(default_factory=dict)
    """code -> fits (folds) in which it fell back to its base rate."""
    fits: int = 0
    """Fits per code."""


def _calibration():  # type: ignore[no-untyped-def]
    from . import calibration

    return calibration


def _sklearn():  # type: ignore[no-untyped-def]
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        raise InputError("the trained provider needs scikit-learn: pip install 'assistcode[similarity]'") from None
    return LogisticRegression, make_pipeline, StandardScaler


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_score: np.ndarray) -> tuple[np.ndarray, list[bool]]:
    """Fit one classifier per code (columns of ``y_train``, 1/0) and return P(code) for ``x_score`` (rows x codes)
    and, per code, whether it fell back to the smoothed base rate (too few positives or negatives)."""
    logreg, pipeline, scaler = _sklearn()
    out = np.empty((len(x_score), y_train.shape[1]))
    fell_back = []
    for j in range(y_train.shape[1]):
        y = y_train[:, j]
        pos = int(y.sum())
        if pos < MIN_CLASS or len(y) - pos < MIN_CLASS:
            out[:, j] = (pos + 1) / (len(y) + 2)
            fell_back.append(True)
            continue
        model = pipeline(scaler(), logreg(C=C, class_weight="balanced", max_iter=2000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence notes on tiny folds: the fit is still usable
            model.fit(x_train, y.astype(int))
        out[:, j] = model.predict_proba(x_score)[:, 1]
        fell_back.append(False)
    return out, fell_back


def _cross_fit(x: np.ndarray, y: np.ndarray, groups: Sequence[str], folds: int, seed: int,
               counts: np.ndarray) -> np.ndarray:
    """Out-of-fold P(code) for every row of ``x`` (all labelled), folds by document."""
    fold = _calibration().group_folds(list(groups), folds, seed)
    out = np.empty(y.shape)
    for f in np.unique(fold):
        held = fold == f
        if held.all():  # one document only: nothing to learn from
            out[held] = np.nan
            counts += 1
            continue
        out[held], fell = fit_predict(x[~held], y[~held], x[held])
        counts += np.array(fell)
    return out


def _fill(raw: np.ndarray) -> np.ndarray:
    """Rows with no score (a fold holding every document) get the column's mean score, else 0.5."""
    if not np.isnan(raw).any():
        return raw
    mean = np.where(np.isnan(raw).all(axis=0), 0.5, np.nanmean(np.where(np.isnan(raw), 0, raw), axis=0))
    return np.where(np.isnan(raw), mean, raw)


def train_and_score(x: np.ndarray, labels: np.ndarray, groups: Sequence[str], *, targets: np.ndarray | None = None,
                    method: str = "platt", folds: int = 5, seed: int = 0, exclusive: bool = False,
                    label_source: str | None = None) -> TrainedScores:
    """Score the ``targets`` (a bool mask; default: every unit) from ``labels`` (units x codes, 1/0, NaN on units
    nobody labelled), cross-fitted by document as the module says, and calibrate the scores into decisions."""
    cal_mod = _calibration()
    n, k = labels.shape
    targets = np.ones(n, bool) if targets is None else np.asarray(targets, bool)
    lab = ~np.isnan(labels).any(axis=1)
    L = np.flatnonzero(lab)
    if len(L) == 0:
        raise InputError(f"no unit is labelled by {label_source or 'the label source'}: nothing to train on",
                         field="--train-with")
    groups = np.asarray(groups)
    if (targets & lab).any() and len(set(groups[L])) < 2:
        raise InputError(f"the labels of {label_source or 'the label source'} come from one document: scoring "
                         "labelled units needs two or more documents to cross-fit by", field="--train-with")
    y = labels[L]
    counts = np.zeros(k)
    fits = 0
    raw = np.full((n, k), np.nan)
    prob, thr, dec = np.full((n, k), np.nan), np.full((n, k), np.nan), np.zeros((n, k), bool)
    manifest: dict[str, Any] = {}

    def calibrate_rows(train_raw: np.ndarray, train_y: np.ndarray, train_groups: np.ndarray, rows: np.ndarray) -> None:
        """Calibrate ``raw[rows]`` as unlabelled units beside the labelled training scores, and keep their rows."""
        nonlocal manifest
        stacked = np.vstack([_fill(train_raw), raw[rows]])
        stacked_y = np.vstack([train_y, np.full((len(rows), k), np.nan)])
        stacked_g = [*map(str, train_groups), *map(str, groups[rows])]
        cal = cal_mod.calibrate(stacked, method=method, labels=stacked_y, groups=stacked_g, exclusive=exclusive,
                                folds=folds, seed=seed, label_source=label_source)
        m = len(train_raw)
        prob[rows], thr[rows], dec[rows] = cal.prob[m:], cal.threshold[m:], cal.decisions[m:]
        manifest = cal.manifest

    # labelled targets: scored and thresholded without their own fold
    oof = _cross_fit(x[L], y, groups[L], folds, seed, counts)
    fits += len(np.unique(cal_mod.group_folds(list(groups[L]), folds, seed)))
    labelled_targets = targets[L]
    if labelled_targets.any():
        raw[L] = oof
        fold = cal_mod.group_folds(list(groups[L]), folds, seed)
        for f in np.unique(fold):
            held = (fold == f) & labelled_targets
            if not held.any() or (fold == f).all():
                continue
            train = fold != f
            inner = _cross_fit(x[L][train], y[train], groups[L][train], folds, seed + 1, np.zeros(k))
            calibrate_rows(inner, y[train], groups[L][train], L[held])
    # unlabelled targets: the model fitted on every label, thresholds from the labels' cross-fitted scores
    U = np.flatnonzero(targets & ~lab)
    if len(U):
        raw[U], fell = fit_predict(x[L], y, x[U])
        counts += np.array(fell)
        fits += 1
        calibrate_rows(oof, y, groups[L], U)
    raw[~targets] = np.nan
    manifest = {**manifest, "scores": "cross-fitted by document (nested for the thresholds of labelled units)",
                "units": int(targets.sum()), "labelled_units": int(len(L)), "label_source": label_source,
                "proposed": int(dec.sum())}
    cal = cal_mod.Calibration(prob=prob, threshold=thr, decisions=dec, method=method, manifest=manifest)
    return TrainedScores(raw, cal, {f"{j}": int(c) for j, c in enumerate(counts) if c}, fits)


def label_matrix(db: Any, source: str, codebook: Codebook, segment_ids: Sequence[str],
                 codes: Sequence[str] | None = None, option: str = "--train-with") -> np.ndarray:
    """units x codes (the codebook's, or ``codes``) labels of ``source`` (a coder, ``consensus`` = the humans'
    majority, or ``reviewed``): 1/0 where the coder saw the unit, NaN elsewhere. ``option`` is what errors name."""
    from .evaluate import from_store

    known = {r[0] for r in db.execute("SELECT name FROM coders")}
    if source == "consensus" and "consensus" not in known:
        data = from_store(db, None, codebook)
        if len(data.humans) < 2:
            raise InputError(f"`consensus` needs two or more human coders; this project has {len(data.humans)}",
                             field=option)
        data = data.with_consensus().subset(["consensus"])
    elif source == REVIEWED and source not in known:
        raise InputError("no settled review decisions to learn from yet", field=option,
                         hint="review some items first (`assistcode review`), or train on a coder")
    else:
        if source not in known:
            raise InputError(f"no coder named {source!r} to {'train on' if option == '--train-with' else 'calibrate with'}", field=option,
                             hint="a human coder, `consensus` or `reviewed`; coders: " + ", ".join(sorted(known)))
        data = from_store(db, [source], codebook)
    index = {u: i for i, u in enumerate(data.units)}
    codes = list(codes) if codes is not None else [c.id for c in codebook.codes]
    out = np.full((len(segment_ids), len(codes)), np.nan)
    for s, seg in enumerate(segment_ids):
        u = index.get(seg)
        if u is not None and data.sets[0][u] is not None:
            out[s] = [c in data.sets[0][u] for c in codes]
    return out


def run_features(db: Any, run_ref: str | int, segment_ids: Sequence[str]) -> tuple[np.ndarray, Any]:
    """units x codes probabilities of a scoring run (calibrated where it was, else raw), NaN on units it did not
    score; and the run."""
    from .runs.scores import load_scores

    run = rs.get_run(db, run_ref)
    matrix = load_scores(db, run.id)
    if not matrix.segment_ids:
        raise InputError(f"run {run.coder} holds no per-code scores to use as features", field="--features",
                         hint="name a run of a scoring template (score-per-code, score-choice) or of similarity")
    values = matrix.prob if matrix.prob is not None else matrix.raw
    at = {s: i for i, s in enumerate(matrix.segment_ids)}
    out = np.full((len(segment_ids), len(matrix.codes)), np.nan)
    for i, seg in enumerate(segment_ids):
        if seg in at:
            out[i] = values[at[seg]]
    return out, run


def _label_summary(labels: np.ndarray, codes: Sequence[str], groups: Sequence[str], source: str) -> dict[str, Any]:
    lab = ~np.isnan(labels).any(axis=1)
    return {"train_with": source, "units": int(lab.sum()), "documents": len(set(np.asarray(groups)[lab])),
            "positives": {c: int(np.nansum(labels[:, j])) for j, c in enumerate(codes)},
            "hash": hash_json(np.where(np.isnan(labels), -1, labels).astype(int).tolist())}


def run_trained(project: Any, *, train_with: str, features: str | None = None, method: str = "platt",
                folds: int = 5, seed: int = 0, codebook: Codebook | None = None,
                embedder: Any = None) -> tuple[RunResult, list[str]]:
    """Train per-code classifiers on ``train_with``'s labels, score every segment (cross-fitted where labelled),
    calibrate, and store the scores and proposals as a model run (a coder). ``embedder``: anything with the
    :class:`assistcode.similarity.Embedder` ``embed`` method (default: a new one)."""
    from .runs.scores import ScoreMatrix, record_scores, store_calibration
    from .similarity import MODEL, Embedder, executor_of

    start = time.perf_counter()
    codebook = codebook or project.codebook()
    segments: list[Segment] = project.segments()
    ids = [s.id for s in segments]
    codes = [c.id for c in codebook.codes]
    labels = label_matrix(project.db, train_with, codebook, ids)
    notes: list[str] = []
    feature_run = None
    extra = None
    if features is not None:
        extra, feature_run = run_features(project.db, features, ids)
        covered = ~np.isnan(extra).any(axis=1)
        if not covered.all():
            notes.append(f"{int((~covered).sum())} of {len(ids)} segments have no scores in {feature_run.coder}: "
                         "only the segments it scored are scored")
        keep = np.flatnonzero(covered)
        segments, ids, labels, extra = [segments[i] for i in keep], [ids[i] for i in keep], labels[keep], extra[keep]
        if not segments:
            raise InputError(f"{feature_run.coder} scored none of this project's segments", field="--features")
    groups = [s.document_id for s in segments]
    summary = _label_summary(labels, codes, groups, train_with)
    fingerprint = hash_json({"provider": "trained", "model": MODEL, "head": HEAD, "codebook": codebook.hash,
                             "corpus": corpus_fingerprint(segments), "labels": summary["hash"],
                             "features": feature_run.coder if feature_run else None, "method": method,
                             "folds": folds, "seed": seed})
    existing = rs.find_run(project.db, fingerprint)
    if existing is not None and existing.status == "finished":
        return RunResult(existing, already_finished=True, counts=rs.segment_counts(project.db, existing.id)), notes
    if existing is not None:
        rs.delete_run(project.db, existing.id)  # training is cheap and all-or-nothing: start again
    embedder = embedder or Embedder()
    x = embedder.embed([s.text for s in segments])
    if extra is not None:
        x = np.hstack([x, extra])
    result = train_and_score(x, labels, groups, method=method, folds=folds, seed=seed,
                             exclusive=bool(getattr(codebook, "exclusive", False)), label_source=train_with)
    fallbacks = {codes[int(j)]: n for j, n in result.fallbacks.items()}
    if fallbacks:
        notes.append(f"{len(fallbacks)} codes had fewer than {MIN_CLASS} positive or negative labels in some fits and "
                     f"fell back to their base rate there: " + ", ".join(f"{c} ({n})" for c, n in fallbacks.items()))
    name = f"{MODEL}+{HEAD}" + (f"+run{feature_run.id}" if feature_run else "")
    manifest = {"provider": {"provider": "trained", "model": MODEL, "head": HEAD, "C": C, "class_weight": "balanced",
                             "min_class": MIN_CLASS, **executor_of(embedder)},
                "codebook": {"hash": codebook.hash, "name": codebook.name},
                "corpus": {"fingerprint": corpus_fingerprint(segments), "segments": len(segments)},
                "labels": dict(summary),
                "features": {"embedding": MODEL, "run": feature_run.coder if feature_run else None},
                "cross_fitting": {"folds": folds, "seed": seed, "by": "document", "fits_per_code": result.fits,
                                  "fallbacks": fallbacks},
                "notes": notes}
    run = rs.create_run(project.db, f"{name}:trained", fingerprint, manifest)
    for i, seg in enumerate(segments):
        rs.record_segment(project.db, run, seg.id, status="ok")
        record_scores(project.db, run.id, seg.id, {c: float(result.raw[i, j]) for j, c in enumerate(codes)})
    store_calibration(project.db, run, codebook, ScoreMatrix(ids, codes, result.raw, None), result.cal)
    counts = rs.segment_counts(project.db, run.id)
    final = rs.get_run(project.db, run.id).manifest
    rs.update_run(project.db, run.id, "finished", {**final, "counts": {**counts, "segments": len(segments)}}, True)
    return RunResult(rs.get_run(project.db, run.id), calls=0, seconds=time.perf_counter() - start, counts=counts), notes


class TrainedProvider:
    """``--provider trained``: per-code classifiers trained on ``config.train_with``'s labels score every segment at
    once (cross-fitted where labelled). Registered in :mod:`assistcode.providers.base`."""

    name = "trained"
    whole_run = True
    free = True

    @classmethod
    def settle(cls, config: RunConfig) -> None:
        """It learns from labels: refuse a run configuration that names none, before the project is opened."""
        if not config.train_with:
            raise InputError("the trained provider learns from labels: pass --train-with CODER, consensus or reviewed",
                             field="--train-with")
        config.base_url = None

    @classmethod
    def run(cls, project: Any, config: RunConfig, codebook: Codebook | None = None) -> tuple[RunResult, list[str]]:
        """Train and score as ``config`` says."""
        from .similarity import embedder_for

        return run_trained(project, train_with=config.train_with, features=config.features, codebook=codebook,
                           embedder=embedder_for(config.executor, config.ray_address),
                           **({"method": config.calibration} if config.calibration else {}))

    @classmethod
    def summary(cls, result: RunResult, config: RunConfig) -> str:
        state = "already finished" if result.already_finished else f"trained and scored in {result.seconds:.1f} s"
        return f"{result.run.coder}: {result.counts['ok']} segments, {state} (labels: {config.train_with})"
