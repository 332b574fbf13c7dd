"""What every benchmark does with its result: stamp the machine, print it, and write it where asked."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


DEV_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
"""Benchmarks (not suites, not anything a user runs) default to the development machine's data folder; each data set
can be named instead: ``ASSISTCODE_CONVABUSE=DIR`` (or a benchmark's ``--data``)."""
if (DEV_DATA / "convabuse").is_dir():
    os.environ.setdefault("ASSISTCODE_CONVABUSE", str(DEV_DATA / "convabuse"))


def emit(result: dict[str, Any], path: Path | None, show: bool = True) -> None:
    result.setdefault("machine", {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                                  "cores": os.cpu_count()})
    text = json.dumps(result, indent=2)
    if show:
        print(text)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
