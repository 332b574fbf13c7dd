"""Several OpenAI-compatible endpoints serving one model, used as one provider (``--base-url A --base-url B``).

Each call goes to the endpoint with the fewest calls in flight (ties: the one least used so far), so a slow server
gets less work without any tuning. An endpoint that fails :data:`FAILS_TO_REST` times in a row (server errors,
timeouts, refused connections) is rested for :data:`REST_S` seconds, doubled each time it fails again after a rest,
and is tried again when its rest is over; while every endpoint rests, the one whose rest ends first is tried. The
failing call itself is retried by the engine, which sends it elsewhere. Each reply says which endpoint answered it
(``Reply.endpoint``), and :meth:`EndpointPool.describe` counts calls, answers and rests per endpoint for the run's
manifest.

The first URL names the run (its identity and its cache): the others are replicas of it, so a run started on two
servers resumes on three, or on one.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..errors import InputError
from ..privacy import check_local_only, redact_url
from .base import CallOptions, Provider, ProviderError, Reply, TransientError

FAILS_TO_REST = 3
"""Failures in a row after which an endpoint is rested."""
REST_S = 15.0
"""The first rest, seconds; doubled after each failure that follows a rest, up to :data:`MAX_REST_S`."""
MAX_REST_S = 240.0


@dataclass
class Endpoint:
    """One endpoint of a pool, with its load and its health."""

    url: str
    """Redacted, as shown and stored."""
    provider: Provider
    in_flight: int = 0
    calls: int = 0
    answered: int = 0
    failures: int = 0
    fails_in_row: int = 0
    rests: int = 0
    rest_s: float = REST_S
    resting_until: float = 0.0
    last_error: str | None = None
    order: int = field(default=0, repr=False)

    def stats(self) -> dict[str, Any]:
        return {"url": self.url, "calls": self.calls, "answered": self.answered, "failures": self.failures,
                "rests": self.rests, **({"last_error": self.last_error} if self.last_error else {})}


def check_endpoints(urls: Sequence[str], local_only: bool) -> list[str]:
    """The endpoints of ``--base-url`` given several times: each one obeys ``--local-only``, none twice."""
    seen: set[str] = set()
    out = []
    for url in urls:
        if not url or not url.strip():
            raise InputError("an empty endpoint", field="--base-url", hint="pass --base-url URL once per server")
        check_local_only(url, local_only)
        key = url.rstrip("/")
        if key in seen:
            raise InputError(f"the endpoint {redact_url(url)} is given twice", field="--base-url")
        seen.add(key)
        out.append(url)
    return out


class EndpointPool:
    """A provider over several endpoints of one model (each an ``openai`` provider)."""

    name = "openai"

    def __init__(self, urls: Sequence[str], model: str, *, local_only: bool = False,
                 make: Callable[..., Provider] | None = None, fails_to_rest: int = FAILS_TO_REST,
                 rest_s: float = REST_S, clock: Callable[[], float] = time.monotonic, **options: Any) -> None:
        urls = check_endpoints(urls, local_only)
        if len(urls) < 1:
            raise InputError("no endpoint", field="--base-url")
        if make is None:
            from .openai_compat import OpenAIProvider as make  # type: ignore[assignment]
        self.model = model
        self.fails_to_rest, self.clock, self.rest_s = fails_to_rest, clock, rest_s
        self.endpoints = [Endpoint(redact_url(u) or u, make(model=model, base_url=u, local_only=local_only, **options),
                                   rest_s=rest_s, order=i) for i, u in enumerate(urls)]

    # -- choosing ----------------------------------------------------------------------------------------------------
    def pick(self) -> Endpoint:
        """The endpoint for the next call: the least loaded of those not resting (else the one that wakes first)."""
        now = self.clock()
        awake = [e for e in self.endpoints if e.resting_until <= now]
        if not awake:
            return min(self.endpoints, key=lambda e: (e.resting_until, e.order))
        return min(awake, key=lambda e: (e.in_flight, e.calls, e.order))

    def _failed(self, e: Endpoint, exc: Exception) -> None:
        e.failures += 1
        e.fails_in_row += 1
        e.last_error = str(exc)[:200]
        if e.fails_in_row >= self.fails_to_rest:
            if e.rests:  # it failed again after a rest: rest longer
                e.rest_s = min(MAX_REST_S, e.rest_s * 2)
            e.rests += 1
            e.resting_until = self.clock() + e.rest_s
            e.fails_in_row = 0

    def _answered(self, e: Endpoint) -> None:
        e.answered += 1
        e.fails_in_row = 0
        e.rest_s = self.rest_s  # healthy again: the next rest starts short

    async def _on(self, call: Callable[[Provider], Any]) -> tuple[Any, Endpoint]:
        e = self.pick()
        e.in_flight += 1
        e.calls += 1
        try:
            result = await call(e.provider)
        except TransientError as exc:
            self._failed(e, exc)
            raise TransientError(f"{e.url}: {exc}", exc.retry_after) from None
        except ProviderError as exc:
            # a refusal about the request itself (every endpoint would refuse it) does not rest the endpoint
            raise ProviderError(f"{e.url}: {exc}") from None
        finally:
            e.in_flight -= 1
        self._answered(e)
        return result, e

    # -- the provider interface ----------------------------------------------------------------------------------------
    async def complete(self, messages: list[dict[str, str]], options: CallOptions) -> Reply:
        reply, e = await self._on(lambda p: p.complete(messages, options))
        reply.endpoint = e.url
        return reply

    async def score(self, questions: list[list[dict[str, str]]], answers: list[list[str]], options: CallOptions) -> Any:
        reply, _ = await self._on(lambda p: p.score(questions, answers, options))  # type: ignore[attr-defined]
        return reply

    @property
    def mode(self) -> str | None:
        return getattr(self.endpoints[0].provider, "mode", None)

    def describe(self) -> dict[str, Any]:
        first = self.endpoints[0].provider.describe()
        return {**first, "base_url": self.endpoints[0].url, "endpoints": [e.stats() for e in self.endpoints]}

    async def aclose(self) -> None:
        await asyncio.gather(*(e.provider.aclose() for e in self.endpoints))
