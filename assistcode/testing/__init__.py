"""Test helpers that ship with the package: a real, scriptable OpenAI-compatible server on the loopback interface."""
from .server import FakeOpenAIServer, Plan

__all__ = ["FakeOpenAIServer", "Plan"]
