"""The run engine: a provider codes a project's segments against its codebook, reliably and resumably.

Bounded async concurrency; retries with exponential backoff and jitter on rate limits (honouring Retry-After),
server errors, timeouts and dropped connections; a persistent cache keyed by the hash of (provider, model,
parameters, rendered prompt, sample), so a re-run or a resumed run never pays twice; reply validation; every
segment ends as ok (with proposals, possibly none) or failed with a reason, written atomically as it ends.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import random
import sqlite3
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Container, Iterable, Iterator, Sequence

from .. import __version__
from ..errors import InputError
from ..ids import canonical_json, hash_json, sha256_text
from ..store.db import RUN_CACHE_KIB, StoreBusy, busy_timeout, page_cache, transaction
from ..model import Codebook, Segment
from ..privacy import Scrubber, check_local_only, redact_url, tracing_off_unless_asked, url_secrets
from ..prompts import SCORING_OUTPUTS, RenderedPrompt, Template, codebook_context, get_template
from ..providers.base import (CallOptions, Provider, ProviderError, Reply, TransientError, check as check_provider,
                              get_provider, options_from, settle, trait)
from . import store as rs
from .pricing import Price, count_message_tokens, price_for
from .replies import Proposal, ReplyError, Validated, parse_json, reply_schema, validate_reply
from .pending import WRITE_WAIT, PendingWrites
from .selection import StoredContexts, selection_rule, stored_selection
from .scoring import Scoring

MALFORMED_ATTEMPTS = 3
"""Malformed replies (not JSON, not the schema) asked again at most this many times in all, apart from the
--max-attempts budget of transient errors."""

TYPICAL_COMPLETION_TOKENS = {"codes": 60, "batch": 60, "cot": 220, "inductive": 90}
"""Per segment, for --dry-run estimates (replies are short JSON; reasoning is longer)."""


@dataclass
class RunConfig:
    """Everything ``assistcode code`` takes. The API key is used, never stored."""

    provider: str = "mock"
    model: str = "mock"
    template: str = "deductive"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = None
    concurrency: int = 8
    samples: int = 1
    batch_size: int = 10
    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_cost: float | None = None
    price: str | None = None
    context_window: int = 32_768
    local_only: bool = False
    examples: list[dict[str, Any]] = field(default_factory=list)
    provider_options: dict[str, Any] = field(default_factory=dict)
    context_turns: int | None = None
    """Preceding turns shown to the model as ``{{ context }}`` (never coded); ``None`` (the default, as in the CLI):
    1 for interviews (segments with roles), else 0."""
    skip_roles: tuple[str, ...] | None = None
    """Roles left uncoded (``interviewer``); ``None`` (the default, as in the CLI): the interviewer's turns for
    interviews, nothing otherwise; ``()`` codes every role."""
    skip_speakers: tuple[str, ...] = ()
    """Speakers whose turns are left uncoded (case-insensitive)."""
    train_with: str | None = None
    """``trained``: the labels it learns from (a coder, consensus, reviewed)."""
    features: str | None = None
    """``trained``: a scoring run whose per-code probabilities it learns from too."""
    calibration: str | None = None
    """Scoring templates: none | contextual | threshold | platt | isotonic (default: see runs/scoring.py)."""
    calibrate_with: str | None = None
    """Scoring templates: the labels (a coder, consensus, reviewed) that calibrate per-code thresholds, cross-fitted."""
    replicas: tuple[str, ...] = ()
    """More endpoints serving the model of ``base_url`` (``--base-url`` repeated): calls spread by load. Not part of
    the run's identity: a run resumes on more or fewer of them."""
    executor: str = "process"
    """Where calls are made: ``process`` (this one) or ``ray`` (a Ray cluster's workers; see runs/ray_executor.py)."""
    ray_address: str | None = None
    """The Ray cluster (``--ray-address``); None starts a local one."""
    batch: Any = None
    """``--batch-api``: a :class:`~assistcode.runs.batch.BatchOptions`; the calls go through OpenAI's Batch API
    (runs/batch.py). Not part of the run's identity: a run started either way is finished either way."""

    def params(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed}

    def validate(self) -> None:
        """Refuse, in one line naming the option, a value no run can use: 0, negatives, NaN, infinity.

        What a run is (its identity) is the provider, model, endpoint, parameters (temperature, max tokens, seed),
        template, codebook, corpus, samples, batch size and examples; how hard it tries (timeout, attempts,
        concurrency, backoff, budget) is not, so a run that failed for a passing reason is retried with saner values."""
        positive = {"timeout": self.timeout, "backoff_cap": self.backoff_cap}
        at_least_one = {"max_attempts": self.max_attempts, "concurrency": self.concurrency, "samples": self.samples,
                        "batch_size": self.batch_size, "max_tokens": self.max_tokens, "context_window": self.context_window}
        for name, value in positive.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"must be a number of seconds above 0, not {value!r}", field=_option(name))
        for name, value in at_least_one.items():
            if not (isinstance(value, int) and value >= 1):
                raise InputError(f"must be a whole number of 1 or more, not {value!r}", field=_option(name))
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise InputError(f"must be a number of 0 or more, not {self.temperature!r}", field="--temperature")
        if self.max_cost is not None and not (math.isfinite(self.max_cost) and self.max_cost >= 0):
            raise InputError(f"must be an amount of 0 or more (USD), not {self.max_cost!r}", field="--max-cost")
        if not (math.isfinite(self.backoff_base) and self.backoff_base >= 0):
            raise InputError(f"must be 0 or more, not {self.backoff_base!r}", field="backoff_base")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass
