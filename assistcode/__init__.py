"""assistcode: LLM-assisted qualitative coding of interview transcripts, with honest agreement statistics."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import AgreementError, AssistcodeError, CodebookError, EncodingError, GoldError, InputError, ProjectError
from .model import Annotation, Code, Codebook, Coder, Document, Segment

__all__ = [
    "__version__",
    "Annotation", "Code", "Codebook", "Coder", "Document", "Segment",
    "AssistcodeError", "InputError", "EncodingError", "CodebookError", "GoldError", "AgreementError", "ProjectError",
]
