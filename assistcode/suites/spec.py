"""Evaluation suites: a YAML file naming a gold standard, a codebook, a grid of prompt templates x models x
parameters, an optional train/test split, and how to compare. ``load_suite`` validates it with errors that name
the file and the key."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .. import safeyaml
from ..errors import InputError, from_validation
from ..ids import canonical_json, hash_json


class GoldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    standard: str
    """A shipped gold standard's name, or a folder holding gold.yaml (relative to the suite file)."""
    coders: list[str] = []
    """The coders that form the gold (default: every human coder of the gold standard)."""
    prepare: list[str] = []
    """A Python script (and its arguments), relative to the suite file, that builds the gold standard folder
    when it is missing (for data that may not be copied into the repository)."""


class SplitSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    test: float = Field(0.5, gt=0, lt=1)
    seed: int = 0
    by: str = "document"

    @field_validator("by")
    @classmethod
    def _by(cls, v: str) -> str:
        if v not in ("document", "segment"):
            raise ValueError("split.by is 'document' or 'segment'")
        return v


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: str
    model: str
    base_url: str | None = None
    price: str | None = None
    max_tokens: int | None = None
    """Overrides the grid's max_tokens for this model (a small model that rambles can be cut short)."""
    options: dict[str, Any] = {}


class GridSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: list[str] = ["deductive"]
    model: list[ModelSpec]
    temperature: list[float] = [0.0]
    samples: list[int] = [1]
    batch_size: list[int] = [10]
    max_tokens: list[int] = [512]
    examples: list[int] = [0]
    """Few-shot examples drawn from the train split's gold (0: none)."""


class SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    gold: GoldSpec
    codebook: str | None = None
    """A codebook file (relative to the suite file) or a stored version's hash prefix; default: the gold's."""
    split: SplitSpec | None = None
    grid: GridSpec
    floor: str | None = "similarity"
    n_boot: int = Field(1000, ge=0)
    seed: int = 0
    concurrency: int = Field(1, ge=1)


DEFAULTS = {"temperature": 0.0, "samples": 1, "batch_size": 10, "max_tokens": 512, "examples": 0}


class Suite:
    """A validated suite and the configurations its grid expands to."""

    def __init__(self, spec: SuiteSpec, path: Path, text: str) -> None:
        self.spec, self.path, self.text = spec, path, text
        self.hash = hash_json(spec.model_dump())

    @property
    def name(self) -> str:
        return self.spec.name

    def resolve(self, value: str) -> Path:
        return (self.path.parent / value).resolve()

    def configurations(self) -> list[dict[str, Any]]:
        """Each point of the grid: a label and the arguments of a run."""
        g = self.spec.grid
        out = []
        for model, template, t, samples, batch, max_tokens, k in itertools.product(
                g.model, g.template, g.temperature, g.samples, g.batch_size, g.max_tokens, g.examples):
            cfg = {"provider": model.provider, "model": model.model, "template": template, "temperature": t,
                   "samples": samples, "batch_size": batch, "max_tokens": model.max_tokens or max_tokens, "examples": k,
                   "base_url": model.base_url, "price": model.price, "options": model.options}
            extras = [f"{key}={cfg[key]}" for key in DEFAULTS if cfg[key] != DEFAULTS[key]
                      and not (key == "batch_size" and "batch" not in template)]
            label = f"{model.model} / {template}" + (f" ({', '.join(extras)})" if extras else "")
            out.append({"label": label, **cfg})
        labels = [c["label"] for c in out]
        if len(set(labels)) != len(labels):
            raise InputError("two configurations of the grid are the same", path=self.path, field="grid")
        return out


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    data, text = safeyaml.load_file(path)
    if not isinstance(data, dict):
        raise InputError("a suite is a YAML mapping (name, gold, grid, ...)", path=path)
    try:
        spec = SuiteSpec.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, path, lambda loc: _line_of(text, loc)) from exc
    suite = Suite(spec, path.resolve(), text)
    suite.configurations()
    return suite


def _line_of(text: str, loc: tuple) -> int | None:
    """The line of the first key of ``loc`` in the file (good enough to point at the problem)."""
    for key in reversed([k for k in loc if isinstance(k, str)]):
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip().startswith(f"{key}:") or line.strip().startswith(f"- {key}:"):
                return n
    return None


__all__ = ["Suite", "SuiteSpec", "load_suite", "canonical_json"]
