"""Any OpenAI-compatible chat-completions endpoint (OpenAI, Azure, Ollama, vLLM, LM Studio, llama.cpp server).

Structured output is asked for in the best way the server supports: JSON schema, then JSON mode (with the schema,
which llama.cpp's server honours), then a forced tool call, then the prompt alone. A refusal is recognised by the
error's body (it names ``response_format``, ``json_schema``, ``tools`` or says "not supported"), not by the status
alone, since some servers answer an unsupported ``response_format`` with HTTP 500; other 5xx are retried. The
mode that worked is remembered per endpoint and model, in the one memory the run hands over (the project store's).
"""
from __future__ import annotations

import asyncio
import os
import re
from typing import Any

from ..errors import InputError
from ..privacy import redact_url
from .endpoints import EndpointPool
from .base import CallOptions, ModeMemory, ProviderError, Reply, RunSettings, TransientError, require
from .http_guard import GuardError, guarded_client
from .logprobs import NoLogprobsError, ScoreReply, from_top_logprobs

TOP_LOGPROBS = 20
"""The most ``top_logprobs`` the OpenAI API returns: a choice question has at most this many options."""

MODES = ("json_schema", "json_object", "tools", "prompt")
REFUSAL = re.compile(r"response_format|json_schema|json_object|schema|tool|not supported|unsupported|unknown (field|parameter)|"
                      r"unrecognized|extra inputs", re.IGNORECASE)
PUBLIC_ENDPOINT = "https://api.openai.com/v1"


