"""Gold standards shipped with assistcode (``gold_standard/`` in the repository, package data when installed)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from . import safeyaml
from .errors import InputError, from_validation
from .gold import read_gold
from .resources import resource_dir


class AnnotationFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str
    layout: str = "long"
    options: dict[str, Any] = {}


class GoldManifest(BaseModel):
    """``gold.yaml``: how to load one gold standard."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    corpus: str
    segmenter: str = "turn"
    read_options: dict[str, Any] = {}
    """For a table of texts: text_column, id_columns, meta_columns (as ``assistcode import`` takes them)."""
    metadata: str | None = None
    codebook: str
    annotations: list[AnnotationFile]


@dataclass
class LoadReport:
    corpus: Any
    codebook_new: bool
    gold: list[Any] = field(default_factory=list)


def available() -> list[str]:
    root = resource_dir("gold_standard")
    return sorted(p.parent.name for p in root.glob("*/gold.yaml"))


def manifest(name_or_path: str | Path) -> tuple[Path, GoldManifest]:
    """The folder and manifest of a shipped gold standard (by name) or of a folder holding ``gold.yaml``."""
    folder = Path(name_or_path)
    if not (folder / "gold.yaml").exists():
        folder = resource_dir("gold_standard") / str(name_or_path)
    if not (folder / "gold.yaml").exists():
        raise InputError(f"no gold standard {str(name_or_path)!r}", hint="shipped: " + ", ".join(available()))
    data, _ = safeyaml.load_file(folder / "gold.yaml")
    try:
        return folder, GoldManifest.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, folder / "gold.yaml") from exc


def load_into(project: Any, name_or_path: str | Path) -> LoadReport:
    """Import a gold standard's corpus, codebook and human codes into a project (idempotent)."""
    folder, m = manifest(name_or_path)
    options = None
    if m.read_options:
        from .readers import ReadOptions

        ro = dict(m.read_options)
        for key in ("id_columns", "meta_columns"):
            if key in ro:
                ro[key] = tuple(ro[key])
        options = ReadOptions(**ro)
    corpus = project.import_corpus([folder / m.corpus], segmenter=m.segmenter, options=options,
                                   metadata_file=folder / m.metadata if m.metadata else None)
    _, new = project.import_codebook(folder / m.codebook)
    report = LoadReport(corpus=corpus, codebook_new=new)
    for a in m.annotations:
        report.gold.append(project.import_gold(read_gold(folder / a.file, a.layout, **a.options)))
    return report
