"""Comparing coders: the harness behind ``assistcode eval`` and ``assistcode agree``."""
from .coding import CodingData, from_store, from_table
from .harness import EvalOptions, evaluate, holm, permutation_p

__all__ = ["CodingData", "EvalOptions", "evaluate", "from_store", "from_table", "holm", "permutation_p"]
