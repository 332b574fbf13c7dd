"""The engine's provider during a pass of a Batch API run (runs/batch.py): each call is answered from the batches'
replies where they came back, else its request line is collected (to a spool on disk) and the group left for later
(:class:`~assistcode.runs.engine.Deferred`). Scoring templates: one request per question, a segment answered once
every question has its reply.
"""
from __future__ import annotations

import tempfile
from collections import Counter
from typing import Any

from ..ids import canonical_json
from ..providers.base import ProviderError
from ..providers.logprobs import ScoreReply, from_top_logprobs, top_of_body, usage_of_body
from . import batch_store as bs
from .batch_files import custom_id, request_body, request_line, score_body
from .pricing import count_message_tokens


class BatchProvider:
    """Stands in for the ``openai`` provider during a pass: answers from the batches' replies, collects the rest."""

    name = "openai"
    own_deadline = True

    def __init__(self, inner: Any, states: dict[str, bs.RequestState], engine: Any) -> None:
        self.inner, self.model, self.states, self.engine = inner, inner.model, states, engine
        self.wanted: dict[str, int] = {}
        """Requests to send, in order: custom_id -> length of its line, written in that order to ``spool``."""
        self.spool: Any = None
        self.asked: Counter[str] = Counter()
        self.replayed = 0
        self.left_for_sync = 0
        self.committed = 0.0
        self.direct: set[str] = set()
        """Scoring templates: the content-free inputs' questions (canonical JSON), asked synchronously (see
        :meth:`score`)."""
        self.sync_now = False
        """Scoring templates, the last pass of ``--batch-fallback sync``: what has no reply is called synchronously."""
        self.sync_requests = 0
        """Requests :meth:`score` made synchronously, over every pass."""
        self.run_id: int | None = None

    def begin_pass(self, states: dict[str, bs.RequestState], run_id: int | None) -> None:
        self.states, self.run_id = states, run_id
        self.wanted.clear()
        if self.spool is not None:
            self.spool.close()
        self.spool = tempfile.TemporaryFile()  # the lines to send, on disk: memory stays one line's
        self.asked.clear()
        self.left_for_sync = 0
        self.committed = 0.0

    async def complete(self, messages: list[dict[str, str]], options: Any) -> Any:
        from .engine import Deferred

        body = request_body(self.inner, messages, options)
        cid = custom_id(body)
        k = self.asked[cid]
        self.asked[cid] += 1
        state = self.states.get(cid)
        if state is not None and k < state.replies:  # the k-th time the engine asks: the k-th reply
            self.replayed += 1
            return self.inner._reply(bs.response(self.engine.db, self.run_id, cid, k), self.inner.mode)
        if state is not None and state.status == "sent":
            raise Deferred(cid)
        if state is not None and state.status == "sync":
            self.left_for_sync += 1
            raise Deferred(cid)
        if state is not None and state.status == "failed":
            raise ProviderError(f"Batch API: {state.error or 'failed'}")
        if cid not in self.wanted:  # new, to be sent again, or asked again after a malformed reply
            self._within_budget(messages)
            line = request_line(cid, body)
            self.spool.write(line)
            self.wanted[cid] = len(line)
        raise Deferred(cid)

    async def score(self, questions: list[list[dict[str, str]]], answers: list[list[str]], options: Any) -> ScoreReply:
        """A scoring template's segment: one request per question (its code, or its options), each collected with its
        own custom_id; the segment waits (:class:`~assistcode.runs.engine.Deferred`) until every question has its
        reply, then is answered from them as the ``openai`` provider's ``score`` answers (the first token's top
        log-probabilities, token counts summed), so the engine scores, calibrates, caches and costs it as it does a
        synchronous reply. The content-free inputs are asked synchronously, before anything is sent (the engine asks
        for them before its run exists; they also probe the endpoint for log-probabilities, as a synchronous run's
        do)."""
        from .engine import Deferred

        if canonical_json(questions) in self.direct:
            self.sync_requests += len(questions)
            return await self.inner.score(questions, answers, options)
        request = [score_body(self.inner, q, options) for q in questions]
        cids = [custom_id(body) for body in request]
        states = [self.states.get(cid) for cid in cids]
        for state in states:  # one question failed for good: so does its segment, and nothing more is sent for it
            if state is not None and not state.replies and state.status == "failed":
                raise ProviderError(f"Batch API: {state.error or 'failed'}")
        bodies: list[dict[str, Any] | None] = [None] * len(questions)
        now: list[int] = []
        waiting = ""
        for i, (cid, state) in enumerate(zip(cids, states)):
            if state is not None and state.replies:  # the latest reply (a question asked again is asked the same)
                bodies[i] = bs.response(self.engine.db, self.run_id, cid, state.replies - 1)
            elif self.sync_now:
                now.append(i)
            elif state is not None and state.status == "sent":
                waiting = cid
            elif state is not None and state.status == "sync":
                self.left_for_sync += 1
                waiting = cid
            else:  # new, or to be sent again
                if cid not in self.wanted:
                    self._within_budget(questions[i], 1)
                    line = request_line(cid, request[i])
                    self.spool.write(line)
                    self.wanted[cid] = len(line)
                waiting = cid
        if waiting:
            raise Deferred(waiting)
        self.replayed += len(questions) - len(now)
        return self._scored(bodies, answers, now, await self._sync_score(questions, answers, options, now))

    async def _sync_score(self, questions: list[list[dict[str, str]]], answers: list[list[str]], options: Any,
                          now: list[int]) -> ScoreReply | None:
        if not now:
            return None
        self.sync_requests += len(now)
        return await self.inner.score([questions[i] for i in now], [answers[i] for i in now], options)

    def _scored(self, bodies: list[dict[str, Any] | None], answers: list[list[str]], now: list[int],
                direct: ScoreReply | None) -> ScoreReply:
        """The :class:`ScoreReply` of a segment's questions: from the batch replies' bodies, and the synchronous
        reply of those in ``now``."""
        probs: list[dict[str, float]] = []
        mass: list[float] = []
        prompt = completion = 0
        from_sync = {i: k for k, i in enumerate(now)}
        for i, body in enumerate(bodies):
            if i in from_sync and direct is not None:
                probs.append(direct.probs[from_sync[i]])
                mass.append(direct.mass[from_sync[i]])
                continue
            assert body is not None
            top = top_of_body(body)
            if top is None:  # the synchronous provider's NoLogprobsError, word for word: here the segment fails
                raise ProviderError(f"Batch API: {self.inner.endpoint[0]} returned no log-probabilities for "
                                    f"{self.inner.model}")
            p, m = from_top_logprobs(top, answers[i])
            probs.append(p)
            mass.append(m)
            used = usage_of_body(body)
            prompt += used[0]
            completion += used[1]
        if direct is not None:
            prompt += direct.prompt_tokens
            completion += direct.completion_tokens
        return ScoreReply(probs, prompt, completion, self.inner.model, mass)

    def _within_budget(self, messages: list[dict[str, str]], max_tokens: int | None = None) -> None:
        """--max-cost: a request is collected only while its worst cost still fits what is left."""
        from .engine import Deferred

        e = self.engine
        if e.config.max_cost is None or e.price is None:
            return
        worst = e.price.cost(count_message_tokens(messages), e.config.max_tokens if max_tokens is None else max_tokens)
        if e.spent + self.committed + worst > e.config.max_cost:
            e.stopped = (f"stopped before the budget of ${e.config.max_cost:g} would be exceeded "
                         f"(spent ${e.spent:.4f}, ${self.committed:.4f} more sent in batches)")
            raise Deferred("budget")
        self.committed += worst

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "transport": "batch api"}

    async def aclose(self) -> None:
        return None  # the inner provider is closed at the end of the whole run
