"""Scoring templates in a run: codes scored by the log-probabilities of a closed answer, then calibrated.

``output: per-code`` asks one yes/no question per code (raw score: P(yes) normalised over the yes/no variants);
``output: choice`` asks one question listing the codes as options A, B, C... plus "none of these" (raw score:
P(option)). A segment's questions go to the provider together (one ``score`` call), so a local model evaluates the
shared prefix (system, codebook, segment) once and only each short question after it. Each call is cached like a
generative call: a resumed or repeated run pays nothing. Content-free inputs ("N/A", "", "[MASK]") are scored
once per run for contextual calibration; the first of them is the probe that finds an endpoint without
log-probabilities before anything else is spent. When the segments are done, the run's scores are calibrated
(:func:`assistcode.calibration.calibrate`) and the codes decided on become the run's proposals
(:func:`assistcode.runs.scores.store_calibration`); these proposals have no rationale quote or evidence.
"""
from __future__ import annotations

import asyncio
import json
import string
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..calibration import calibrate
from ..errors import AssistcodeError, InputError
from ..ids import canonical_json, sha256_text
from ..model import Codebook, Segment
from ..privacy import redact_url
from ..providers.base import CallOptions, ProviderError, TransientError
from ..providers.logprobs import YES_NO, NoLogprobsError, ScoreReply
from ..store.db import transaction
from . import scores as sc
from . import store as rs
from .pricing import count_message_tokens

if TYPE_CHECKING:
    from .engine import Engine

MAX_OPTIONS = 20
"""Options in one choice question, "none" included: the most ``top_logprobs`` the OpenAI API returns."""
CONTENT_FREE = ("N/A", "", "[MASK]")
"""Content-free inputs (Zhao et al. 2021): their scores measure the template's bias per code."""
CALIBRATIONS = ("none", "contextual", "threshold", "platt", "isotonic")
LABELLED = ("threshold", "platt", "isotonic")
DEFAULT_CALIBRATION = {"per-code": "none", "choice": "contextual"}
"""Without labels, per template kind, as eval/bench/quality_bench.py measured them (results/quality_*.json).
choice: contextual (seed, MASI alpha 0.46 against 0.32 raw). per-code: none (ConvAbuse "abusive", kappa 0.45 raw
against 0.07 contextual: the content-free inputs pulled every turn to "yes"; on the exclusive seed contextual
helped per-code too, but there score-choice is the method to use)."""
DEFAULT_LABELLED = "platt"
"""With ``--calibrate-with`` and no ``--calibration`` (as for similarity): a Platt map and per-code thresholds,
cross-fitted by document."""
def best_local_template(codebook: Codebook) -> str:
    """What ``--provider local`` uses without ``--template``: the best offline method measured (quality_bench):
    ``score-choice`` for an exclusive codebook that fits one question, else ``score-per-code``."""
    return "score-choice" if codebook.exclusive and len(codebook) + 1 <= MAX_OPTIONS else "score-per-code"


class NoLogprobs(AssistcodeError):
    """A scoring template on an endpoint that returns no log-probabilities (exit 2: choose another template)."""

    exit_code = 2


class _SegmentFailed(Exception):
    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason, self.attempts = reason, attempts


def option_labels(n: int) -> list[str]:
    """One-token labels for ``n`` options: A, B, C..."""
    return list(string.ascii_uppercase[:n])


