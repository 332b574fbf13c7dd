"""Any LangChain chat model, named by import path (``langchain_openai:ChatOpenAI``) and built with ``model=`` and
the options given. Replies are asked for as JSON in the prompt (JSON mode where the model supports it)."""
from __future__ import annotations

import asyncio
from typing import Any

from ..errors import InputError
from ..privacy import check_local_only, redact_url, tracing_off_unless_asked
from .base import CallOptions, ModeMemory, ProviderError, Reply, RunSettings, TransientError, require, resolve
from .http_guard import GuardError
from .logprobs import NoLogprobsError, ScoreReply, from_top_logprobs

TOP_LOGPROBS = 20


class LangChainProvider:
    name = "langchain"

    @classmethod
    def settle(cls, config: RunSettings) -> None:
        """Its endpoint is an option of the chat model: ``--base-url`` goes there."""
        if config.base_url:
            config.provider_options.setdefault("base_url", config.base_url)
        config.base_url = None

    @classmethod
    def check(cls, config: RunSettings) -> None:
        """Under --local-only, a chat model named without an endpoint would reach its vendor's: refused."""
        if config.local_only:
            check_local_only(str(config.provider_options.get("base_url") or "https://remote.invalid"), True)

    @classmethod
    def options_from(cls, config: RunSettings, modes: ModeMemory | None = None) -> dict[str, Any]:
        options = dict(config.provider_options)
        if config.api_key is not None:
            options["api_key"] = config.api_key
        return {**options, "local_only": config.local_only}

    def __init__(self, model: str, chat_model: str | None = None, json_mode: bool = True, **options: Any) -> None:
        tracing_off_unless_asked()
        require("langchain_core", "langchain-core")
        if not chat_model or ":" not in chat_model:
            raise InputError("the langchain provider needs --chat-model MODULE:CLASS, e.g. langchain_openai:ChatOpenAI",
                             field="--chat-model")
        cls = resolve(chat_model)
        self.model = model
        self.chat_model = chat_model
        local_only = bool(options.pop("local_only", False))
        self.options = {k: v for k, v in options.items() if v is not None and k not in ("modes", "mode")}
        kwargs = dict(self.options)
        if "http_async_client" in getattr(cls, "model_fields", {}) and "http_async_client" not in kwargs:
            # an OpenAI-based chat model: the same redirect policy and reply cap as the openai provider
            from .http_guard import guarded_client

            kwargs["http_async_client"] = guarded_client(local_only=local_only,
                                                         timeout=float(kwargs.get("timeout") or 60.0))
        self._llm = cls(model=model, **kwargs)
        self.json_mode = json_mode
        self._probe_lock = asyncio.Lock()
        self._logprobs_ok = False

    async def complete(self, messages: list[dict[str, str]], options: CallOptions) -> Reply:
        llm = self._llm.bind(temperature=options.temperature, max_tokens=options.max_tokens)
        if self.json_mode and options.schema is not None:
            llm = llm.bind(response_format={"type": "json_object"})
        try:
            msg = await llm.ainvoke([(m["role"], m["content"]) for m in messages])
        except Exception as exc:  # LangChain wraps each SDK's errors differently; sort by status where there is one
            guarded = next((e for e in (exc, exc.__cause__) if isinstance(e, GuardError)), None)
            if guarded is not None:  # a redirect off the host, a reply over the cap
                raise ProviderError(str(guarded)) from None
            status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
            if status == 429 or (isinstance(status, int) and status >= 500) or "timeout" in type(exc).__name__.lower():
                raise TransientError(f"{type(exc).__name__}: {exc}") from None
            raise ProviderError(f"{type(exc).__name__}: {exc}") from None
        usage = getattr(msg, "usage_metadata", None) or {}
        return Reply(str(msg.content), usage.get("input_tokens", 0), usage.get("output_tokens", 0), self.model, "langchain")

    async def _score_one(self, messages: list[dict[str, str]], answers: list[str]) -> tuple[dict[str, float], float, dict]:
        llm = self._llm.bind(temperature=0.0, max_tokens=1, logprobs=True, top_logprobs=TOP_LOGPROBS)
        try:
            msg = await llm.ainvoke([(m["role"], m["content"]) for m in messages])
        except Exception as exc:
            status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
            if status == 429 or (isinstance(status, int) and status >= 500) or "timeout" in type(exc).__name__.lower():
                raise TransientError(f"{type(exc).__name__}: {exc}") from None
            if "logprob" in str(exc).lower() or isinstance(exc, TypeError):
                raise NoLogprobsError(f"{self.chat_model} ({self.model}) refused log-probabilities: {exc}") from None
            raise ProviderError(f"{type(exc).__name__}: {exc}") from None
        content = ((getattr(msg, "response_metadata", None) or {}).get("logprobs") or {}).get("content") or []
        top = content[0].get("top_logprobs") if content else None
        if not top:
            raise NoLogprobsError(f"{self.chat_model} ({self.model}) returned no log-probabilities")
        probs, mass = from_top_logprobs([(t["token"], t["logprob"]) for t in top], answers)
        return probs, mass, getattr(msg, "usage_metadata", None) or {}

    async def score(self, questions: list[list[dict[str, str]]], answers: list[list[str]], options: CallOptions) -> ScoreReply:
        """The first answer token's top log-probabilities where the chat model exposes them (``ChatOpenAI`` does, as
        ``response_metadata["logprobs"]``); the first request is a probe, alone, so a model that exposes none costs
        one call."""
        done: list[tuple[dict[str, float], float, dict]] = []
        async with self._probe_lock:
            if not self._logprobs_ok:
                done.append(await self._score_one(questions[0], answers[0]))
                self._logprobs_ok = True
        done += await asyncio.gather(*(self._score_one(q, a) for q, a in list(zip(questions, answers))[len(done):]))
        return ScoreReply([p for p, _, _ in done], sum(u.get("input_tokens", 0) for _, _, u in done),
                          sum(u.get("output_tokens", 0) for _, _, u in done), self.model, [m for _, m, _ in done])

    def describe(self) -> dict[str, Any]:
        safe = {k: (redact_url(v) if "url" in k else v) for k, v in self.options.items()
                if "key" not in k.lower() and "secret" not in k.lower() and "token" not in k.lower()}
        return {"provider": self.name, "chat_model": self.chat_model, "model": self.model, "options": safe}

    async def aclose(self) -> None:
        return None
