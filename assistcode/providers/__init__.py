"""Model providers behind one registry: ``openai`` (any OpenAI-compatible endpoint), ``langchain`` (any LangChain
chat model), ``mock`` (scriptable, for tests and examples)."""
from .base import CallOptions, Provider, ProviderError, Reply, TransientError, available, get_provider, register

__all__ = ["CallOptions", "Provider", "ProviderError", "Reply", "TransientError", "available", "get_provider", "register"]