def _error_text(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    return f"{exc} {body}"


class OpenAIProvider:
    name = "openai"
    own_deadline = True
    """Keeps --timeout as a total deadline per request itself."""
    pool = EndpointPool
    """Several endpoints of one model (``--base-url`` repeated) are used as one provider by this."""

    @classmethod
    def settle(cls, config: RunSettings) -> None:
        """Its endpoint is ``--base-url``; under --local-only with none named, the one a call would reach
        (OPENAI_BASE_URL, else OpenAI's public endpoint), so that the loopback check refuses it up front."""
        if config.local_only and not config.base_url:
            config.base_url = os.environ.get("OPENAI_BASE_URL") or PUBLIC_ENDPOINT

    @classmethod
    def options_from(cls, config: RunSettings, modes: ModeMemory | None = None) -> dict[str, Any]:
        return {**config.provider_options, "base_url": config.base_url, "api_key": config.api_key,
                "timeout": config.timeout, "local_only": config.local_only, "modes": modes}

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                 mode: str | None = None, modes: ModeMemory | None = None, local_only: bool = False, **_: Any) -> None:
        openai = require("openai", "openai")
        self.model = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        key = api_key or os.environ.get("ASSISTCODE_API_KEY") or os.environ.get("OPENAI_API_KEY")
        if not self.base_url and not key:
            # Nothing leaves the machine unless the user names where it goes: OpenAI's public endpoint only with a key.
            raise InputError("--provider openai names no endpoint: no --base-url (or OPENAI_BASE_URL) and no API key",
                             field="--provider", hint="pass --base-url URL for your own server, or set OPENAI_API_KEY "
                             "to use OpenAI's public endpoint; offline: --provider local")
        if not key:
            key = "not-needed"  # local servers take any key; remote ones answer 401, reported as such
        # redirects and reply sizes guarded (http_guard): no transcript follows a redirect off its host
        self._client = openai.AsyncOpenAI(base_url=self.base_url, api_key=key, timeout=timeout, max_retries=0,
                                          http_client=guarded_client(local_only=local_only, timeout=timeout))
        self._openai = openai
        self.timeout = timeout
        self.endpoint = (redact_url(self.base_url) or PUBLIC_ENDPOINT, model)
        if mode is not None and mode not in MODES:
            raise ProviderError(f"unknown structured-output mode {mode!r}; one of {', '.join(MODES)}")
        self.modes = modes
        self.mode = mode or (modes.get(*self.endpoint) if modes is not None else None) or MODES[0]
        self._probe_lock = asyncio.Lock()
        self._logprobs_ok = False

    def _request(self, messages: list[dict[str, str]], options: CallOptions, mode: str) -> dict[str, Any]:
        req: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": options.temperature,
                               "max_tokens": options.max_tokens, **options.extra}
        if options.seed is not None:
            req["seed"] = options.seed
        schema = options.schema
        if schema is None or mode == "prompt":
            return req
        extra: dict[str, Any] = {}
        if mode == "json_schema":
            extra["response_format"] = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
        elif mode == "json_object":
            extra["response_format"] = {"type": "json_object", "schema": schema}
        elif mode == "tools":
            extra["tools"] = [{"type": "function", "function": {"name": "reply", "description": "Return the coding.",
                                                                "parameters": schema}}]
            extra["tool_choice"] = {"type": "function", "function": {"name": "reply"}}
        req.update(extra)
        return req

    async def _post(self, body: dict[str, Any]) -> Any:
        """POST the request to ``/chat/completions`` through the SDK's client (its auth, errors and timeouts), the
        body as it is sent and the reply as its JSON: ``chat.completions.create`` walks every parameter against its
        typed definitions and builds pydantic models of the reply, about a millisecond of CPU per call that a run of
        a million calls pays in full (the body is the same JSON either way)."""
        return await self._client.post("/chat/completions", body=body, cast_to=object,
                                       options={"security": {"bearer_auth": True}})

    def _downgrade(self, refused: str) -> bool:
        """Move past the refused mode (once, however many calls in flight saw the same refusal)."""
        if self.mode != refused:
            return True  # another call already moved on: retry with the current mode
        i = MODES.index(self.mode)
        if i + 1 >= len(MODES):
            return False
        self.mode = MODES[i + 1]
        if self.modes is not None:
            self.modes.remember(*self.endpoint, self.mode)
        return True

    async def complete(self, messages: list[dict[str, str]], options: CallOptions) -> Reply:
        oa = self._openai
        while True:
            mode = self.mode
            try:
                # a total deadline: the client's timeout bounds each read, and a server dripping one byte at a
                # time would never trip it
                async with asyncio.timeout(self.timeout):
                    resp = await self._post(self._request(messages, options, mode))
            except TimeoutError:
                raise TransientError(f"timed out after {self.timeout:g} s") from None
            except GuardError as exc:  # a redirect off the host, a reply over the size cap
                raise ProviderError(str(exc)) from None
            except RecursionError:
                raise ProviderError("the reply is nested too deeply to read: refused") from None
            except oa.RateLimitError as exc:
                retry = exc.response.headers.get("retry-after") if exc.response is not None else None
                raise TransientError(f"rate limited (429): {exc.message}", _seconds(retry)) from None
            except (oa.BadRequestError, oa.UnprocessableEntityError, oa.InternalServerError, oa.NotFoundError) as exc:
                refused = options.schema is not None and mode != "prompt" and REFUSAL.search(_error_text(exc))
                status = getattr(exc, "status_code", None)
                if refused and not (status == 404 and "model" in _error_text(exc).lower()):
                    if self._downgrade(mode):
                        continue
                if isinstance(exc, oa.InternalServerError):
                    raise TransientError(f"server error ({status}): {exc.message}") from None
                raise ProviderError(f"request refused ({status}): {exc.message}") from None
            except oa.AuthenticationError as exc:
                raise ProviderError(f"authentication failed ({exc.status_code}): check the API key") from None
            except oa.APITimeoutError:
                raise TransientError(f"timed out after {self.timeout:g} s") from None
            except oa.APIConnectionError as exc:
                if isinstance(exc.__cause__, GuardError):
                    raise ProviderError(str(exc.__cause__)) from None
                raise TransientError(f"connection failed: {exc.__cause__ or exc}") from None
            except oa.APIStatusError as exc:
                if exc.status_code >= 500:
                    raise TransientError(f"server error ({exc.status_code})") from None
                raise ProviderError(f"request refused ({exc.status_code}): {exc.message}") from None
            return self._reply(resp, mode)

    def _reply(self, resp: Any, mode: str) -> Reply:
        """The reply in a chat completion: the JSON body as a dict (what :meth:`_post` and a Batch API result line
        give), or the SDK's object (read by attribute)."""
        if isinstance(resp, dict):
            try:
                return _reply_of_body(resp, mode)
            except (AttributeError, TypeError, IndexError, KeyError) as exc:
                raise ProviderError(f"the endpoint answered with a malformed chat completion ({exc})") from None
        if isinstance(resp, str) or not hasattr(resp, "choices"):  # the SDK hands back a body that is not JSON
            shown = " ".join(str(resp).split())[:80]
            raise ProviderError(f"the endpoint answered with a body that is not a chat completion (a proxy or a login "
                                f"page?): {shown!r}")
        try:
            return self._parsed_reply(resp, mode)
        except (AttributeError, TypeError, IndexError, KeyError) as exc:
            raise ProviderError(f"the endpoint answered with a malformed chat completion ({exc})") from None

    def _parsed_reply(self, resp: Any, mode: str) -> Reply:
        if not resp.choices:
            raise TransientError("reply with no choices")
        msg = resp.choices[0].message
        text = msg.content or ""
        if mode == "tools" and msg.tool_calls:
            text = msg.tool_calls[0].function.arguments
        usage = resp.usage
        return Reply(text, usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0,
                     getattr(resp, "model", None), mode, getattr(resp.choices[0], "finish_reason", None) == "length")

    # -- scoring templates: the first answer token's top log-probabilities ------------------------------------------
    def _score_request(self, messages: list[dict[str, str]], options: CallOptions) -> dict[str, Any]:
        """One scoring question's request: the first reply token's top log-probabilities, one token, temperature 0
        (the same body whether sent now or in a Batch API file)."""
        req: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0.0, "max_tokens": 1,
                               "logprobs": True, "top_logprobs": TOP_LOGPROBS, **options.extra}
        if options.seed is not None:
            req["seed"] = options.seed
        return req

    async def _score_one(self, messages: list[dict[str, str]], answers: list[str], options: CallOptions) -> tuple[dict[str, float], float, Any]:
        oa = self._openai
        req = self._score_request(messages, options)
        try:  # a total deadline per request, as for complete(): a dripping server cannot outlast --timeout
            resp = await asyncio.wait_for(self._client.chat.completions.create(**req), self.timeout)
        except asyncio.TimeoutError:
            raise TransientError(f"timed out after {self.timeout:g} s") from None
        except oa.RateLimitError as exc:
            retry = exc.response.headers.get("retry-after") if exc.response is not None else None
            raise TransientError(f"rate limited (429): {exc.message}", _seconds(retry)) from None
        except oa.AuthenticationError as exc:
            raise ProviderError(f"authentication failed ({exc.status_code}): check the API key") from None
        except oa.APITimeoutError:
            raise TransientError(f"timed out after {self.timeout:g} s") from None
        except oa.APIConnectionError as exc:
            raise TransientError(f"connection failed: {exc.__cause__ or exc}") from None
        except oa.APIStatusError as exc:
            if exc.status_code >= 500:
                raise TransientError(f"server error ({exc.status_code})") from None
            if re.search(r"logprob", _error_text(exc), re.IGNORECASE):
                raise NoLogprobsError(f"{self.endpoint[0]} refused log-probabilities for {self.model}: {exc.message}") from None
            raise ProviderError(f"request refused ({exc.status_code}): {exc.message}") from None
        if not resp.choices:
            raise TransientError("reply with no choices")
        content = getattr(resp.choices[0].logprobs, "content", None) if resp.choices[0].logprobs is not None else None
        if not content or not content[0].top_logprobs:
            raise NoLogprobsError(f"{self.endpoint[0]} returned no log-probabilities for {self.model}")
        probs, mass = from_top_logprobs([(t.token, t.logprob) for t in content[0].top_logprobs], answers)
        return probs, mass, resp.usage

    async def score(self, questions: list[list[dict[str, str]]], answers: list[list[str]], options: CallOptions) -> ScoreReply:
        """One request per question (``logprobs``, ``top_logprobs=20``, ``max_tokens=1``). The first request this
        provider makes is a probe, alone: an endpoint that returns no log-probabilities costs one call."""
        done: list[tuple[dict[str, float], float, Any]] = []
        async with self._probe_lock:
            if not self._logprobs_ok:
                done.append(await self._score_one(questions[0], answers[0], options))
                self._logprobs_ok = True
        done += await asyncio.gather(*(self._score_one(q, a, options) for q, a in list(zip(questions, answers))[len(done):]))
        prompt = sum(u.prompt_tokens for _, _, u in done if u is not None)
        completion = sum(u.completion_tokens for _, _, u in done if u is not None)
        return ScoreReply([p for p, _, _ in done], prompt, completion, self.model, [m for _, m, _ in done])

    def describe(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "base_url": redact_url(self.base_url),
                "structured_output": self.mode, "timeout_s": self.timeout}

    async def aclose(self) -> None:
        await self._client.close()


def _reply_of_body(body: dict[str, Any], mode: str) -> Reply:
    """:meth:`OpenAIProvider._parsed_reply` for the JSON body itself (a missing field reads as None, as on the SDK's
    objects)."""
    if "choices" not in body:
        shown = " ".join(str(body).split())[:80]
        raise ProviderError(f"the endpoint answered with a body that is not a chat completion (a proxy or a login "
                            f"page?): {shown!r}")
    choices = body["choices"]
    if not choices:
        raise TransientError("reply with no choices")
    choice = choices[0]
    msg = choice.get("message") or {}
    text = msg.get("content") or ""
    tool_calls = msg.get("tool_calls")
    if mode == "tools" and tool_calls:
        text = tool_calls[0]["function"]["arguments"]
    usage = body.get("usage")
    return Reply(text, (usage.get("prompt_tokens") or 0) if usage else 0,
                 (usage.get("completion_tokens") or 0) if usage else 0, body.get("model"), mode,
                 choice.get("finish_reason") == "length")


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
