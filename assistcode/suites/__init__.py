"""Evaluation suites: compare prompts, codebook versions and models on a gold standard with paired statistics,
and keep every result with its manifest."""
from .compare import compare, history, pareto, record
from .runner import ConfigRun, open_suite_project, run_suite
from .spec import Suite, load_suite

__all__ = ["ConfigRun", "Suite", "compare", "history", "load_suite", "open_suite_project", "pareto", "record",
           "run_suite"]