class Scoring:
    """The scoring side of an :class:`Engine` whose template's output is ``per-code`` or ``choice``."""

    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self.kind = engine.template.output
        codebook, config = engine.codebook, engine.config
        self.codes = [c.as_dict() for c in codebook.codes]
        if self.kind == "choice" and len(self.codes) + 1 > MAX_OPTIONS:
            raise InputError(f"template {engine.template.name!r} lists every code as one option: {len(self.codes)} codes "
                             f"and 'none' exceed {MAX_OPTIONS} options; use --template score-per-code", field="--template")
        method = config.calibration or (DEFAULT_LABELLED if config.calibrate_with else DEFAULT_CALIBRATION[self.kind])
        if method not in CALIBRATIONS:
            raise InputError(f"unknown calibration {method!r}", field="--calibration", hint="one of " + ", ".join(CALIBRATIONS))
        if method in LABELLED and not config.calibrate_with:
            raise InputError(f"--calibration {method} needs labels", field="--calibration",
                             hint="name them with --calibrate-with CODER|consensus|reviewed")
        self.method = method
        self.exclusive = self.kind == "choice" or codebook.exclusive
        if self.kind == "choice":
            labels = option_labels(len(self.codes) + 1)
            self.options = [{"label": lab, "code": c} for lab, c in zip(labels, self.codes)] + [{"label": labels[-1], "code": None}]

    # -- questions ---------------------------------------------------------------------------------------------------
    def questions(self, segment: dict[str, Any]) -> tuple[list[list[dict[str, str]]], list[list[str]], str]:
        """One segment's questions, the answers each allows, and the hash of the rendered prompts."""
        e = self.engine
        context = e.contexts.get(segment["id"], "")  # the turns before it, shown and never coded
        if self.kind == "per-code":
            rendered = [e.template.render(segment=segment, code=c, context=context, **e._context) for c in self.codes]
            answers = [YES_NO] * len(rendered)
        else:
            rendered = [e.template.render(segment=segment, options=self.options, context=context, **e._context)]
            answers = [[o["label"] for o in self.options]]
        digest = sha256_text("\x1f".join(r.hash for r in rendered))
        return [list(r.messages) for r in rendered], answers, digest

    def to_scores(self, probs: list[dict[str, float]]) -> dict[str, float]:
        """code -> raw score from each question's answer probabilities."""
        if self.kind == "per-code":
            return {c["id"]: p.get("yes", float("nan")) for c, p in zip(self.codes, probs)}
        return {o["code"]["id"]: probs[0].get(o["label"], float("nan")) for o in self.options if o["code"]}

    # -- calls ---------------------------------------------------------------------------------------------------------
    def _key(self, digest: str) -> str:
        c = self.engine.config
        prefix = canonical_json({"provider": c.provider, "model": c.model, "endpoint": redact_url(c.base_url),
                                 "score": self.kind, "options": {k: str(v) for k, v in c.provider_options.items()}})
        return sha256_text("\x1f".join((prefix, digest)))

    async def ask(self, segment: dict[str, Any]) -> tuple[dict[str, float], float, float, int, str]:
        """Raw scores of one segment (from the cache, or one ``score`` call with retries): (scores, prompt tokens,
        completion tokens, attempts, prompt hash)."""
        e = self.engine
        questions, answers, digest = self.questions(segment)
        key = self._key(digest)
        hit = rs.cache_get(e.db, key)
        if hit is not None:
            e.cache_hits += 1
            return self.to_scores(json.loads(hit["reply"])["probs"]), 0.0, 0.0, 0, digest
        score = getattr(e.provider, "score", None)
        if score is None:
            raise NoLogprobs(f"provider {e.config.provider!r} cannot score (no log-probabilities): template "
                             f"{e.template.name!r} needs openai, langchain, local or mock")
        for attempt in range(1, e.config.max_attempts + 1):
            try:
                e.calls += 1
                reply: ScoreReply = await score(questions, answers, CallOptions(seed=e.config.seed))
            except NoLogprobsError as exc:
                endpoint = redact_url(e.config.base_url or e.config.provider_options.get("base_url")) or e.config.provider
                raise NoLogprobs(f"template {e.template.name!r} reads its answers from log-probabilities, and {endpoint} "
                                 f"gave none ({exc}); use a generative template such as deductive, or an endpoint "
                                 "that returns logprobs") from None
            except TransientError as exc:
                if attempt == e.config.max_attempts:
                    raise _SegmentFailed(f"gave up after {attempt} attempts: {exc}", attempt) from None
                await asyncio.sleep(e._backoff(attempt, exc.retry_after))
                continue
            except ProviderError as exc:
                raise _SegmentFailed(str(exc), attempt) from None
            raw = self.to_scores(reply.probs)
            # through the engine: kept for later (never lost) if another command holds the store's write lock
            e.writes.store_reply(key, {"reply": json.dumps({"probs": reply.probs, "mass": reply.mass}),
                                 "prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                                 "model": reply.model, "mode": "logprobs"})
            return raw, float(reply.prompt_tokens), float(reply.completion_tokens), attempt, digest
        raise _SegmentFailed("no usable reply", e.config.max_attempts)

    async def content_free(self) -> dict[str, dict[str, float]]:
        """Scores of the content-free inputs, one after another (the first call probes for log-probabilities)."""
        out = {}
        for text in CONTENT_FREE:
            try:
                out[text] = (await self.ask({"id": "content-free", "text": text, "speaker": None}))[0]
            except _SegmentFailed as exc:
                raise AssistcodeError(f"scoring the content-free input {text!r} failed: {exc.reason}") from None
        return out

    def record_content_free(self, run: rs.RunRow, scores: dict[str, dict[str, float]]) -> None:
        for text, raw in scores.items():
            sc.record_content_free(self.engine.db, run.id, text, raw)

    async def segment(self, run: rs.RunRow, seg: Segment) -> None:
        """Score one segment and record it (scores and outcome in one transaction), or record why it failed."""
        e = self.engine
        try:
            raw, prompt, completion, attempts, digest = await self.ask({"id": seg.id, "text": seg.text, "speaker": seg.speaker})
        except _SegmentFailed as exc:
            e.failed += 1
            reason, tries = e.scrub(exc.reason), exc.attempts
            e.writes.store(lambda: rs.record_segment(e.db, run, seg.id, status="failed", reason=reason, attempts=tries))
            return
        e.tokens += prompt + completion
        cost = e.price.cost(prompt, completion) if e.price else None

        def write() -> None:
            with transaction(e.db):
                sc.record_scores(e.db, run.id, seg.id, raw)
                rs.record_segment(e.db, run, seg.id, status="ok", attempts=max(attempts, 1), prompt_tokens=prompt,
                                  completion_tokens=completion, cost=cost, prompt_hash=digest)

        e.writes.store(write)

    # -- calibration -----------------------------------------------------------------------------------------------------
    def finish(self, run: rs.RunRow, segments: Sequence[Segment]) -> None:
        """Calibrate the run's scores and make the decided codes its proposals (replacing earlier ones)."""
        e = self.engine
        matrix = sc.load_scores(e.db, run.id)
        if not matrix.segment_ids:
            return
        docs = {s.id: s.document_id for s in segments}
        labels = None
        if e.config.calibrate_with:
            labels = label_matrix(e.db, e.config.calibrate_with, e.codebook, matrix.segment_ids, matrix.codes)
        cf = sc.load_content_free(e.db, run.id, matrix.codes) if self.method == "contextual" else None
        allow_none, several = True, 0
        if labels is not None and self.exclusive:  # labels that put a code on every unit they saw: always decide one
            seen = ~np.isnan(labels).all(axis=1)
            allow_none = not (seen.any() and (np.nan_to_num(labels[seen]).sum(axis=1) > 0).all())
            several = int((np.nan_to_num(labels).sum(axis=1) > 1).sum())
        cal = calibrate(matrix.raw, method=self.method, labels=labels,
                        groups=[docs.get(s, s) for s in matrix.segment_ids], content_free=cf, exclusive=self.exclusive,
                        allow_none=allow_none, label_source=e.config.calibrate_with, codes=matrix.codes,
                        unit_ids=matrix.segment_ids)
        if self.kind == "choice" and self.method not in LABELLED:
            _argmax_choice(cal, allow_none)
        cal.manifest.setdefault("label_source", e.config.calibrate_with)
        if several:
            cal.manifest["warning"] = (f"the codebook is exclusive, yet {e.config.calibrate_with} put several codes on "
                                       f"{several} unit(s)")
        if labels is not None:
            labelled = ~np.isnan(labels).all(axis=1)
            cal.manifest["labelled_units"] = int(labelled.sum())
            cal.manifest["labelled_documents"] = len({docs.get(s, s) for s, ok in zip(matrix.segment_ids, labelled) if ok})
        sc.store_calibration(e.db, run, e.codebook, matrix, cal)

    def estimate(self, todo: Sequence[Segment]) -> dict[str, Any]:
        """--dry-run: calls, prompt tokens (every question counted in full: a server may not reuse the prefix) and
        one completion token per question."""
        e = self.engine
        prompt = cached = 0
        per_segment = len(self.codes) if self.kind == "per-code" else 1
        for seg in [*todo, *(Segment("content-free", "", 0, 0, len(t), t) for t in CONTENT_FREE)]:
            questions, _, digest = self.questions({"id": seg.id, "text": seg.text, "speaker": seg.speaker})
            if rs.cache_get(e.db, self._key(digest)) is not None:
                cached += 1
                continue
            prompt += sum(count_message_tokens(q) for q in questions)
        calls = len(todo) + len(CONTENT_FREE)
        completion = (calls - cached) * per_segment
        price = e.price
        return {"segments": len(todo), "calls": calls, "cached_calls": cached, "prompt_tokens": prompt,
                "completion_tokens_typical": completion, "completion_tokens_at_most": completion,
                "cost_usd_typical": price.cost(prompt, completion) if price else None,
                "cost_usd_at_most": price.cost(prompt, completion) if price else None,
                "tokenizer": "o200k_base (offline)"}

    def manifest(self) -> dict[str, Any]:
        c = self.engine.config
        return {"kind": self.kind, "answers": "yes/no" if self.kind == "per-code" else "option letters",
                "calibration": self.method, "calibrate_with": c.calibrate_with, "exclusive": self.exclusive,
                "content_free_inputs": list(CONTENT_FREE), "rationale_and_evidence": "none (scored, not generated)"}


def _argmax_choice(cal: Any, allow_none: bool) -> None:
    """Without labels, a choice question's decision is its most probable option, "none of these" included (its
    probability is what the codes leave): each unit's threshold is then the probability of "none"."""
    prob = np.asarray(cal.prob, dtype=float)
    n, k = prob.shape
    none = np.clip(1.0 - prob.sum(axis=1), 0.0, 1.0) if allow_none else np.zeros(n)
    best = prob.argmax(axis=1) if k else np.zeros(n, int)
    pick = prob[np.arange(n), best] >= none if k else np.zeros(n, bool)
    decisions = np.zeros((n, k), bool)
    decisions[np.arange(n)[pick], best[pick]] = True
    cal.decisions = decisions
    cal.threshold = np.repeat(none[:, None], k, axis=1)
    cal.manifest["decision"] = "argmax over the options" + (", 'none of these' included" if allow_none else "")
    cal.manifest["proposed"] = int(decisions.sum())


def label_matrix(db: Any, source: str, codebook: Codebook, segment_ids: Sequence[str], codes: Sequence[str]) -> np.ndarray:
    """units x ``codes`` labels of ``source`` for calibration (see :func:`assistcode.trained.label_matrix`)."""
    from ..trained import label_matrix as labels_of

    return labels_of(db, source, codebook, segment_ids, codes, option="--calibrate-with")
