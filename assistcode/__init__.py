"""assistcode: LLM-assisted qualitative coding of interview transcripts, with honest agreement statistics.

The main names load on first use (``assistcode.Project``), so ``import assistcode`` and the command line stay quick:

>>> import assistcode
>>> assistcode.Codebook.__name__, assistcode.estimate.__module__
('Codebook', 'assistcode.agreement.summary')
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    # name -> module that defines it, imported when the name is first used
    "Project": "project", "CodingRun": "project", "Evaluation": "project",
    "Code": "model", "Codebook": "model", "Document": "model", "Segment": "model",
    "AssistcodeError": "errors", "InputError": "errors", "EncodingError": "errors", "CodebookError": "errors",
    "GoldError": "errors", "AgreementError": "errors", "ProjectError": "errors",
    "estimate": "agreement", "Estimate": "agreement", "AgreementWarning": "agreement",
    "load_codebook": "codebook", "read_gold": "gold", "GoldTable": "gold", "GoldReport": "gold",
    "RunConfig": "runs.engine",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:
    from .agreement import AgreementWarning, Estimate, estimate
    from .codebook import load_codebook
    from .errors import (AgreementError, AssistcodeError, CodebookError, EncodingError, GoldError, InputError,
                         ProjectError)
    from .gold import GoldReport, GoldTable, read_gold
    from .model import Code, Codebook, Document, Segment
    from .project import CodingRun, Evaluation, Project
    from .runs.engine import RunConfig


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'assistcode' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
