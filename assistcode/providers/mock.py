"""A scriptable fake provider, shipped for tests and examples (no network, no key).

    provider = MockProvider(model="m")
    provider.enqueue('{"codes": []}')                 # the next call's reply text
    provider.enqueue(TransientError("rate limited"))  # the next call raises
    provider.enqueue(lambda messages: "...")           # computed from the prompt
    provider.history                                  # every call's messages
    provider.enqueue_scores({"yes": 0.8, "no": 0.2})  # the next scoring question's answer probabilities

With nothing queued it answers with ``default`` (a text, or a function of the messages); its own default applies
the codes whose ids or names appear in the segment, quoting them as evidence.
"""
from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from typing import Any, Callable

from .base import CallOptions, Reply
from .logprobs import ScoreReply, from_top_logprobs

Scripted = str | Exception | Callable[[list[dict[str, str]]], str]
ScoreScript = dict[str, float] | Exception | Callable[[list[dict[str, str]], list[str]], dict[str, float]]


def keyword_reply(messages: list[dict[str, str]]) -> str:
    """Apply each code whose id (or name) occurs in the segment text; JSON in the deductive or batch shape."""
    system, user = messages[0]["content"], messages[-1]["content"]
    ids = re.findall(r"^- id: (\S+)", system, re.MULTILINE)
    blocks = re.findall(r'Segment (\S+)?[^\n]*:\n"""\n(.*?)\n"""', user, re.DOTALL)

    def codes_for(text: str) -> list[dict[str, Any]]:
        out = []
        for code in ids:
            m = re.search(re.escape(code), text, re.IGNORECASE)
            if m:
                out.append({"code": code, "rationale": f"mentions {code}", "evidence": text[m.start():m.end()],
                            "confidence": 0.9})
        return out

    if '"segments"' in system:
        return json.dumps({"segments": [{"segment_id": sid.rstrip(":"), "codes": codes_for(text)} for sid, text in blocks]})
    text = blocks[0][1] if blocks else user
    return json.dumps({"codes": codes_for(text)})


class MockProvider:
    name = "mock"
    free = True

    def __init__(self, model: str = "mock", default: Scripted | None = None, latency: float = 0.0, **_: Any) -> None:
        self.model = model
        self.default: Scripted = default if default is not None else keyword_reply
        self.latency = latency
        self.queue: deque[Scripted] = deque()
        self.history: list[list[dict[str, str]]] = []
        self.score_queue: deque[ScoreScript] = deque()

    def enqueue(self, *items: Scripted) -> "MockProvider":
        self.queue.extend(items)
        return self

    async def complete(self, messages: list[dict[str, str]], options: CallOptions) -> Reply:
        self.history.append(messages)
        if self.latency:
            await asyncio.sleep(self.latency)
        item = self.queue.popleft() if self.queue else self.default
        if isinstance(item, Exception):
            raise item
        text = item(messages) if callable(item) else item
        prompt = sum(len(m["content"]) for m in messages) // 4
        return Reply(text, prompt_tokens=prompt, completion_tokens=len(text) // 4, model=self.model, mode="mock")

    def enqueue_scores(self, *items: ScoreScript) -> "MockProvider":
        """Answer probabilities for the next ``score`` questions, one item per question: a dict such as
        ``{"yes": 0.8, "no": 0.2}`` (used as given, unchecked: to test what the engine refuses), an exception to
        raise, or a function of (messages, answers)."""
        self.score_queue.extend(items)
        return self

    async def score(self, questions: list[list[dict[str, str]]], answers: list[list[str]], options: CallOptions) -> ScoreReply:
        """Scripted answer probabilities, else the keyword rule of the testing server (``yes`` with 0.9 when the
        segment mentions the code asked about; the option whose code it mentions with 0.85)."""
        from ..testing.server import keyword_logprobs

        probs = []
        for messages, answer in zip(questions, answers):
            self.history.append(messages)
            item = self.score_queue.popleft() if self.score_queue else None
            if isinstance(item, Exception):
                raise item
            if item is None:
                probs.append(from_top_logprobs(keyword_logprobs(messages), answer)[0])
            else:
                probs.append(dict(item(messages, answer) if callable(item) else item))
        if self.latency:
            await asyncio.sleep(self.latency)
        prompt = sum(len(m["content"]) for q in questions for m in q) // 4
        return ScoreReply(probs, prompt_tokens=prompt, completion_tokens=len(questions), model=self.model)

    def describe(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model}

    async def aclose(self) -> None:
        return None
