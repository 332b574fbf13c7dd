"""The run engine: a provider codes a project's segments against its codebook, reliably and resumably.

Bounded async concurrency; retries with exponential backoff and jitter on rate limits (honouring Retry-After),
server errors, timeouts and dropped connections; a persistent cache keyed by the hash of (provider, model,
parameters, rendered prompt, sample), so a re-run or a resumed run never pays twice; reply validation; every
segment ends as ok (with proposals, possibly none) or failed with a reason, written atomically as it ends.
"""
from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from .. import __version__
from ..corpus import iter_segments
from ..errors import InputError
from ..ids import canonical_json, hash_json, sha256_text
from ..model import Codebook, Segment
from ..privacy import Scrubber, check_local_only, redact_url, tracing_off_unless_asked, url_secrets
from ..prompts import RenderedPrompt, Template, codebook_context, get_template
from ..providers.base import CallOptions, Provider, ProviderError, TransientError, get_provider
from . import store as rs
from .pricing import Price, count_message_tokens, price_for
from .replies import Proposal, ReplyError, Validated, parse_json, reply_schema, validate_reply

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

    def params(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed}


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


class _Failed(Exception):
    def __init__(self, reason: str, attempts: int, raw: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.attempts, self.raw = reason, attempts, raw


class _Stop(Exception):
    pass


@dataclass
class _Sample:
    results: dict[str, Validated]
    prompt_tokens: float
    completion_tokens: float
    attempts: int
    raw: str
    prompt_hash: str


def corpus_fingerprint(segments: Sequence[Segment]) -> str:
    return sha256_text("\n".join(s.id for s in segments))



class Engine:
    """One run of ``config`` over ``segments`` of a project store."""

    def __init__(self, db: Any, codebook: Codebook, config: RunConfig, *, provider: Provider | None = None,
                 template: Template | None = None, project_dir: Any = None,
                 progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        if config.samples < 1 or config.concurrency < 1 or config.batch_size < 1:
            raise InputError("samples, concurrency and batch size must be 1 or more")
        check_local_only(config.base_url, config.local_only)
        if config.local_only and config.provider == "langchain":
            check_local_only(str(config.provider_options.get("base_url") or "https://remote.invalid"), True)
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
        self._schema: dict[str, Any] | None = None
        self._schema_json: str | None = None
        self._key_prefix: str | None = None
        self._corpus_key: tuple[Sequence[Segment], str] | None = None
        self._context = {"codes": codebook_context(codebook), "codebook_name": codebook.name, "examples": config.examples}
        self.scrub = Scrubber([config.api_key, os.environ.get("OPENAI_API_KEY"), os.environ.get("ASSISTCODE_API_KEY"),
                               *url_secrets(config.base_url),
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
        segs = [{"id": name, "text": s.text, "speaker": s.speaker} for name, s in zip(names, group)]
        if self.template.output == "batch":
            return self.template.render(segments=segs, **self._context)
        return self.template.render(segment=segs[0], **self._context)

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
                          "examples": hash_json(c.examples), "options": {k: str(v) for k, v in c.provider_options.items()}})

    def groups(self, segments: Sequence[Segment]) -> list[list[Segment]]:
        if self.template.output == "batch":
            n = self.config.batch_size
            return [list(segments[i:i + n]) for i in range(0, len(segments), n)]
        return [[s] for s in segments]

    # -- provider ------------------------------------------------------------------------------------------------
    @property
    def provider(self) -> Provider:
        if self._provider is None:
            c = self.config
            options = dict(c.provider_options)
            if c.provider == "openai":
                endpoint = redact_url(c.base_url) or "https://api.openai.com/v1"
                options.update(base_url=c.base_url, api_key=c.api_key, timeout=c.timeout,
                               mode=options.get("mode") or rs.endpoint_mode(self.db, endpoint, c.model),
                               on_mode_change=lambda e, m, mode: rs.remember_mode(self.db, e, m, mode))
            elif c.api_key is not None:
                options["api_key"] = c.api_key
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
            "price_usd_per_m_tokens": asdict(self.price) if self.price else None,
            "package": {"assistcode": __version__, "python": platform.python_version()},
        }

    # -- one call ------------------------------------------------------------------------------------------------
    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after + random.uniform(0, 0.1 * max(retry_after, 0.1))
        delay = min(self.config.backoff_cap, self.config.backoff_base * 2 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.5)

    async def _call(self, group: Sequence[Segment], sample: int) -> _Sample:
        rendered = self.render(group)
        key = self.cache_key(rendered, sample, group)
        hit = rs.cache_get(self.db, key)
        if hit is not None:
            self.cache_hits += 1
            results = validate_reply(parse_json(hit["reply"]), self.template.output, group, self.code_ids, self.labels(group))
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
        last = ""
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                self.calls += 1
                reply = await self.provider.complete(list(rendered.messages), options)
            except TransientError as exc:
                if attempt == self.config.max_attempts:
                    raise _Failed(f"gave up after {attempt} attempts: {exc}", attempt) from None
                await asyncio.sleep(self._backoff(attempt, exc.retry_after))
                continue
            except ProviderError as exc:
                raise _Failed(str(exc), attempt) from None
            spent_p += reply.prompt_tokens
            spent_c += reply.completion_tokens
            if self.price is not None:
                self.spent += self.price.cost(reply.prompt_tokens, reply.completion_tokens)
            last = reply.text
            try:
                results = validate_reply(parse_json(reply.text), self.template.output, group, self.code_ids, self.labels(group))
            except ReplyError as exc:
                if reply.truncated and self.config.temperature == 0:  # asked again, it would stop at the same place
                    raise _Failed(f"reply cut at --max-tokens {self.config.max_tokens} ({exc}); raise --max-tokens",
                                  attempt, raw=reply.text) from None
                if attempt >= min(3, self.config.max_attempts):  # a malformed reply is asked again, twice at most
                    raise _Failed(str(exc), attempt, raw=reply.text) from None
                continue
            rs.cache_put(self.db, key, self.scrub(reply.text) or "", reply.prompt_tokens, reply.completion_tokens, reply.model, reply.mode)
            return _Sample(results, spent_p, spent_c, attempt, reply.text, rendered.hash)
        raise _Failed("no usable reply", self.config.max_attempts, raw=last)

    # -- a group of segments ----------------------------------------------------------------------------------------
    async def _group(self, run: rs.RunRow, group: list[Segment]) -> None:
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
            rs.record_segment(self.db, run, seg.id, status="failed", reason=self.scrub(f.reason),
                              attempts=max(f.attempts, int(tokens[2])), prompt_tokens=tokens[0], completion_tokens=tokens[1],
                              cost=cost, prompt_hash=prompt_hash, raw=self.scrub(f.raw))
            return
        proposals, consistency = _vote([v for v, _ in samples])
        unknown = sorted({c for v, _ in samples for c in v.unknown_codes})
        not_found = sum(1 for p in proposals if p.evidence and not p.evidence_found)
        raw = self.scrub(samples[0][1].raw) if (unknown or not_found) else None
        rs.record_segment(self.db, run, seg.id, status="ok", proposals=proposals, attempts=max(int(tokens[2]), 1),
                          prompt_tokens=tokens[0], completion_tokens=tokens[1], cost=cost, prompt_hash=prompt_hash,
                          unknown_codes=unknown, quotes_not_found=not_found,
                          self_consistency=consistency if self.config.samples > 1 else None, raw=raw)
        for v, _ in samples[:1]:
            if v.candidates:
                rs.record_candidates(self.db, run, seg.id, v.candidates)

    # -- the whole run -----------------------------------------------------------------------------------------------
    def estimate(self, segments: Sequence[Segment], done: set[str]) -> dict[str, Any]:
        todo = [s for s in segments if s.id not in done]
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
        if existing is not None and existing.status == "finished":
            return RunResult(existing, already_finished=True, seconds=time.perf_counter() - start,
                             counts=rs.segment_counts(self.db, existing.id))
        done = rs.done_segments(self.db, existing.id) if existing else set()
        if dry_run:
            return RunResult(existing, resumed=existing is not None, estimate=self.estimate(segments, done),
                             seconds=time.perf_counter() - start)
        run = existing or rs.create_run(self.db, f"{self.config.model}:{self.template.name}@{self.template.version}",
                                        fingerprint, self.manifest(segments))
        todo = [s for s in segments if s.id not in done]
        queue: asyncio.Queue[list[Segment]] = asyncio.Queue()
        for group in self.groups(todo):
            queue.put_nowait(group)
        total = len(segments)
        state = {"done": len(done), "total": total, "failed": 0}

        async def worker() -> None:
            while not queue.empty() and self.stopped is None:
                group = queue.get_nowait()
                try:
                    await self._group(run, group)
                except _Stop:
                    return
                state["done"] += len(group)
                if self.progress:
                    self.progress({**state, "calls": self.calls, "cache_hits": self.cache_hits, "spent": self.spent,
                                   "tokens": self.tokens, "failed": self.failed})

        try:
            await asyncio.gather(*(worker() for _ in range(min(self.config.concurrency, max(queue.qsize(), 1)))))
        finally:
            if self._provider is not None:
                await self._provider.aclose()
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
                         cache_hits=self.cache_hits, seconds=time.perf_counter() - start, stopped=self.stopped, counts=counts)


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
        if config.provider == "openai" and not config.base_url:
            config.base_url = os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
    segments = list(iter_segments(project.db))
    if segment_ids is not None:
        wanted = set(segment_ids)
        segments = [s for s in segments if s.id in wanted]
    if not segments:
        raise InputError("the project has no segments to code", hint="import transcripts first (assistcode import)")
    engine = Engine(project.db, codebook, config, provider=provider, project_dir=project.path, progress=progress)
    return asyncio.run(engine.run(segments, dry_run=dry_run))
