"""Model runs: the engine that codes a project's segments with a provider, reliably and resumably (engine), each
run's rows in the project store (store), replies and their validation (replies), scoring templates and per-code
scores (scoring, scores), tokens and prices (pricing), and writes kept for later while the store is busy (pending)."""
from .engine import RunConfig, RunResult, code_project
from .store import RunRow

__all__ = ["RunConfig", "RunResult", "RunRow", "code_project"]
