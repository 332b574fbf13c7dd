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


class RunSettings(Protocol):
    """What a provider reads of a run's configuration (:class:`assistcode.runs.engine.RunConfig`)."""

    provider: str
    model: str
    base_url: str | None
    api_key: str | None
    timeout: float
    local_only: bool
    provider_options: dict[str, Any]


class ModeMemory(Protocol):
    """The one memory of each endpoint's structured-output mode (kept by the project store: table endpoint_modes)."""

    def get(self, endpoint: str, model: str) -> str | None: ...

    def remember(self, endpoint: str, model: str, mode: str) -> None: ...


Factory = Callable[..., Provider]
_REGISTRY: dict[str, Factory | str] = {
    # name -> factory, or "module:attribute" resolved on first use so no SDK is imported up front. A factory may
    # carry hooks, read by the functions below: settle(config), check(config), options_from(config, modes),
    # default_model, own_deadline, in_process; a whole-run provider (whole_run = True) has run() and summary().
    "mock": "assistcode.providers.mock:MockProvider",
    "openai": "assistcode.providers.openai_compat:OpenAIProvider",
    "langchain": "assistcode.providers.langchain_chat:LangChainProvider",
    "local": "assistcode.providers.local:LocalProvider",
    # whole-run providers: they score every segment at once (no per-call model)
    "similarity": "assistcode.similarity:SimilarityProvider",
    "trained": "assistcode.trained:TrainedProvider",
}


def register(name: str, factory: Factory | str) -> None:
    """Add a provider (a factory taking ``model=`` and keyword options, or its ``module:attribute`` path)."""
    _REGISTRY[name] = factory


_PLUGINS_LOADED: list[bool] = []


def _load_plugins() -> None:
    """Add the plugins' providers (entry point group ``assistcode.providers``), once per process."""
    if _PLUGINS_LOADED:
        return
    for ep in entry_points(group="assistcode.providers"):
        _REGISTRY.setdefault(ep.name, ep.value)
    _PLUGINS_LOADED.append(True)


def available() -> list[str]:
    """Every registered provider's name, per-call and whole-run alike."""
    _load_plugins()
    return sorted(_REGISTRY)


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


def factory_of(name: str) -> Any:
    """The registered factory (usually the provider's class) called ``name``, imported on first use; ``None`` for
    a name not registered (a provider instance handed to the engine directly)."""
    _load_plugins()
    factory = _REGISTRY.get(name)
    return resolve(factory) if isinstance(factory, str) else factory


def trait(name: str, attr: str, default: Any = None) -> Any:
    """A provider's declared trait (``default_model``, ``own_deadline``, ``in_process``, ``whole_run``...)."""
    return getattr(factory_of(name), attr, default)


def is_whole_run(name: str) -> bool:
    """Whether ``name`` scores a whole run at once (``similarity``, ``trained``) rather than one call at a time."""
    return bool(trait(name, "whole_run", False))


def settle(config: RunSettings) -> None:
    """Let the provider settle its part of ``config`` (its endpoint, its options); a provider without a ``settle``
    hook takes no endpoint, so ``--base-url`` is not its and is dropped."""
    hook = trait(config.provider, "settle")
    if hook is not None:
        hook(config)
    else:
        config.base_url = None


def check(config: RunSettings) -> None:
    """The provider's own refusals of ``config`` (an endpoint off this machine under --local-only), if it has any."""
    hook = trait(config.provider, "check")
    if hook is not None:
        hook(config)


def options_from(config: RunSettings, modes: ModeMemory | None = None) -> dict[str, Any]:
    """The keyword options the provider of ``config`` is built with: its ``options_from`` hook, else the run's
    provider options and the API key (when given)."""
    hook = trait(config.provider, "options_from")
    if hook is not None:
        return hook(config, modes)
    options = dict(config.provider_options)
    if config.api_key is not None:
        options["api_key"] = config.api_key
    return options


def get_provider(name: str, model: str, **options: Any) -> Provider:
    """A provider instance by registry name."""
    factory = factory_of(name)
    if factory is None:
        raise InputError(f"unknown provider {name!r}", field="--provider", hint="available: " + ", ".join(available()))
    if getattr(factory, "whole_run", False):
        raise InputError(f"provider {name!r} scores a whole run, not one call", field="--provider",
                         hint=f"assistcode code --provider {name}")
    return factory(model=model, **options)


def build(config: RunSettings, modes: ModeMemory | None = None) -> Provider:
    """The provider ``config`` names, built with the options it takes from ``config``."""
    return get_provider(config.provider, config.model, **options_from(config, modes))


def require(module: str, extra: str) -> Any:
    """Import an SDK lazily, with an install hint when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise AssistcodeError(f"this provider needs the '{module}' package, which is not installed "
                              f"(pip install '{extra}')") from exc
