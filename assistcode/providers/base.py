"""The provider interface and its one registry. Built-in providers register exactly as outside plugins do (entry
point group ``assistcode.providers``), and import their SDKs only when used."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, Protocol, runtime_checkable

from ..errors import AssistcodeError, InputError


@dataclass
class Reply:
    """A model's reply to one call."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    mode: str | None = None
    """How structured output was asked for (json_schema, json_object, tools, prompt)."""
    truncated: bool = False
    """The reply stopped at ``max_tokens`` (finish reason "length")."""
    endpoint: str | None = None
    """Which of several endpoints answered (``--base-url`` given more than once; redacted), else None."""


class ProviderError(AssistcodeError):
    """A call that failed for good (bad request, authentication, unknown model): not retried."""


class TransientError(AssistcodeError):
    """A call worth retrying: rate limit (429), server error (5xx), timeout, dropped connection."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class CallOptions:
    """What the engine asks of one call."""

    schema: dict[str, Any] | None = None
    """JSON schema of the reply; providers enforce it as far as the server allows."""
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Provider(Protocol):
    name: str
    model: str

    async def complete(self, messages: list[dict[str, str]], options: CallOptions) -> Reply: ...

    def describe(self) -> dict[str, Any]:
        """Provider, model and settings for the run manifest: never a secret."""
        ...

    async def aclose(self) -> None: ...


Factory = Callable[..., Provider]
_REGISTRY: dict[str, Factory | str] = {
    # name -> factory, or "module:attribute" resolved on first use so no SDK is imported up front
    "mock": "assistcode.providers.mock:MockProvider",
    "openai": "assistcode.providers.openai_compat:OpenAIProvider",
    "langchain": "assistcode.providers.langchain_chat:LangChainProvider",
    "local": "assistcode.providers.local:LocalProvider",
}


WHOLE_RUN: dict[str, str] = {
    # providers that score a whole run at once (no per-call model): name -> "module:function"
    "similarity": "assistcode.similarity:run_similarity",
    "trained": "assistcode.trained:run_trained",
}


def register(name: str, factory: Factory | str) -> None:
    """Add a provider (a factory taking ``model=`` and keyword options, or its ``module:attribute`` path)."""
    _REGISTRY[name] = factory


def register_whole_run(name: str, runner: str) -> None:
    """Add a provider that scores a whole run at once (``module:function``), such as ``similarity``."""
    WHOLE_RUN[name] = runner


def _load_plugins() -> None:
    for ep in entry_points(group="assistcode.providers"):
        _REGISTRY.setdefault(ep.name, ep.value)


def available() -> list[str]:
    """Every registered provider's name, per-call and whole-run alike."""
    _load_plugins()
    return sorted({*_REGISTRY, *WHOLE_RUN})


def canonical(name: str) -> str:
    """The registered provider called ``name``, matched case-insensitively; an unknown name is one line listing
    every provider (checked before anything else about a run)."""
    _load_plugins()
    names = {n.lower(): n for n in available()}
    found = names.get(name.strip().lower())
    if found is None:
        raise InputError(f"unknown provider {name!r}", field="--provider", hint="available: " + ", ".join(available()))
    return found


def resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    try:
        obj = importlib.import_module(module)
    except ImportError as exc:
        raise InputError(f"cannot import {module!r}: {exc}", hint="is the package installed in this environment?") from exc
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


def get_provider(name: str, model: str, **options: Any) -> Provider:
    """A provider instance by registry name."""
    _load_plugins()
    if name in WHOLE_RUN and name not in _REGISTRY:
        raise InputError(f"provider {name!r} scores a whole run, not one call", field="--provider",
                         hint=f"assistcode code --provider {name}")
    if name not in _REGISTRY:
        raise InputError(f"unknown provider {name!r}", field="--provider", hint="available: " + ", ".join(available()))
    factory = _REGISTRY[name]
    if isinstance(factory, str):
        factory = resolve(factory)
    return factory(model=model, **options)


def require(module: str, extra: str) -> Any:
    """Import an SDK lazily, with an install hint when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise AssistcodeError(f"this provider needs the '{module}' package, which is not installed "
                              f"(pip install '{extra}')") from exc