class RunResult:
    run: rs.RunRow | None
    already_finished: bool = False
    resumed: bool = False
    calls: int = 0
    """Calls made to the provider now (retries included)."""
    cache_hits: int = 0
    seconds: float = 0.0
    stopped: str | None = None
    estimate: dict[str, Any] | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    total: int = 0
    """Segments in the run."""

    @property
    def exit_status(self) -> int:
        """0 every segment coded (or a dry run), 3 some segments failed or are not coded yet, 4 none coded: every
        one failed, or nothing could be sent (a budget stopped the run first)."""
        if self.estimate is not None:
            return 0
        ok = self.counts.get("ok", 0)
        if ok and ok >= self.total:
            return 0
        return 3 if ok else 4


class _Failed(Exception):
    def __init__(self, reason: str, attempts: int, raw: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.attempts, self.raw = reason, attempts, raw


class _Stop(Exception):
    pass


class Deferred(Exception):
    """A provider's reply that comes later (the Batch API, runs/batch.py): the group is left, nothing recorded."""


@dataclass
class _Sample:
    results: dict[str, Validated]
    prompt_tokens: float
    completion_tokens: float
    attempts: int
    raw: str
    prompt_hash: str
    endpoint: str | None = None


def corpus_fingerprint(segments: Sequence[Segment]) -> str:
    return sha256_text("\n".join(s.id for s in segments))



class Engine:
    """One run of ``config`` over ``segments`` of a project store."""

    def __init__(self, db: Any, codebook: Codebook, config: RunConfig, *, provider: Provider | None = None,
                 template: Template | None = None, project_dir: Any = None,
                 progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        config.validate()
        check_local_only(config.base_url, config.local_only)
        for url in config.replicas:
            check_local_only(url, config.local_only)
        check_provider(config)  # the provider's own refusals (langchain: a chat model's endpoint under --local-only)
        tracing_off_unless_asked()
        self.db, self.codebook, self.config = db, codebook, config
        self.template = template or get_template(config.template, project_dir)
        self._provider = provider
        self.progress = progress
        self.code_ids = {c.id for c in codebook.codes}
        self.price: Price | None = price_for(config.provider, config.model, config.price)
        self.calls = 0
        self.cache_hits = 0
        self.tokens = 0.0
        self.failed = 0
        self.spent = 0.0
        self.stopped: str | None = None
        self.writes = PendingWrites(db)
        """Every write of the run: kept for later, never lost, while another command holds the store."""
        self._schema: dict[str, Any] | None = None
        self._schema_json: str | None = None
        self._key_prefix: str | None = None
        self._own_deadline: bool | None = None
        self._corpus_key: tuple[Sequence[Segment], str] | None = None
        self._context = {"codes": codebook_context(codebook), "codebook_name": codebook.name, "examples": config.examples}
        self.contexts: dict[str, str] = {}
        """Segment id -> its preceding turns as text (``{{ context }}``), set by :func:`code_project`."""
        self.scoring = Scoring(self) if self.template.output in SCORING_OUTPUTS else None
        if self.scoring is None and (config.calibration or config.calibrate_with):
            raise InputError(f"template {self.template.name!r} generates its codes: --calibration and --calibrate-with "
                             "apply to scoring templates (score-per-code, score-choice)", field="--calibration")
        self.scrub = Scrubber([config.api_key, os.environ.get("OPENAI_API_KEY"), os.environ.get("ASSISTCODE_API_KEY"),
                               *url_secrets(config.base_url), *(s for u in config.replicas for s in url_secrets(u)),
                               *(str(v) for k, v in config.provider_options.items() if "key" in k.lower() or "token" in k.lower())])

    def _corpus(self, segments: Sequence[Segment]) -> str:
        """The corpus fingerprint, computed once per run (a million ids take a while to hash)."""
        if self._corpus_key is None or self._corpus_key[0] is not segments:
            self._corpus_key = (segments, corpus_fingerprint(segments))
        return self._corpus_key[1]

    # -- rendering and keys --------------------------------------------------------------------------------------
    @staticmethod
    def labels(group: Sequence[Segment]) -> list[str]:
        """What a batch prompt calls its segments: 1, 2, 3... (a segment id costs about eight tokens, twice)."""
        return [str(i + 1) for i in range(len(group))]

    def render(self, group: Sequence[Segment]) -> RenderedPrompt:
        names = self.labels(group) if self.template.output == "batch" else [s.id for s in group]
        contexts = self.contexts
        segs = [{"id": name, "text": s.text, "speaker": s.speaker, "role": s.role, "start_time": s.start_time,
                 "context": contexts.get(s.id, "")} for name, s in zip(names, group)]
        if self.template.output == "batch":
            return self.template.render(segments=segs, context="", **self._context)
        return self.template.render(segment=segs[0], context=segs[0]["context"], **self._context)

    def schema(self, group: Sequence[Segment]) -> dict[str, Any]:
        if self.template.output != "batch":  # the same for every call: build it once
            if self._schema is None:
                self._schema = reply_schema(self.template.output, sorted(self.code_ids))
            return self._schema
        return reply_schema(self.template.output, sorted(self.code_ids), self.labels(group))

    def cache_key(self, rendered: RenderedPrompt, sample: int, group: Sequence[Segment]) -> str:
        """sha256 of (provider, model, parameters, endpoint, reply schema, rendered prompt, sample index)."""
        if self._key_prefix is None:
            self._key_prefix = canonical_json({"provider": self.config.provider, "model": self.config.model,
                                               "params": self.config.params(), "endpoint": redact_url(self.config.base_url)})
        schema = self._schema_json if self.template.output != "batch" else None
        if schema is None:
            schema = canonical_json(self.schema(group))
            if self.template.output != "batch":
                self._schema_json = schema
        return sha256_text("\x1f".join((self._key_prefix, schema, rendered.hash, str(sample))))

    def fingerprint(self, segments: Sequence[Segment]) -> str:
        c = self.config
        return hash_json({"provider": c.provider, "model": c.model, "endpoint": redact_url(c.base_url),
                          "params": c.params(), "template": self.template.hash, "codebook": self.codebook.hash,
                          "corpus": self._corpus(segments), "samples": c.samples,
                          "batch_size": c.batch_size if self.template.output == "batch" else 1,
                          "examples": hash_json(c.examples), "options": {k: str(v) for k, v in c.provider_options.items()},
                          **({"context_turns": c.context_turns} if c.context_turns else {}),
                          **({"calibration": self.scoring.method, "calibrate_with": c.calibrate_with} if self.scoring else {})})

    def groups(self, segments: Iterable[Segment], done: Container[str] = ()) -> Iterator[list[Segment]]:
        """The calls' groups of the segments not ``done`` (``batch_size`` each for a batch template, else one),
        made one at a time: a run holds the groups in flight, not its corpus."""
        n = self.config.batch_size if self.template.output == "batch" else 1
        group: list[Segment] = []
        for s in segments:
            if s.id in done:
                continue
            group.append(s)
            if len(group) == n:
                yield group
                group = []
        if group:
            yield group

    # -- provider ------------------------------------------------------------------------------------------------
    @property
    def provider(self) -> Provider:
        if self._provider is None:
            c = self.config
            options = options_from(c, rs.EndpointModes(self.db, self.writes.store))  # each provider takes its own
            if c.executor == "ray":  # the calls are made by a Ray cluster's workers; this process writes the store
                from .ray_executor import RayProvider

                self._provider = RayProvider(c, options)
            elif c.replicas and trait(c.provider, "pool"):  # several endpoints of one model, as one provider
                options.pop("base_url", None)
                self._provider = trait(c.provider, "pool")([c.base_url or "", *c.replicas], c.model, **options)
            else:
                self._provider = get_provider(c.provider, c.model, **options)
        return self._provider

    def manifest(self, segments: Sequence[Segment], run: rs.RunRow | None = None) -> dict[str, Any]:
        c = self.config
        described = self.provider.describe()
        return {
            "provider": {**described, "provider": c.provider, "model": c.model, "endpoint": redact_url(c.base_url)},
            "parameters": {**c.params(), "samples": c.samples, "concurrency": c.concurrency,
                           "batch_size": c.batch_size if self.template.output == "batch" else 1,
                           "max_attempts": c.max_attempts, "context_window": c.context_window},
            "template": {"name": self.template.name, "version": self.template.version, "hash": self.template.hash},
            "codebook": {"name": self.codebook.name, "hash": self.codebook.hash, "codes": len(self.codebook)},
            "corpus": {"fingerprint": self._corpus(segments), "segments": len(segments)},
            "examples": {"count": len(c.examples), "hash": hash_json(c.examples),
                         "segments": [e["segment_id"] for e in c.examples if e.get("segment_id")]},
            "selection": {"context_turns": c.context_turns or 0, "skip_roles": list(c.skip_roles or ()),
                          "skip_speakers": list(c.skip_speakers)},
            "price_usd_per_m_tokens": asdict(self.price) if self.price else None,
            "package": {"assistcode": __version__, "python": platform.python_version()},
            **({"scoring": self.scoring.manifest()} if self.scoring else {}),
        }

    # -- one call ------------------------------------------------------------------------------------------------
    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``: the server's Retry-After or exponential backoff with
        jitter, never more than the backoff cap (a Retry-After of 3600 or ``inf`` waits the cap)."""
        cap = self.config.backoff_cap
        if retry_after is not None and math.isfinite(retry_after) and retry_after >= 0:
            return min(cap, retry_after + random.uniform(0, 0.1 * max(retry_after, 0.1)))
        if retry_after is not None:  # inf: as long as we ever wait
            return cap
        delay = min(cap, self.config.backoff_base * 2 ** (attempt - 1))
        return min(cap, delay * random.uniform(0.5, 1.5))

    async def _call(self, group: Sequence[Segment], sample: int) -> _Sample:
        rendered = self.render(group)
        key = self.cache_key(rendered, sample, group)
        hit = self.writes.unstored.get(key) or rs.cache_get(self.db, key)
        if hit is not None:
            self.cache_hits += 1
            results = validate_reply(self.scrub.deep(parse_json(hit["reply"])), self.template.output, group, self.code_ids,
                                     self.labels(group))
            return _Sample(results, hit["prompt_tokens"], hit["completion_tokens"], 0, hit["reply"], rendered.hash)
        chars = sum(len(m["content"]) for m in rendered.messages)
        # a token is at least one character: count tokens only where the prompt might not fit, or money is counted
        exact = chars + 16 * len(rendered.messages) + self.config.max_tokens > self.config.context_window or (
            self.config.max_cost is not None and self.price is not None)
        tokens = count_message_tokens(list(rendered.messages)) if exact else 0
        if tokens + self.config.max_tokens > self.config.context_window:
            raise _Failed(f"prompt of {tokens} tokens plus {self.config.max_tokens} for the reply exceeds the context "
                          f"window of {self.config.context_window} (segment not truncated: split it, or raise --context-window)", 0)
        if self.config.max_cost is not None and self.price is not None:
            worst = self.price.cost(tokens, self.config.max_tokens)
            if self.spent + worst > self.config.max_cost:
                self.stopped = f"stopped before the budget of ${self.config.max_cost:g} would be exceeded (spent ${self.spent:.4f})"
                raise _Stop()
        options = CallOptions(schema=self.schema(group), temperature=self.config.temperature,
                              max_tokens=self.config.max_tokens,
                              seed=(self.config.seed or 0) + sample if self.config.seed is not None or sample else None)
        spent_p = spent_c = 0.0
        # two budgets: transient errors (429, 5xx, timeouts, dropped connections) up to --max-attempts; malformed
        # replies up to MALFORMED_ATTEMPTS. One kind of fault never uses up the other's retries.
        transient = malformed = attempt = 0
        while True:
            attempt += 1
            try:
                self.calls += 1
                reply = await self._complete(list(rendered.messages), options)
            except TransientError as exc:
                transient += 1
                if transient >= self.config.max_attempts:
                    raise _Failed(f"gave up after {transient} attempts: {exc}", attempt) from None
                await asyncio.sleep(self._backoff(transient, exc.retry_after))
                continue
            except ProviderError as exc:
                raise _Failed(str(exc), attempt) from None
            spent_p += reply.prompt_tokens
            spent_c += reply.completion_tokens
            if self.price is not None:
                self.spent += self.price.cost(reply.prompt_tokens, reply.completion_tokens)
            try:
                # parsed, then scrubbed: rationales, quotes and unknown code names are stored and exported as they are
                parsed = parse_json(reply.text)
                clean = self.scrub.deep(parsed)
                results = validate_reply(clean, self.template.output, group, self.code_ids, self.labels(group))
            except ReplyError as exc:
                if reply.truncated and self.config.temperature == 0:  # asked again, it would stop at the same place
                    raise _Failed(f"reply cut at --max-tokens {self.config.max_tokens} ({exc}); raise --max-tokens",
                                  attempt, raw=reply.text) from None
                malformed += 1
                if malformed >= min(MALFORMED_ATTEMPTS, self.config.max_attempts):  # asked again, twice at most
                    raise _Failed(str(exc), attempt, raw=reply.text) from None
                continue
            # a secret the text hid behind JSON escapes shows only once parsed: then the scrubbed JSON is what is kept
            text = self.scrub(reply.text) or "" if clean == parsed else json.dumps(clean, ensure_ascii=False)
            # with the segment's outcome where it follows at once (one segment, one sample): one commit for both
            self.writes.store_reply(key, {"reply": text, "prompt_tokens": reply.prompt_tokens,
                                    "completion_tokens": reply.completion_tokens, "model": reply.model, "mode": reply.mode},
                                    with_next=self.template.output != "batch" and self.config.samples == 1)
            return _Sample(results, spent_p, spent_c, attempt, text, rendered.hash, reply.endpoint)

    async def _complete(self, messages: list[dict[str, str]], options: CallOptions) -> Reply:
        """One call, within a total deadline of --timeout: the ``openai`` provider keeps it per request itself,
        ``local`` runs in this process with no network to wait on; any other (langchain, plugins) is cut here."""
        if self._own_deadline is None:  # looked up once: a registry lookup per call is CPU a long run pays in full
            self._own_deadline = bool(trait(self.config.provider, "own_deadline", False))
        if self._own_deadline:
            return await self.provider.complete(messages, options)
        try:
            return await asyncio.wait_for(self.provider.complete(messages, options), self.config.timeout)
        except asyncio.TimeoutError:
            raise TransientError(f"timed out after {self.config.timeout:g} s") from None

    def _abandon(self, run: rs.RunRow) -> None:
        """On the way out after an error or an interrupt: keep what could not be stored, let go of the run."""
        try:
            self.writes.abandon()
            with busy_timeout(self.db, WRITE_WAIT):
                rs.release_run(self.db, run.id)
        except (StoreBusy, OSError, sqlite3.Error):
            pass  # the run stays "running" with a dead owner: the next command resumes it

    async def _heartbeat(self, run: rs.RunRow) -> None:
        while True:
            await asyncio.sleep(rs.HEARTBEAT_S)
            try:
                with busy_timeout(self.db, WRITE_WAIT):
                    rs.heartbeat(self.db, run.id)
            except StoreBusy:
                pass

    # -- a group of segments ----------------------------------------------------------------------------------------
    async def _group(self, run: rs.RunRow, group: list[Segment]) -> None:
        if self.scoring:  # scoring templates: one score call per segment, see runs/scoring.py
            return await self.scoring.segment(run, group[0])
        per_segment: dict[str, list[tuple[Validated, _Sample]]] = {s.id: [] for s in group}
        failures: dict[str, _Failed] = {}
        tokens: dict[str, list[float]] = {s.id: [0.0, 0.0, 0] for s in group}
        hashes: dict[str, str] = {}
        for sample in range(self.config.samples):
            try:
                result = await self._call(group, sample)
            except _Failed as exc:
                for s in group:
                    failures.setdefault(s.id, exc)
                continue
            share = 1 / len(group)
            for s in group:
                tokens[s.id][0] += result.prompt_tokens * share
                tokens[s.id][1] += result.completion_tokens * share
                tokens[s.id][2] += result.attempts
                hashes.setdefault(s.id, result.prompt_hash)
                if s.id in result.results:
                    per_segment[s.id].append((result.results[s.id], result))
                elif len(group) > 1:  # a batch reply left it out: ask for it alone
                    try:
                        alone = await self._call([s], sample)
                        per_segment[s.id].append((alone.results[s.id], alone))
                        tokens[s.id][0] += alone.prompt_tokens
                        tokens[s.id][1] += alone.completion_tokens
                    except (_Failed, KeyError) as exc:
                        failures.setdefault(s.id, exc if isinstance(exc, _Failed) else _Failed(
                            "left out of the batch reply, and of the reply for it alone", 1, result.raw))
                else:
                    failures.setdefault(s.id, _Failed("left out of the reply", result.attempts, result.raw))
        for s in group:
            self._record(run, s, per_segment[s.id], failures.get(s.id), tokens[s.id], hashes.get(s.id))

    def _record(self, run: rs.RunRow, seg: Segment, samples: list[tuple[Validated, _Sample]], failure: _Failed | None,
                tokens: list[float], prompt_hash: str | None) -> None:
        cost = self.price.cost(tokens[0], tokens[1]) if self.price else None
        self.tokens += tokens[0] + tokens[1]
        if not samples:
            self.failed += 1
            f = failure or _Failed("no reply", 0)
            reason, raw = self.scrub(f.reason), self.scrub(f.raw)
            self.writes.store(lambda: rs.record_segment(
                self.db, run, seg.id, status="failed", reason=reason, attempts=max(f.attempts, int(tokens[2])),
                prompt_tokens=tokens[0], completion_tokens=tokens[1], cost=cost, prompt_hash=prompt_hash, raw=raw))
            return
        proposals, consistency = _vote([v for v, _ in samples])
        unknown = sorted({c for v, _ in samples for c in v.unknown_codes})
        not_found = sum(int(bool(p.evidence and not p.evidence_found)) + p.more_not_found for p in proposals)
        raw = self.scrub(samples[0][1].raw) if (unknown or not_found) else None
        candidates = samples[0][0].candidates

        def write() -> None:
            with transaction(self.db):  # the outcome and its candidates together, or neither
                recorded = rs.record_segment(
                    self.db, run, seg.id, status="ok", proposals=proposals, attempts=max(int(tokens[2]), 1),
                    prompt_tokens=tokens[0], completion_tokens=tokens[1], cost=cost, prompt_hash=prompt_hash,
                    unknown_codes=unknown, quotes_not_found=not_found,
                    self_consistency=consistency if self.config.samples > 1 else None, raw=raw,
                    endpoint=samples[0][1].endpoint)
                if recorded and candidates:
                    rs.record_candidates(self.db, run, seg.id, candidates)

        self.writes.store(write)

    # -- the whole run -----------------------------------------------------------------------------------------------
    def estimate(self, segments: Sequence[Segment], done: set[str]) -> dict[str, Any]:
        todo = [s for s in segments if s.id not in done]
        if self.scoring:
            return self.scoring.estimate(todo)
        prompt = cached = calls = 0
        for group in self.groups(todo):
            rendered = self.render(group)
            for sample in range(self.config.samples):
                calls += 1
                if rs.cache_get(self.db, self.cache_key(rendered, sample, group)) is not None:
                    cached += 1
                    continue
                prompt += count_message_tokens(list(rendered.messages))
        per_seg = TYPICAL_COMPLETION_TOKENS[self.template.output]
        completion = per_seg * len(todo) * self.config.samples * (calls - cached) / max(calls, 1)
        upper = self.config.max_tokens * (calls - cached)
        price = self.price
        return {"segments": len(todo), "calls": calls, "cached_calls": cached, "prompt_tokens": prompt,
                "completion_tokens_typical": round(completion), "completion_tokens_at_most": upper,
                "cost_usd_typical": price.cost(prompt, completion) if price else None,
                "cost_usd_at_most": price.cost(prompt, upper) if price else None,
                "tokenizer": "o200k_base (offline)"}

    async def run(self, segments: Sequence[Segment], dry_run: bool = False) -> RunResult:
        if not dry_run:
            self.provider  # import the SDK and build the client before the clock starts
        start = time.perf_counter()
        fingerprint = self.fingerprint(segments)
        existing = rs.find_run(self.db, fingerprint)
        retry_replied = self.config.temperature > 0
        if existing is not None and existing.status == "finished" and (
                rs.settled_segments(self.db, existing.id, retry_replied) >= rs.done_segments(self.db, existing.id)):
            return RunResult(existing, already_finished=True, seconds=time.perf_counter() - start,
                             counts=rs.segment_counts(self.db, existing.id), total=len(segments))
        # failures are not final: a re-run asks again for the segments that failed for a passing reason (see
        # settled_segments; cached replies cost nothing)
        done = rs.settled_segments(self.db, existing.id, retry_replied) if existing else set()
        if dry_run:
            return RunResult(existing, resumed=existing is not None, estimate=self.estimate(segments, done),
                             seconds=time.perf_counter() - start)
        content_free = None
        if self.scoring:  # the first of these calls probes for log-probabilities, before anything is written
            try:
                content_free = await self.scoring.content_free()
            except BaseException:
                await self.provider.aclose()
                raise
        self.writes.restore_unstored()
        # this process takes the run (another live command on it is refused); one whose command died is resumed
        run, resumed = rs.claim_run(self.db, fingerprint, f"{self.config.model}:{self.template.name}@{self.template.version}",
                                    self.manifest(segments))
        existing = run if resumed else None
        done = rs.settled_segments(self.db, run.id, retry_replied)
        if content_free is not None:
            self.scoring.record_content_free(run, content_free)
        todo = self.groups(segments, done)  # made as the workers take them
        total = len(segments)
        state = {"done": len(done), "total": total, "failed": 0}
        if self.progress:  # at once, before the first reply (a local model loads first)
            self.progress({**state, "phase": "starting", "calls": 0, "cache_hits": 0, "spent": 0.0, "tokens": 0.0})

        async def worker() -> None:
            while self.stopped is None:
                group = next(todo, None)
                if group is None:
                    return
                try:
                    await self._group(run, group)
                except _Stop:
                    return
                except Deferred:
                    continue
                state["done"] += len(group)
                if self.progress:
                    self.progress({**state, "calls": self.calls, "cache_hits": self.cache_hits, "spent": self.spent,
                                   "tokens": self.tokens, "failed": self.failed})

        beat = asyncio.create_task(self._heartbeat(run))
        try:
            await asyncio.gather(*(worker() for _ in range(self.config.concurrency)))
            self.writes.settle()
        except BaseException:
            self._abandon(run)
            raise
        finally:
            beat.cancel()
            if self._provider is not None:
                await self._provider.aclose()
        if self.scoring:
            self.scoring.finish(run, segments)  # calibrate the scores so far; the proposals follow
        counts = rs.segment_counts(self.db, run.id)
        finished = counts["ok"] + counts["failed"] == total
        manifest = {**run.manifest, **self.manifest(segments)}
        manifest["counts"] = {**counts, "segments": total, "not_yet_coded": total - counts["ok"] - counts["failed"]}
        manifest["last_session"] = {"calls": self.calls, "cache_hits": self.cache_hits, "seconds": round(time.perf_counter() - start, 3)}
        if self.stopped:
            manifest["stopped"] = self.stopped
        manifest = json.loads(self.scrub(json.dumps(manifest)) or "{}")
        rs.update_run(self.db, run.id, "finished" if finished else "stopped", manifest, finished)
        return RunResult(rs.get_run(self.db, run.id), resumed=existing is not None, calls=self.calls,
                         cache_hits=self.cache_hits, seconds=time.perf_counter() - start, stopped=self.stopped, counts=counts,
                         total=total)


def _vote(samples: list[Validated]) -> tuple[list[Proposal], float]:
    """Majority vote over samples: a code stays when more than half the samples applied it; its confidence is
    the share that did (one sample: the model's own confidence). Returns the proposals and the share of samples
    whose code set equals the majority set."""
    if len(samples) == 1:
        return samples[0].proposals, 1.0
    n = len(samples)
    votes = Counter(p.code for v in samples for p in v.proposals)
    kept = {code for code, k in votes.items() if 2 * k > n}
    proposals = []
    for code in sorted(kept):
        first = next(p for v in samples for p in v.proposals if p.code == code)
        proposals.append(Proposal(code, first.rationale, first.evidence, first.evidence_start, first.evidence_end,
                                  first.evidence_found, votes[code] / n))
    agree = sum(1 for v in samples if {p.code for p in v.proposals} == kept) / n
    return proposals, agree


def code_project(project: Any, config: RunConfig, *, codebook: Codebook | None = None, dry_run: bool = False,
                 provider: Provider | None = None, progress: Callable[[dict[str, Any]], None] | None = None,
                 segment_ids: Sequence[str] | None = None) -> RunResult:
    """Code a project's segments (all, or ``segment_ids``) against its current codebook (or ``codebook``)."""
    codebook = codebook or project.codebook()
    if project.config().get("local_only") and not config.local_only:
        config.local_only = True  # the project's setting holds for every run
        settle(config)  # openai: the endpoint a call would reach, for the loopback check
    # the segments are read from the store as the run needs them (runs/selection.py), and the run's page cache is
    # bounded: its memory does not grow with the corpus
    with page_cache(project.db, RUN_CACHE_KIB):
        return _code_project(project, config, codebook, dry_run, provider, progress, segment_ids)


def _code_project(project: Any, config: RunConfig, codebook: Codebook, dry_run: bool, provider: Provider | None,
                  progress: Callable[[dict[str, Any]], None] | None, segment_ids: Sequence[str] | None) -> RunResult:
    db = project.db
    interview = db.execute("SELECT 1 FROM segments WHERE coalesce(role, '') != '' LIMIT 1").fetchone() is not None
    speakers = {r[0] for r in db.execute("SELECT DISTINCT speaker FROM segments WHERE coalesce(speaker, '') != ''")}
    keep = selection_rule(config, interview, speakers)
    if segment_ids is not None:
        wanted = set(segment_ids)
        segments = stored_selection(db, lambda sid, role, speaker: sid in wanted and keep(role, speaker))
    else:
        segments = stored_selection(db, lambda sid, role, speaker: keep(role, speaker))
    if not segments:
        if db.execute("SELECT 1 FROM segments LIMIT 1").fetchone() is not None:
            raise InputError("every segment is left out by --skip-role / --skip-speaker",
                             hint="pass --skip-role none to code every role")
        raise InputError("the project has no segments to code", hint="import transcripts first (assistcode import)")
    engine = Engine(project.db, codebook, config, provider=provider, project_dir=project.path, progress=progress)
    if config.context_turns:
        engine.contexts = StoredContexts(db, config.context_turns)  # type: ignore[assignment]
    if config.batch is not None:
        from .batch import run_batch

        return run_batch(engine, segments, dry_run=dry_run)
    return asyncio.run(engine.run(segments, dry_run=dry_run))
