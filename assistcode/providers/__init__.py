"""Model providers behind one registry (:mod:`assistcode.providers.base`): ``local`` (offline, in-process),
``openai`` (any OpenAI-compatible endpoint), ``langchain`` (any LangChain chat model), ``mock`` (scriptable, for
tests and examples), and the whole-run ``similarity`` and ``trained``; plugins add theirs through the entry point
group ``assistcode.providers``. Each provider settles its part of a run's configuration and builds its own options,
so nothing else compares provider names."""
from .base import (CallOptions, ModeMemory, Provider, ProviderError, Reply, RunSettings, TransientError, available, build,
                   canonical, get_provider, is_whole_run, register)

__all__ = ["CallOptions", "ModeMemory", "Provider", "ProviderError", "Reply", "RunSettings", "TransientError", "available",
           "build", "canonical", "get_provider", "is_whole_run", "register"]
