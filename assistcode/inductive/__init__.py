"""Inductive coding, measured: codebooks grown from the data (``induce``) and codebooks set against each other
(``compare``): which codes of one are found in the other, and how well the two codings agree once mapped."""
from .codeset import CodeSet, load_operand, normalise_code
from .compare import Comparison, compare_codesets
from .induce import InducedCode, induce_codebook

__all__ = ["CodeSet", "Comparison", "InducedCode", "compare_codesets", "induce_codebook", "load_operand",
           "normalise_code"]
