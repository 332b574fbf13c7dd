"""Reading a closed answer from the first answer token's log-probabilities, shared by every provider's ``score``.

A question has a few answers (``yes``/``no``, or option letters ``A``, ``B``...). An answer's probability is the sum
over its single-token variants (``yes``, ``Yes``, `` yes``, `` Yes``, ``YES``), normalised over the answers. A
provider that can score implements::

    async def score(self, questions: list[list[dict[str, str]]], answers: list[list[str]],
                    options: CallOptions) -> ScoreReply
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .base import ProviderError

YES_NO = ["yes", "no"]


@dataclass
class ScoreReply:
    """Per question, each answer's probability normalised over the question's answers."""

    probs: list[dict[str, float]]
    prompt_tokens: int = 0
    """Prompt tokens evaluated (local: after prefix reuse; remote: as the endpoint reports them)."""
    completion_tokens: int = 0
    model: str | None = None
    mass: list[float] = field(default_factory=list)
    """Per question, the probability the answers held before normalising (low: the model wanted to say something else)."""


class NoLogprobsError(ProviderError):
    """The endpoint returned no log-probabilities: scoring templates cannot read an answer from it."""


def variants(answer: str) -> list[str]:
    """The spellings of ``answer`` a tokenizer may produce as a single first token."""
    forms = {answer, answer.lower(), answer.upper(), answer.capitalize()}
    return sorted(forms | {" " + f for f in forms})


def normalise(raw: Mapping[str, float], answers: Iterable[str]) -> tuple[dict[str, float], float]:
    """Answers' summed probabilities normalised to 1, and the mass they held. A question where no answer got any
    mass is refused (the score would be invented)."""
    answers = list(answers)
    total = sum(raw.get(a, 0.0) for a in answers)
    if not total > 0 or not math.isfinite(total):
        raise ProviderError(f"none of the answers {', '.join(answers)} had any probability as the first token")
    return {a: raw.get(a, 0.0) / total for a in answers}, total


def from_top_logprobs(top: Iterable[tuple[str, float]], answers: list[str]) -> tuple[dict[str, float], float]:
    """Answer probabilities from a top-k list of (token, logprob). An answer with no variant in the list gets the
    probability of the least likely listed token (an upper bound on its true mass), so it is never read as 0; a
    list holding none of the answers is refused."""
    top = list(top)
    if not top:
        raise ProviderError("empty top_logprobs")
    summed: dict[str, float] = {}
    lookup = {v: a for a in answers for v in variants(a)}
    for token, logprob in top:
        a = lookup.get(token)
        if a is not None:
            summed[a] = summed.get(a, 0.0) + math.exp(logprob)
    if not summed:
        raise ProviderError(f"none of the answers {', '.join(answers)} is among the {len(top)} most likely first tokens")
    floor = math.exp(min(lp for _, lp in top))
    for a in answers:
        summed.setdefault(a, floor)
    return normalise(summed, answers)


def top_of_body(body: Mapping[str, Any]) -> list[tuple[str, float]] | None:
    """The first reply token's top log-probabilities, ``(token, logprob)`` most likely first as the endpoint listed
    them, read from a chat completion's JSON body (a Batch API result line's ``response.body``); None when the body
    carries none (the endpoint ignored ``logprobs``). Reads what the ``openai`` provider's synchronous ``score`` reads
    from the SDK's object: ``choices[0].logprobs.content[0].top_logprobs``."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise ProviderError("reply with no choices")
    logprobs = choices[0].get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
    if not isinstance(content, list) or not content or not isinstance(content[0], Mapping):
        return None
    top = content[0].get("top_logprobs")
    if not isinstance(top, list) or not top:
        return None
    try:
        return [(str(e["token"]), float(e["logprob"])) for e in top]
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderError(f"a malformed top_logprobs entry ({type(exc).__name__}: {exc})") from None


def usage_of_body(body: Mapping[str, Any]) -> tuple[int, int]:
    """(prompt tokens, completion tokens) a chat completion's JSON body reports; 0 where it reports none."""
    usage = body.get("usage")
    if not isinstance(usage, Mapping):
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
